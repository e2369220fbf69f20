"""The package's own conventions: the public surface, one way to start a notebook, one budget rule,
atomic writes, one label schema, and notebook parameters that start from the package defaults."""
from __future__ import annotations

import json

import nbformat
import numpy as np
import papermill
import pytest

import aliqa_lib as al
from aliqa_lib import defaults
from aliqa_lib.cache import atomic_path
from aliqa_lib.data.schema import Labels
from aliqa_lib.notebook import list_notebooks, run_notebook, start

SHARED = ("TEST_FRACTION", "BACKBONE", "BACKBONE_WEIGHTS", "POOLING", "DISTILL_IMAGES", "DISTILL_RESOLUTION",
          "DISTILL_ITERATIONS", "DISTILL_REPEATS", "EPOCHS", "CLIP_WEIGHTS", "CLIP_MODEL",
          "FOLDER_DISTILL_IMAGES", "FOLDER_DISTILL_ITERATIONS", "FOLDER_DISTILL_REPEATS")


def test_public_surface_keeps_working_from_the_new_homes():
    from aliqa_lib.authors import koniq_split, replay_livew
    from aliqa_lib.evaluation import metrics, sweep
    from aliqa_lib.models.backbones import load_backbone
    from aliqa_lib.models.features import extract_features
    from aliqa_lib.results import record

    assert al.metrics.srcc is metrics.srcc and al.metrics.rmse is metrics.rmse
    assert al.models.load_backbone is load_backbone and al.models.extract_features is extract_features
    assert al.splits.authors_koniq_split is koniq_split and al.selection.replay_authors_livew is replay_livew
    assert al.sweep.run_sweep is sweep.run_sweep and al.record is record
    assert al.store.read_labels is al.data.store.read_labels and callable(al.selection.al_iqa_round)
    assert al.start is start and callable(al.selection.select)
    with pytest.raises(AttributeError, match="no attribute 'metircs'"):
        al.metircs  # noqa: B018 - a misspelled name must fail, not load something


def test_tab_completion_shows_the_chapters():
    names = dir(al)
    assert {"data", "selection", "models", "evaluation", "authors", "start", "record", "store", "metrics"} <= set(names)
    assert not [n for n in names if n.startswith("_") and n != "__version__"] and "importlib" not in names
    assert {"uncertainty", "fusion_round", "replay_authors_livew", "make_selector"} <= set(dir(al.selection))


@pytest.mark.parametrize("share, pool, expected", [(0.1, 1000, 100), (0.05, 1169, 58), (0.01, 100, 5), (1.0, 37, 37),
                                                   (0.125, 4, None), (0.0, 100, None), (1.5, 100, None)])
def test_one_budget_rule(share, pool, expected):
    if expected is None:
        with pytest.raises(ValueError):
            defaults.budget_size(share, pool)
    else:
        assert defaults.budget_size(share, pool) == expected


def test_atomic_path_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "sub" / "result.json"
    with atomic_path(target) as tmp:
        tmp.write_text("first")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "first" and sorted(p.name for p in target.parent.iterdir()) == ["result.json"]


def test_labels_check_lengths_and_subset_every_column():
    labels = Labels(names=["a", "b", "c"], mos=[1, 2, 3], mos01=[0, 0.5, 1], ref=[0, 0, 1], split=["x", "y", "x"],
                    metrics={"vif": [0.1, 0.2, 0.3]})
    part = labels.subset([2, 0])
    assert list(part.names) == ["c", "a"] and list(part.split) == ["x", "x"] and part.metrics["vif"].tolist() == [0.3, 0.1]
    assert list(labels.columns()) == ["names", "mos", "mos01", "ref", "split"] and labels.groups.tolist() == [0, 0, 1]
    with pytest.raises(ValueError, match=r"differ in length from the 3 names: \{'ref': 2\}"):
        Labels(names=["a", "b", "c"], mos=[1, 2, 3], mos01=[0, 0.5, 1], ref=[0, 1])


