"""The notebook tier: every numbered notebook committed clean, run headless in smoke mode, and what
each one recorded asserted (as microsoft/recommenders' smoke tests do)."""
from __future__ import annotations

import re

import nbformat
import numpy as np
import pandas as pd
import papermill
import pytest

import aliqa_lib as al
from aliqa_lib import defaults
from aliqa_lib.notebook import list_notebooks, run_notebook

NOTEBOOKS = {p.stem[:2]: p for p in list_notebooks()}
SEED = 3


def test_the_eight_chapters_are_there():
    assert sorted(NOTEBOOKS) == ["01", "02", "03", "04", "05", "06", "07", "08"]


@pytest.mark.parametrize("path", NOTEBOOKS.values(), ids=lambda p: p.stem)
def test_notebook_is_clean_and_parameterised(path):
    nb = nbformat.read(path, as_version=4)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert nb.cells.index(tagged[0]) <= 2, "the parameters cell sits near the top"
    for name in ("SMOKE", "SEED", "OUT_DIR"):
        assert f"\n{name} =" in "\n" + tagged[0].source, f"parameters cell lacks {name}"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, "commit notebooks without outputs"
    names = set(re.findall(r"^([A-Z][A-Z0-9_]*) =", tagged[0].source, re.M))
    assert names == set(papermill.inspect_notebook(str(path))), "papermill must parse every parameter line"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "what we learned" in nb.cells[-1].source.lower()


@pytest.fixture(scope="session")
def smoke_folder(smoke_store, tmp_path_factory):
    """Every notebook run once in smoke mode on the small embedded store: the folder that holds the
    executed notebooks (NN_name.ipynb) and their output folders (NN_name/)."""
    out = tmp_path_factory.mktemp("smoke_runs")
    for path in NOTEBOOKS.values():
        run_notebook(path, out, {"SMOKE": True, "SEED": SEED, "STORE": str(smoke_store)})
    return out


@pytest.fixture(scope="session")
def smoke_runs(smoke_folder):
    """What each smoke run recorded, by notebook number."""
    return {number: al.read_results(smoke_folder / path.stem) for number, path in NOTEBOOKS.items()}


def _output_text(output: dict) -> str:
    """The text a reader sees for one cell output (streams, plain-text results, tracebacks)."""
    if output["output_type"] == "stream":
        return output["text"]
    if output["output_type"] == "error":
        return "\n".join(output["traceback"])
    return output.get("data", {}).get("text/plain", "")


@pytest.mark.parametrize("number", NOTEBOOKS, ids=lambda n: NOTEBOOKS[n].stem)
def test_executed_notebook_shows_every_figure_and_no_noise(number, smoke_folder):
    path = NOTEBOOKS[number]
    nb = nbformat.read(smoke_folder / path.name, as_version=4)
    outputs = [(i, o) for i, c in enumerate(nb.cells) if c.cell_type == "code" for o in c.outputs]
    saved = sorted(p.name for p in (smoke_folder / path.stem).glob("*.png"))
    inline = sum("image/png" in o.get("data", {}) for _, o in outputs)
    assert inline >= len(saved), f"{len(saved)} figures saved ({saved}) but {inline} shown inline"
    for i, o in outputs:
        text = _output_text(o)
        assert o["output_type"] != "error", f"cell {i}: {text[-500:]}"
        assert text.count("\n") < 60, f"cell {i} prints {text.count(chr(10))} lines: show a summary or a figure"
        assert "PosixPath(" not in text, f"cell {i} shows a raw return value: {text[:200]}"
        stderr = o["output_type"] == "stream" and o["name"] == "stderr"
        assert not stderr, f"cell {i} writes to stderr (a warning?): {text[:300]}"
        assert "Warning:" not in text, f"cell {i} shows a warning: {text[:300]}"
        assert not re.search(r"\d+%\|", text), f"cell {i} shows a progress bar as text: {text[:200]}"


