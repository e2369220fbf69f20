"""Chapter 4 of the tutorial: does a selection save labels?

metrics (SRCC, KRCC, PLCC, RMSE, logistic fits), experiments (selectors x budgets x seeds under the
honest or the authors' protocol, summaries paired against random), sweep (any notebook over a grid)
and collection (your own images with a person as the oracle: the next batch to rate, every image scored).
"""
from __future__ import annotations

from . import collection, experiments, metrics, sweep
from .experiments import CEILING, ExperimentConfig, Inputs, run_experiment, run_one, summarise
from .metrics import evaluate, krcc, plcc, rmse, srcc
from .sweep import run_sweep

__all__ = ["metrics", "experiments", "sweep", "collection", "srcc", "krcc", "plcc", "rmse", "evaluate", "CEILING",
           "ExperimentConfig", "Inputs", "run_one", "run_experiment", "summarise", "run_sweep"]
