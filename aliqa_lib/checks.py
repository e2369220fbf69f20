"""Input checks shared across chapters: one home for the "no NaN or infinite value" rule."""
from __future__ import annotations

import numpy as np


def require_finite(values: np.ndarray, what: str) -> np.ndarray:
    """Return `values` as an array, or raise ValueError naming `what`, how many entries are NaN/inf
    and where the first one sits (selectors and metrics would otherwise return a silent wrong result)."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        where = first[0] if len(first) == 1 else first
        raise ValueError(f"{what} hold {int(bad.sum())} NaN/inf value(s) (first at {where}); drop or impute "
                         "those rows (e.g. images whose features could not be computed) before calling again")
    return array