def test_every_run_records_its_seed_smoke_flag_and_preset(smoke_runs):
    for number, results in smoke_runs.items():
        assert results["seed"] == SEED and results["smoke"] is True, number
        for name, (_, new) in results["smoke_preset"].items():
            assert results["parameters"][name] == new == defaults.smoke_preset(NOTEBOOKS[number].stem)[name]


def test_04_sliders_redraw_the_figure_in_place(smoke_folder, smoke_store, tmp_path):
    """Moving 04's sliders replaces the figure under them (update_display_data, as in JupyterLab)."""
    nb = nbformat.read(NOTEBOOKS["04"], as_version=4)
    i = next(k for k, c in enumerate(nb.cells) if "FloatLogSlider" in c.source)
    nb.cells.insert(i + 1, nbformat.v4.new_code_cell("wt_slider.value = 1.0\nstart_slider.value = 0.0"))
    moved = tmp_path / NOTEBOOKS["04"].name
    nbformat.write(nb, moved)
    run_notebook(moved, tmp_path / "out", {"SMOKE": True, "SEED": SEED, "STORE": str(smoke_store)})

    def figures(path):
        cell = next(c for c in nbformat.read(path, as_version=4).cells if "FloatLogSlider" in c.source)
        return [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]

    before, after = figures(smoke_folder / NOTEBOOKS["04"].name), figures(tmp_path / "out" / moved.name)
    assert len(before) == len(after) == 1                     # one figure, replaced, not appended
    assert before != after                                    # drawn again at wt 1, band start 0


def test_01_data_preparation(smoke_runs, smoke_store):
    r = smoke_runs["01"]
    labels = al.store.read_labels(smoke_store)
    assert r["dataset"] == "synthetic" and r["n_images"] == len(labels) == 4 * 71 and r["n_contents"] == 4
    assert r["n_skipped"] == 0
    assert r["level_spearman_mean"] < -0.8 and max(r["level_spearman"].values()) < -0.3
    assert 0 <= r["share_near_0"] <= 0.1 and 0 <= r["share_near_1"] <= 0.1
    assert min(r["metric_spearman"].values()) > 0.5         # each metric agrees with the pseudo-MOS


def test_02_distortion_criterion(smoke_runs, smoke_store):
    r = smoke_runs["02"]
    assert r["uncertainty_matches_library"] is True
    pool, _ = al.splits.holdout_split(al.store.read_labels(smoke_store), defaults.TEST_FRACTION, seed=SEED)
    budget = defaults.budget_size(r["parameters"]["BUDGET"], len(pool))
    assert r["round_sizes"] == al.selection.PAPER_SCHEDULE.round_sizes(budget) and sum(r["round_sizes"]) == budget
    assert len(r["band_mean_mos"]) == 3 and all(1 <= v <= 5 for v in r["band_mean_mos"].values())
    assert -1 <= r["uncertainty_mos_spearman"] <= 1


def test_03_content_criterion(smoke_runs):
    r = smoke_runs["03"]
    assert r["content_matches_library"] is True
    first, last = r["loss_first_last"]
    assert last < first                                       # distribution matching closes the gap
    assert -1 <= r["content_mos_spearman"] <= 1


