"""Topics and map at scale: a full UMAP + HDBSCAN fit against a fit on a seeded random sample
with every other paper assigned to it (service.topics.sampling), on a published build.

``paperscope bench topic-sample DATA_DIR [CONFIGS] [--json OUT]`` reads the build's embeddings,
texts and primary arXiv categories (it writes nothing in DATA_DIR) and fits each configuration
of CONFIGS, comma-separated: ``full``; a sample size (the rest placed as live additions are,
topic by a vote of neighbours); a size with ``t`` (UMAP ``transform`` instead of placing). Default:
full,10000,20000,40000.

Output: one markdown row per configuration: seconds of each stage (topics, map, assign,
labels) and in total, topics, noise share, and NMI against the primary category over all
papers, over the clustered ones only, and with noise reassigned to the nearest topic. --json
appends one JSON line per configuration.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.artifacts import BuildFolder, current_build_dir
from service.config import BUILDS, Settings
from service.eval.clustering import score_method
from service.pipeline.pipeline import topic_params
from service.schemas import TopicParams, embedding_text
from service.topics.cluster import Clustering, cluster, describe
from service.topics.labels import clean_for_labels
from service.topics.maps import layout_map
from service.topics.model import TopicModel
from service.topics.sampling import draw_sample, fit_on_sample, sample_params

DEFAULT_CONFIGS = "full,10000,20000,40000"
Array = npt.NDArray[np.float32]
HEADER = (
    "| fit | topics s | map s | assign s | labels s | total s | topics | noise | NMI all "
    "| NMI clustered | NMI reassigned |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def check_config(config: str) -> None:
    """``full``, or a sample size optionally followed by ``a`` or ``t``."""
    size = config[:-1] if config[-1:] in ("a", "t") else config
    if config != "full" and not size.isdigit():
        raise ValueError(f"configuration {config!r}: expected full, N, Na or Nt")


def read_build(data_dir: Path) -> tuple[Array, list[str], list[str]]:
    """Embeddings, label texts and primary categories of the published build, row by row."""
    path = current_build_dir(data_dir / BUILDS)
    if path is None:
        raise FileNotFoundError(f"no published build in {data_dir}")
    build = BuildFolder(path)
    vectors = np.array(build.embeddings())
    snapshot = build.papers()
    try:
        summaries = snapshot.summaries()
        abstracts = snapshot.abstracts()
    finally:
        snapshot.close()
    texts = [
        clean_for_labels(embedding_text(title, abstract))
        for title, abstract in zip(summaries.titles, abstracts, strict=True)
    ]
    primary = [(categories or ["none"])[0] for categories in summaries.categories]
    return vectors, texts, primary


class Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)


def run(config: str, vectors: Array, texts: list[str], primary: list[str]) -> dict[str, Any]:
    settings = Settings()
    params = topic_params(settings, len(vectors))
    clock = Clock()
    if config == "full":
        with clock.stage("topics"):
            clustering = cluster(vectors, params)
        with clock.stage("map"):
            coords = layout_map(vectors, params.umap_neighbors, settings.seed)
        with clock.stage("labels"):
            model = describe(clustering, vectors, texts, params, settings.label_terms)
    elif config.endswith("t"):
        model, coords = umap_transform(int(config[:-1]), vectors, texts, params, clock)
    else:
        sample = draw_sample(len(vectors), int(config), settings.seed)
        fitted = fit_on_sample(
            vectors,
            texts,
            params,
            settings.label_terms,
            sample,
            stage=clock.stage,
        )
        model, coords = fitted.model, fitted.coords
    if coords.shape != (len(vectors), 2):
        raise AssertionError(f"map of shape {coords.shape} for {len(vectors)} papers")
    total = round(sum(clock.seconds.values()), 1)
    scores = score_method(config, primary, vectors, model.assignments.astype(np.int64), total)
    return {
        "config": config,
        "papers": len(vectors),
        "stage_seconds": clock.seconds,
        "total_seconds": total,
        "topics": scores.topics,
        "noise_share": scores.noise_share,
        "nmi_all": scores.all.nmi,
        "nmi_clustered": scores.clustered.nmi,
        "nmi_reassigned": scores.reassigned.nmi,
    }


def umap_transform(
    size: int, vectors: Array, texts: list[str], params: TopicParams, clock: Clock
) -> tuple[TopicModel, Array]:
    """The alternative to placing: keep the sample's UMAP reducers and ``transform`` the rest."""
    import hdbscan
    import umap

    n = len(vectors)
    sample = draw_sample(n, size, params.seed)
    rest = np.setdiff1d(np.arange(n), sample)
    fit_params = sample_params(params, size / n)
    common: dict[str, Any] = {"n_neighbors": params.umap_neighbors, "metric": "cosine"}
    with clock.stage("topics"):
        reducer = umap.UMAP(
            n_components=params.umap_components, min_dist=0.0, random_state=params.seed, **common
        ).fit(vectors[sample])
        clusterer = hdbscan.HDBSCAN(
            min_cluster_size=fit_params.min_cluster_size,
            min_samples=fit_params.min_samples,
            cluster_selection_method=params.cluster_selection,
            prediction_data=True,
        ).fit(reducer.embedding_)
    with clock.stage("map"):
        mapper = umap.UMAP(n_components=2, min_dist=0.1, random_state=params.seed, **common).fit(
            vectors[sample]
        )
    with clock.stage("assign"):
        labels = np.empty(n, dtype=np.int32)
        labels[sample] = clusterer.labels_
        labels[rest] = hdbscan.approximate_predict(clusterer, reducer.transform(vectors[rest]))[0]
        coords = np.empty((n, 2), dtype=np.float32)
        coords[sample] = mapper.embedding_
        coords[rest] = mapper.transform(vectors[rest])
    with clock.stage("labels"):
        clustering = Clustering(labels, np.ones(n, dtype=np.float32))
        model = describe(clustering, vectors, texts, params, Settings().label_terms)
    return model, coords


def row(result: dict[str, Any]) -> str:
    s = result["stage_seconds"]
    config = result["config"]
    if config == "full":
        fit = "full fit"
    elif config.endswith("t"):
        fit = f"sample {int(config[:-1]):,}, UMAP transform"
    else:
        fit = f"sample {int(config):,}, placed, topic by neighbour vote"
    return (
        f"| {fit} | {s.get('topics', 0):.0f} | {s.get('map', 0):.0f} | {s.get('assign', 0):.0f} "
        f"| {s.get('labels', 0):.0f} | {result['total_seconds']:.0f} | {result['topics']} "
        f"| {result['noise_share']:.1%} | {result['nmi_all']:.3f} | {result['nmi_clustered']:.3f} "
        f"| {result['nmi_reassigned']:.3f} |"
    )


def measure(data_dir: Path, configs: str, json_out: Path | None = None) -> None:
    chosen = configs.split(",")
    for config in chosen:
        check_config(config)
    vectors, texts, primary = read_build(data_dir)
    print(f"{len(vectors)} papers, {len(set(primary))} primary categories")
    print(HEADER, flush=True)
    for config in chosen:
        result = run(config, vectors, texts, primary)
        print(row(result), flush=True)
        if json_out is not None:
            with json_out.open("a", encoding="utf-8") as out:
                out.write(json.dumps(result) + "\n")
