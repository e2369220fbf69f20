"""Training on few ratings: which rule chooses the number of epochs (collection.train_on_ratings)?

On notebook 08's default example folder (the embedded set's references and 3 distorted versions
each, 160 images), for every seed and number of ratings: that many images drawn at random, rated by
the simulated rater (noise 0.5 ACR steps), heads trained by each rule, SRCC on the images nobody
rated. Rules: "holdout" (a validation part of the ratings picks the checkpoint), "kfold"
(cross-validation over the ratings chooses the epochs, then all ratings train), "kfold_grouped" (the
same with whole photos per fold: the folder's sub-folders), "fixed" (config.epochs at a constant
rate on all ratings), and a ridge regression on the same features (scikit-learn RidgeCV) as an
independent reference ("kfold_grouped" only on request: --rules). Prints the means and a paired
comparison with "holdout" (t-test, Wilcoxon); docs/method.md deviation 19 quotes the default run
(20 seeds; about 15 minutes on one core).
Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_few_ratings.py [--run-dir OUT/08_your_images]
(a notebook 08 output folder to reuse; default: the example folder written afresh in a temp folder).
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import ttest_rel, wilcoxon
from sklearn.linear_model import RidgeCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import aliqa_lib as al
from aliqa_lib.evaluation import collection
from aliqa_lib.models import training
from aliqa_lib.rating import mos_to_unit, simulated_rater

RULES = ("holdout", "kfold", "kfold_grouped", "fixed", "ridge")


def example(run_dir: Path | None, work: Path) -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    """(store, features, truth on the unit scale, photo ids) of notebook 08's default example folder."""
    from aliqa_lib.data.example_folder import write_example_folder
    from aliqa_lib.data.folder import prepare_folder

    if run_dir is None:
        source = al.data.prepare.prepare("synthetic", seed=0, progress=False)
        folder, labels_csv = write_example_folder(source, work / "example_folder", per_reference=3, seed=0,
                                                  kinds=["gaussian_blur", "gaussian_noise", "jpeg", "darken", "pixelate"])
        store = prepare_folder(folder, out=work / "collection.h5", progress=False)
    else:
        store, labels_csv = run_dir / "collection.h5", run_dir / "example_folder.labels.csv"
    names = list(al.store.read_labels(store).names)
    known = pd.read_csv(labels_csv).set_index("name")["score"]
    truth = (known.loc[names].to_numpy(dtype=np.float64) - 1) / 4
    feats = al.models.extract_features(store, "efficientnet_lite0", "bundled", pooling="stages", progress=False)
    photos = np.unique([n.split("/")[0] for n in names], return_inverse=True)[1]
    return store, feats, truth, photos


def score(rule: str, feats: np.ndarray, target: np.ndarray, truth: np.ndarray, rated: np.ndarray, test: np.ndarray, seed: int,
          epochs: int, photos: np.ndarray) -> float:
    """SRCC on `test` of the model one rule trains on the rated images."""
    config = training.TrainConfig(epochs=epochs, seed=seed)
    if rule == "ridge":
        model = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-2, 5, 30)))
        pred = model.fit(feats[rated], target[rated]).predict(feats[test])
    elif rule == "fixed":
        pred = training.predict(training.train_heads_epochs(feats, target, rated, epochs, config, progress=False).model,
                                feats[test])
    else:
        result = collection.train_on_ratings(feats, target, seed=seed, config=config, rule=rule.split("_")[0],
                                             groups=photos if rule == "kfold_grouped" else None)
        pred = training.predict(result.model, feats[test])
    return al.metrics.srcc(pred, truth[test])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--ratings", type=int, nargs="+", default=[16, 32, 48])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--rules", nargs="+", default=["holdout", "kfold", "fixed", "ridge"], choices=RULES)
    parser.add_argument("--csv", type=Path, default=Path("outputs") / "bench_few_ratings.csv")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        store, feats, truth, photos = example(args.run_dir, Path(tmp))
        rows = []
        for seed in range(args.seeds):
            order = np.random.default_rng([seed, 1]).permutation(len(truth))
            rated_scores = mos_to_unit(simulated_rater(truth, noise_sd=0.5, seed=seed * 1000 + 999).astype(float))
            for k in args.ratings:
                rated, test = np.sort(order[:k]), np.sort(order[k:])
                target = np.full(len(truth), np.nan)
                target[rated] = rated_scores[rated]
                for rule in args.rules:
                    start = time.perf_counter()
                    rows.append(dict(seed=seed, rated=k, rule=rule, srcc=score(rule, feats, target, truth, rated, test, seed,
                                                                                args.epochs, photos),
                                     seconds=time.perf_counter() - start))
                print(pd.DataFrame(rows[-len(args.rules):]).round(3).to_string(index=False, header=False), flush=True)
    table = pd.DataFrame(rows)
    print("\nmean SRCC on unrated images (sd over seeds), seconds per training:")
    print(table.groupby(["rated", "rule"]).agg(srcc=("srcc", "mean"), sd=("srcc", "std"),
                                               seconds=("seconds", "mean")).round(3).to_string())
    wide = table.pivot_table(index=["rated", "seed"], columns="rule", values="srcc")
    print("\npaired with holdout (difference mean, t-test p, Wilcoxon p, wins of n):")
    for k, part in wide.groupby(level="rated"):
        for rule in [r for r in args.rules if r != "holdout"]:
            d = part[rule] - part["holdout"]
            print(f"  {k:3d} ratings {rule:14s} {d.mean():+.3f}  t p={ttest_rel(part[rule], part['holdout']).pvalue:.4f}"
                  f"  W p={wilcoxon(d).pvalue:.4f}  {int((d > 0).sum())}/{len(d)}")
    out = args.csv
    out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