def test_04_selection(smoke_runs):
    r = smoke_runs["04"]
    assert r["borda_matches_library"] is True
    replay = r["replay"]
    assert [replay[f"round {k}"]["faithful size"] for k in (1, 2, 3)] == [59, 116, 116]
    assert [replay[f"round {k}"]["from band"] for k in (1, 2, 3)] == [58, 115, 115]
    assert [replay[f"round {k}"]["clean size"] for k in (1, 2, 3)] == [58, 116, 116]
    assert [replay[f"round {k}"]["clean from band"] for k in (1, 2, 3)] == [57, 115, 115]
    shares = {(row["wt"], row["band_start"]): row["band_share"] for row in r["band_share"]}
    smallest, largest = min(w for w, _ in shares), max(w for w, _ in shares)
    assert all(shares[(smallest, st)] == 1.0 for st in al.selection.PAPER_SCHEDULE.band_starts[::2])
    assert max(shares[(largest, st)] for st in al.selection.PAPER_SCHEDULE.band_starts[::2]) < 1.0
    rounds = r["al_iqa_rounds"]
    picked = np.concatenate(rounds)
    assert len(rounds) == 3 and len(np.unique(picked)) == len(picked)
    assert set(r["selectors"]) == set(r["parameters"]["SELECTORS"])
    sizes = {name: row for name, row in r["selectors"].items()}
    assert all(1 <= row["mean_mos"] <= 5 for row in sizes.values())


def test_05_training(smoke_runs):
    r = smoke_runs["05"]
    assert r["checkpoint_identical"] is True
    assert r["n_pool"] + r["n_test"] == 4 * 71 and r["budget"] == defaults.budget_size(r["parameters"]["BUDGET"], r["n_pool"])
    for head, row in r["test_metrics"].items():
        assert -1 <= row["srcc"] <= 1 and -1 <= row["krcc"] <= 1 and row["rmse"] >= 0, head
    assert set(r["ceiling_srcc"]) == {"stages", "final"} and all(-1 <= v <= 1 for v in r["ceiling_srcc"].values())
    assert r["clip"]["weights"].startswith("tiny:") and -1 <= r["clip"]["test_srcc"] <= 1


def test_06_evaluation(smoke_runs):
    r = smoke_runs["06"]
    raw, fitted = r["test_metrics"]["raw"], r["test_metrics"]["logistic4"]
    assert raw["srcc"] == pytest.approx(fitted["srcc"]) and raw["krcc"] == pytest.approx(fitted["krcc"])
    assert fitted["rmse"] <= raw["rmse_raw"] + 1e-9          # a fitted mapping never raises the RMSE
    assert set(r["protocols"]) == {"honest", "authors"} and all(-1 <= v <= 1 for v in r["protocols"].values())
    assert r["per_distortion_srcc"] and all(-1 <= v <= 1 for v in r["per_distortion_srcc"].values())
    assert -1 <= r["cross_dataset"]["srcc"] <= 1


def test_07_sweep(smoke_runs):
    r = smoke_runs["07"]
    preset = defaults.smoke_preset("07_sweep")
    cells = {(row["selector"], row["budget"]) for row in r["summary"]}
    assert cells == {(s, b) for s in preset["SELECTORS"] for b in preset["BUDGETS"]}
    assert all(row["n"] == preset["SEEDS"] for row in r["summary"])
    random_rows = [row for row in r["summary"] if row["selector"] == "random"]
    assert all(row["vs_random"] == 0 for row in random_rows)   # paired with itself
    assert all(row["beats_random"] == "too few seeds" for row in r["summary"])  # 2 seeds: no verdict
    assert -1 <= r["ceiling_srcc"] <= 1


