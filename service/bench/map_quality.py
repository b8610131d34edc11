"""How readable a build's map is: do papers sit among their own topic, and among their neighbours?

``paperscope bench map-quality DATA_DIR`` reads the published build (nothing is written) and
scores several layouts of the same papers and topics:

- **as built**: the build's own ``map.npy``;
- for a sampled fit (``fit.sampled_papers``), the papers it placed placed again from the same
  fitted sample: **placed by all neighbours** (the weighted mean of the nearest fitted papers'
  positions, whatever their topic: how builds placed papers before) and **placed within topic**
  (:func:`service.topics.placement.topic_coords`, how they are placed now);
- **plain UMAP**: the map's own UMAP fitted on the evaluation sample alone (``--plain-all``: on
  every paper, minutes on a large corpus).

Columns: the share of each paper's ``k`` nearest map neighbours in its own topic (over all
papers, and over the placed ones), and on a seeded evaluation sample the same share among the
sample and scikit-learn's trustworthiness (are a paper's map neighbours its neighbours in
embedding space?). datamapplot draws the coordinates it is given, so its rendering of a layout
scores as that layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from service.artifacts import BuildFolder, current_build_dir
from service.config import BUILDS
from service.search.index import flat_index
from service.topics.maps import layout_map
from service.topics.placement import neighbour_weights, topic_coords
from service.topics.reduce import neighbour_graph
from service.topics.sampling import draw_sample

Array = npt.NDArray[np.float32]


def topic_share(coords: Array, topics: npt.NDArray[np.int32], k: int) -> npt.NDArray[np.float64]:
    """Per paper: the share of its ``k`` nearest map neighbours (itself left out) in its topic."""
    from sklearn.neighbors import NearestNeighbors

    _, rows = NearestNeighbors(n_neighbors=k + 1).fit(coords).kneighbors(coords)
    same: npt.NDArray[np.float64] = (topics[rows[:, 1:]] == topics[:, None]).mean(axis=1)
    return same


def trust(vectors: Array, coords: Array, k: int) -> float:
    from sklearn.manifold import trustworthiness

    return float(trustworthiness(vectors, coords, n_neighbors=k))


def replaced(
    vectors: Array,
    coords: Array,
    topics: npt.NDArray[np.int32],
    sample: npt.NDArray[np.int64],
    k: int,
) -> tuple[Array, Array, npt.NDArray[np.int64]]:
    """The papers outside ``sample`` placed again among it: (by all neighbours, within topic,
    the placed rows), as full layouts (the sample keeps its fitted positions)."""
    rest = np.setdiff1d(np.arange(len(vectors), dtype=np.int64), sample)
    rows, weights, _ = neighbour_weights(flat_index(vectors[sample]), vectors[rest], k)
    fitted = coords[sample]
    by_all, within = coords.copy(), coords.copy()
    by_all[rest] = np.einsum("nk,nkd->nd", weights, fitted[rows])
    within[rest] = topic_coords(fitted, topics[sample], rows, weights, topics[rest])
    return by_all, within, rest


def measure(data_dir: Path, eval_size: int, k: int, plain_all: bool) -> None:
    path = current_build_dir(data_dir / BUILDS)
    if path is None:
        raise FileNotFoundError(f"no published build in {data_dir}")
    build = BuildFolder(path)
    manifest = build.manifest()
    vectors, topics = np.array(build.embeddings()), build.assignments()
    coords, n, seed = build.map_coords(), len(topics), manifest.topics.seed
    layouts: dict[str, Array] = {"as built": coords}
    placed = np.zeros(0, dtype=np.int64)
    if manifest.fit.sampled_papers:
        sample = draw_sample(n, manifest.fit.sampled_papers, seed)
        by_all, within, placed = replaced(vectors, coords, topics, sample, manifest.map_neighbors)
        layouts["placed by all neighbours"] = by_all
        layouts["placed within topic"] = within
    evaluated = draw_sample(n, eval_size, seed + 1)
    plain = None
    if plain_all:
        graph = neighbour_graph(vectors, manifest.map_neighbors)
        layouts["plain UMAP, all papers"] = layout_map(
            vectors, manifest.map_neighbors, seed, None, graph
        )
    else:
        plain = layout_map(vectors[evaluated], manifest.map_neighbors, seed)
    print(f"{n} papers, {len(placed)} placed after a sampled fit; k={k}")
    print(f"evaluation sample: {len(evaluated)} papers (same topic among it, trustworthiness)")
    print(
        "| layout | same topic, all | same topic, placed | same topic, sample | trustworthiness |"
    )
    print("|---|---:|---:|---:|---:|")
    for name, layout in layouts.items():
        share = topic_share(layout, topics, k)
        of_placed = f"{share[placed].mean():.3f}" if len(placed) else "-"
        small = topic_share(layout[evaluated], topics[evaluated], k).mean()
        t = trust(vectors[evaluated], layout[evaluated], k)
        print(f"| {name} | {share.mean():.3f} | {of_placed} | {small:.3f} | {t:.3f} |", flush=True)
    if plain is not None:
        small = topic_share(plain, topics[evaluated], k).mean()
        t = trust(vectors[evaluated], plain, k)
        print(f"| plain UMAP of the sample | - | - | {small:.3f} | {t:.3f} |")