def namespace(**extra):
    """A notebook's globals right after its parameters cell."""
    return {"np": np, "DATASET": "synthetic", "STORE": None, "SEED": 3, "SMOKE": True, "OUT_DIR": None, **extra}


def test_start_applies_the_visible_smoke_preset_and_records_it(smoke_store, tmp_path, capsys):
    ns = namespace(STORE=str(smoke_store), OUT_DIR=str(tmp_path), EPOCHS=200, BUDGET=0.1, TEST_FRACTION=0.25)
    run = start("05_training", ns)
    assert ns["EPOCHS"] == defaults.smoke_preset("05_training")["EPOCHS"] and ns["BUDGET"] == 0.3
    assert ns["TEST_FRACTION"] == 0.25 and run.params["EPOCHS"] == ns["EPOCHS"]
    assert "SMOKE preset" in capsys.readouterr().out
    recorded = json.loads((tmp_path / "results.json").read_text())
    assert recorded["seed"] == 3 and recorded["smoke"] is True
    assert recorded["smoke_preset"]["EPOCHS"] == [200, ns["EPOCHS"]] and recorded["parameters"]["BUDGET"] == 0.3
    assert run.store == smoke_store and len(run.labels) == len(al.store.read_labels(smoke_store))


def test_start_records_only_parameter_values(smoke_store, tmp_path):
    from sklearn.decomposition import PCA

    start("03_content_criterion", namespace(STORE=str(smoke_store), OUT_DIR=str(tmp_path), PCA=PCA, LEVELS=[1, 2]))
    recorded = json.loads((tmp_path / "results.json").read_text())["parameters"]
    assert "PCA" not in recorded and recorded["LEVELS"] == [1, 2]


def test_start_without_smoke_changes_nothing_and_needs_the_basic_parameters(smoke_store, tmp_path):
    ns = namespace(STORE=str(smoke_store), OUT_DIR=str(tmp_path), SMOKE=False, EPOCHS=200)
    start("07_sweep", ns)
    assert ns["EPOCHS"] == 200 and json.loads((tmp_path / "results.json").read_text())["smoke_preset"] == {}
    with pytest.raises(ValueError, match=r"lacks \['SEED'\]"):
        start("07_sweep", {"SMOKE": False, "OUT_DIR": str(tmp_path)})


def test_start_without_a_store_prepares_nothing(tmp_path, capsys):
    ns = {"FOLDER": "", "SEED": 1, "SMOKE": True, "OUT_DIR": str(tmp_path), "ROUND_SIZE": 16}
    run = start("08_your_images", ns, needs_store=False)
    assert run.store is None and run.labels is None and ns["ROUND_SIZE"] == defaults.smoke_preset("08_your_images")["ROUND_SIZE"]
    assert f"outputs in {tmp_path}" in capsys.readouterr().out
    assert json.loads((tmp_path / "results.json").read_text())["parameters"]["FOLDER"] == ""


def test_a_misspelled_notebook_parameter_is_an_error(tmp_path):
    path = next(p for p in list_notebooks() if p.stem.startswith("05"))
    with pytest.raises(ValueError, match=r"has no parameter\(s\) \['EPOCH'\]"):
        run_notebook(path, tmp_path, {"EPOCH": 3})


@pytest.mark.parametrize("path", list_notebooks(), ids=lambda p: p.stem)
def test_notebook_parameters_start_from_the_package_defaults(path):
    params = {k: v["default"] for k, v in papermill.inspect_notebook(str(path)).items()}
    for name in SHARED:
        if name in params:
            assert eval(params[name]) == getattr(defaults, name), f"{path.name}: {name} = {params[name]}"  # noqa: S307
    assert not {"WEIGHTS", "DISTILLED", "ITERATIONS", "REPEATS", "RESOLUTION", "BAND_STARTS"} & set(params)
    source = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert "if SMOKE:" not in source, "smoke values come from defaults.SMOKE_PRESETS, not from the notebook"
    assert f'al.start("{path.stem}", globals()' in source
