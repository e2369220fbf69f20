"""Input checks shared across chapters: one home for the "no NaN or infinite value" rule."""
from __future__ import annotations

import numpy as np


def require_finite(values: np.ndarray, what: str, chunk: int = 1 << 22) -> np.ndarray:
    """Return `values` as an array, or raise ValueError naming `what`, how many entries are NaN/inf
    and where the first one sits (selectors and metrics would otherwise return a silent wrong result).
    Large arrays (a pool memory-mapped from disk) are checked about `chunk` entries at a time along the
    first axis, so the check holds no full-size temporary."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be numeric, got dtype {array.dtype}")
    if array.dtype.kind != "f":
        return array                                     # booleans and integers are always finite
    step = max(1, chunk // max(1, array[0].size)) if array.size else 1
    if array.ndim == 0 or array.size == 0 or all(np.isfinite(array[i:i + step]).all() for i in range(0, len(array), step)):
        return array
    bad = ~np.isfinite(array)
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    where = first[0] if len(first) == 1 else first
    raise ValueError(f"{what} hold {int(bad.sum())} NaN/inf value(s) (first at {where}); drop or impute "
                     "those rows (e.g. images whose features could not be computed) before calling again")
