"""The embedded dataset end to end: built through the command line, deterministic, reused, and
meeting its targets at full size."""
from __future__ import annotations

import subprocess
import sys

import h5py
import numpy as np

from aliqa_lib.data import describe
from aliqa_lib.data.store import read_labels, validate_store


def test_same_seed_same_arrays_other_seed_other_arrays(smoke_store, tmp_path):
    again = tmp_path / "again.h5"
    other = tmp_path / "other.h5"
    for out, seed in ((again, 3), (other, 4)):
        subprocess.run([sys.executable, "-m", "aliqa_lib", "prepare", "synthetic", "--smoke", "--out", str(out),
                        "--seed", str(seed)], check=True, capture_output=True)
    with h5py.File(smoke_store) as a, h5py.File(again) as b, h5py.File(other) as c:
        assert np.array_equal(a["images"][:], b["images"][:])
        assert np.array_equal(a["mos01"][:], b["mos01"][:])
        assert not np.array_equal(a["images"][:], c["images"][:])


def test_prepare_reuses_a_valid_store_and_rebuilds_on_force(smoke_store, tmp_path):
    out = tmp_path / "s.h5"
    out.write_bytes(smoke_store.read_bytes())
    cmd = [sys.executable, "-m", "aliqa_lib", "prepare", "synthetic", "--smoke", "--seed", "3", "--out", str(out)]
    before = out.stat().st_mtime_ns
    run = subprocess.run(cmd, check=True, capture_output=True, text=True)
    assert run.stdout.strip() == str(out) and out.stat().st_mtime_ns == before
    subprocess.run(cmd + ["--force"], check=True, capture_output=True)
    assert out.stat().st_mtime_ns != before
    validate_store(out)


def test_prepare_errors_are_clear(tmp_path):
    run = subprocess.run([sys.executable, "-m", "aliqa_lib", "prepare", "imaginary"], capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice: 'imaginary'" in run.stderr
    run = subprocess.run([sys.executable, "-m", "aliqa_lib", "prepare", "synthetic", "--root", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "takes no --root" in run.stderr


def test_full_default_meets_its_targets(full_store):
    attrs = validate_store(full_store)
    labels = read_labels(full_store)
    assert attrs["size"] == 244
    assert len(np.unique(labels.ref)) >= 40 and len(np.unique(labels.source)) >= 20
    kinds = set(labels.distortion) - {"reference"}
    assert len(kinds) >= 10
    for kind in kinds:
        assert sorted(set(labels.level[labels.distortion == kind])) == [1, 2, 3, 4, 5]
    assert len(labels) >= 2000
    assert describe.level_spearman(labels).mean() <= -0.9
    low, high = describe.end_shares(labels)
    assert low <= 0.10 and high <= 0.10
    # pristine references sit at the top, never in the bottom half
    assert labels.mos01[labels.distortion == "reference"].min() > 0.5
