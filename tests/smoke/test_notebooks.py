"""Every numbered notebook: committed clean, parameterised, and runs headless in smoke mode."""
from __future__ import annotations

import json
import re

import nbformat
import papermill
import pytest

import aliqa_lib as al
from aliqa_lib.notebook import list_notebooks, run_notebook

NOTEBOOKS = list_notebooks()


def test_there_are_notebooks():
    assert [nb.name[:2] for nb in NOTEBOOKS][:1] == ["01"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
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


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_mode(path, smoke_store, tmp_path):
    executed = run_notebook(path, tmp_path, {"SMOKE": True, "SEED": 3, "STORE": str(smoke_store)})
    results = al.read_results(tmp_path / path.stem)
    assert results["seed"] == 3 and results["smoke"] is True      # injected values reach the JSON
    nb = nbformat.read(executed, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert json.loads((tmp_path / path.stem / "results.json").read_text()) == results


@pytest.mark.parametrize("dataset", ["kadid10k", "spaq"])
def test_data_preparation_notebook_prepares_a_real_layout(dataset, tmp_path):
    import fakes

    root = tmp_path / dataset
    root.mkdir()
    info = fakes.MAKERS[dataset](root)
    path = next(p for p in NOTEBOOKS if p.stem.startswith("01"))
    executed = run_notebook(path, tmp_path, {"DATASET": dataset, "ROOT": str(root), "SIZE": 64, "WORKERS": 1,
                                             "STORE": str(tmp_path / f"{dataset}.h5")})
    results = al.read_results(tmp_path / path.stem)
    assert results["dataset"] == dataset and results["n_images"] == len(info["names"])
    assert (tmp_path / path.stem / "score_ladder.png").is_file()
    nb = nbformat.read(executed, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]


@pytest.fixture(scope="session")
def real_layout_store(tmp_path_factory):
    """A store prepared from a 160-image fake of SPAQ's official layout (human-label schema, no structure)."""
    import fakes

    root = tmp_path_factory.mktemp("spaq_fake")
    fakes.spaq(root, n=160)
    return al.data.prepare.prepare("spaq", root, out=root / "spaq.h5", workers=2, progress=False)


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if not p.name.startswith("01")], ids=lambda p: p.stem)
def test_later_notebooks_run_unchanged_on_a_real_dataset_store(path, real_layout_store, tmp_path):
    executed = run_notebook(path, tmp_path, {"SMOKE": True, "SEED": 3, "DATASET": "spaq",
                                             "STORE": str(real_layout_store)})
    nb = nbformat.read(executed, as_version=4)
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert al.read_results(tmp_path / path.stem)["seed"] == 3
