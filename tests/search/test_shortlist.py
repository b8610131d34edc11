"""A float16 shortlist always holds the exact n best rows, ties and near-ties included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.search.shortlist import SHORTLIST_EXTRA, HalfPrecisionRows


def _unit(matrix: np.ndarray) -> np.ndarray:
    unit: np.ndarray = (matrix / np.linalg.norm(matrix, axis=1, keepdims=True)).astype(np.float32)
    return unit


@given(
    seed=st.integers(0, 2**32 - 1),
    size=st.integers(40, 600),
    copies=st.integers(0, 30),
    nudge=st.sampled_from([0.0, 1e-6, 1e-4, 1e-3]),
    n=st.integers(1, 10),
)
@settings(max_examples=150, deadline=None)
def test_the_shortlist_holds_the_exact_best(
    seed: int, size: int, copies: int, nudge: float, n: int
) -> None:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((size, 16)).astype(np.float32)
    query = _unit(rng.standard_normal((1, 16)))[0]
    # rows tied with (or a hair away from) a row close to the query: the hard case
    close = _unit(query[None, :] + 0.3 * rng.standard_normal((1, 16)))
    spots = rng.choice(size, size=min(copies, size), replace=False)
    vectors[spots] = close + nudge * rng.standard_normal((len(spots), 16))
    vectors = _unit(vectors)
    rows = HalfPrecisionRows(vectors)
    short = rows.shortlist(query, n)
    if short is None:  # near-ties past the depth: the caller scans exactly
        assert copies + n > SHORTLIST_EXTRA or n > size // 4
        return
    exact = vectors @ query
    nth = np.sort(exact)[::-1][n - 1]
    best = set(np.flatnonzero(exact >= nth).tolist())
    assert best <= set(short.tolist())
    assert short.tolist() == sorted(short.tolist())


def test_a_large_n_asks_for_an_exact_scan() -> None:
    vectors = _unit(np.random.default_rng(0).standard_normal((100, 8)))
    rows = HalfPrecisionRows(vectors)
    assert rows.shortlist(vectors[0], 26) is None
    assert rows.shortlist(vectors[0], 25) is not None
    assert rows.nbytes == 100 * 8 * 2