def test_08_your_images(smoke_runs, smoke_folder):
    r, run = smoke_runs["08"], smoke_folder / NOTEBOOKS["08"].stem
    preset = defaults.smoke_preset("08_your_images")
    per_photo = 1 + preset["EXAMPLE_DISTORTED"]
    assert r["n_images"] == 4 * per_photo                       # 4 contents: each reference + its distorted versions
    rounds = r["rounds"]
    picks = [name for row in rounds for name in row["picks"]]
    assert len(rounds) == preset["ROUNDS"] and all(len(row["picks"]) == preset["ROUND_SIZE"] for row in rounds)
    assert len(set(picks)) == len(picks)                        # no image picked twice
    assert rounds[0]["n_rated_before"] == 0 and rounds[0]["votes_from"].startswith("zero-shot")
    assert rounds[1]["votes_from"].startswith("the three heads trained on 5 rated")
    assert r["n_rated"] == len(picks) and r["n_predictions"] == r["n_images"]
    predicted = pd.read_csv(run / "predictions.csv")
    assert r["n_saturated"] == int(((predicted.score > 0.999) | (predicted.score < 0.001)).sum())
    assert len(r["next_batch"]) == preset["ROUND_SIZE"] and not set(r["next_batch"]) & set(picks)
    # the simulated rater: the example folder's known score on 1..5, plus seeded noise, rounded
    truth = pd.read_csv(run / "example_folder.labels.csv").set_index("name")["score"]
    given = pd.read_csv(run / "collection.simulated.csv")
    assert list(given.name) == picks and set(given.source) == {"simulated"}
    for k, row in enumerate(rounds, start=1):
        expected = al.rating.simulated_rater(truth[row["picks"]].to_numpy(), r["parameters"]["RATER_NOISE"],
                                             seed=SEED * 1000 + k, score_range=(1.0, 5.0))
        assert given.score[given.name.isin(row["picks"])].tolist() == expected.tolist()
    predictions = pd.read_csv(run / "predictions.csv")
    assert list(predictions.columns) == ["name", "score", "uncertainty"]
    assert sorted(predictions.name) == sorted(truth.index)      # one row per image of the folder
    assert predictions.score.is_monotonic_decreasing and predictions.score.between(0, 1).all()
    assert (predictions.uncertainty >= 0).all()
    assert all((run / f"contact_{which}.png").is_file() for which in ("best", "worst", "uncertain"))
    curve = pd.DataFrame(r["learning_curve"])
    assert set(curve.selector) == {"al_iqa", "random"} and curve.srcc.between(-1, 1).all()


@pytest.mark.parametrize("dataset", ["kadid10k", "spaq"])
def test_data_preparation_notebook_prepares_a_real_layout(dataset, tmp_path):
    import fakes

    root = tmp_path / dataset
    root.mkdir()
    info = fakes.MAKERS[dataset](root)
    run_notebook(NOTEBOOKS["01"], tmp_path, {"DATASET": dataset, "ROOT": str(root), "SIZE": 64, "WORKERS": 1,
                                             "STORE": str(tmp_path / f"{dataset}.h5")})
    results = al.read_results(tmp_path / NOTEBOOKS["01"].stem)
    assert results["dataset"] == dataset and results["n_images"] == len(info["names"])
    assert (tmp_path / NOTEBOOKS["01"].stem / "score_ladder.png").is_file()
    if dataset == "kadid10k":                                 # structure shown where the dataset has it
        assert results["level_spearman"] and (tmp_path / NOTEBOOKS["01"].stem / "distortion_grid.png").is_file()


@pytest.fixture(scope="session")
def real_layout_store(tmp_path_factory):
    """A store prepared from a 160-image fake of SPAQ's official layout (human-label schema, no structure)."""
    import fakes

    root = tmp_path_factory.mktemp("spaq_fake")
    fakes.spaq(root, n=160)
    return al.data.prepare.prepare("spaq", root, out=root / "spaq.h5", workers=2, progress=False)


@pytest.mark.parametrize("number", ["02", "03", "04", "05", "06", "07"])
def test_later_notebooks_run_unchanged_on_a_real_dataset_store(number, real_layout_store, tmp_path):
    run_notebook(NOTEBOOKS[number], tmp_path, {"SMOKE": True, "SEED": SEED, "DATASET": "spaq",
                                               "STORE": str(real_layout_store)})
    results = al.read_results(tmp_path / NOTEBOOKS[number].stem)
    checks = {"02": "uncertainty_matches_library", "03": "content_matches_library", "04": "borda_matches_library",
              "05": "checkpoint_identical"}
    if number in checks:
        assert results[checks[number]] is True
    assert results["parameters"]["DATASET"] == "spaq" and "per_distortion_srcc" not in results
