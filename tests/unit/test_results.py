"""aliqa_lib.record: results JSON that sweeps and tests read."""
import json

import numpy as np
import pytest

import aliqa_lib as al


def test_record_writes_plain_json_and_keeps_earlier_keys(tmp_path):
    al.record("srcc", np.float32(0.5), tmp_path)
    al.record("curve", np.array([1, 2]), tmp_path)
    al.record("per_type", {"blur": np.int64(3), "bad": float("nan")}, tmp_path)
    data = json.loads((tmp_path / "results.json").read_text())
    assert data == {"srcc": 0.5, "curve": [1, 2], "per_type": {"blur": 3, "bad": None}}
    assert al.read_results(tmp_path) == data
    assert not list(tmp_path.glob(".*tmp"))


def test_record_rejects_what_json_cannot_hold(tmp_path):
    with pytest.raises(TypeError, match="cannot store a object"):
        al.record("x", object(), tmp_path)
    with pytest.raises(ValueError, match="non-empty string"):
        al.record("", 1, tmp_path)
    assert al.read_results(tmp_path) == {}


def test_record_defaults_to_env_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ALIQA_RUN_DIR", str(tmp_path))
    al.record("k", "v")
    assert al.read_results(tmp_path) == {"k": "v"}
