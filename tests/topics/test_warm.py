"""Warm starts: a full refit starts from the previous layout, so the map barely moves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from service.embed.backends import Embedder
from service.pipeline.pipeline import run_build
from service.query.engine import Engine
from tests.helpers import make_settings


def _positions(folder: Path) -> dict[str, tuple[float, float]]:
    ids = Engine(folder, None).paper_ids
    coords = np.load(folder / "map.npy")
    return {pid: (float(x), float(y)) for pid, (x, y) in zip(ids, coords, strict=True)}


def _moved(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> float:
    return float(np.median([np.hypot(*np.subtract(after[p], before[p])) for p in before]))


def test_a_warm_refit_keeps_the_map_where_it_was(built_copy: Path, embedder: Embedder) -> None:
    first = sorted((built_copy / "builds").glob("2*"))[-1]
    reseeded = make_settings(built_copy, seed=7)
    warm, manifest, _ = run_build(reseeded, lambda: embedder, force=True, progress=False)
    assert manifest.fit.warm_start_from == first.name
    cold_settings = make_settings(built_copy, seed=7, warm_start=False)
    cold, cold_manifest, _ = run_build(cold_settings, lambda: embedder, force=True, progress=False)
    assert cold_manifest.fit.warm_start_from is None
    before = _positions(first)
    warm_moved, cold_moved = _moved(before, _positions(warm)), _moved(before, _positions(cold))
    print(f"median map move: warm {warm_moved:.3f}, cold {cold_moved:.3f}")
    # A cold start begins from UMAP's spectral embedding of the same graph, which does not depend
    # on the seed, so on a small corpus it can land near the old map too (the warm start moved
    # under half as far on an AMX Xeon; 0.086 against 0.096 on an AMD EPYC, whose bf16 vectors
    # differ in the last bits): the warm start must move less, and little.
    assert warm_moved < cold_moved
    assert warm_moved < 0.15
