"""Full fit against sample fit + assign, on a published build; see scripts/topic-sample."""

from __future__ import annotations

import argparse
import json
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from service.artifacts import current_build_dir
from service.build.pipeline import topic_params
from service.config import Settings
from service.eval.clustering import score_method
from service.schemas import TopicParams
from service.topics.cluster import Clustering, cluster, describe
from service.topics.labels import clean_for_labels
from service.topics.maps import layout_map
from service.topics.model import TopicModel


def read_build(data_dir: Path) -> tuple[npt.NDArray[np.float32], list[str], list[str]]:
    """Embeddings, label texts and primary categories of the published build, row by row."""
    build = current_build_dir(data_dir / "builds")
    if build is None:
        raise SystemExit(f"no published build in {data_dir}")
    vectors = np.load(build / "embeddings.npy")
    db = sqlite3.connect(f"file:{build / 'papers.sqlite'}?mode=ro", uri=True)
    rows = db.execute("SELECT title, abstract, categories FROM papers ORDER BY row").fetchall()
    db.close()
    texts = [clean_for_labels(f"{title}. {abstract}") for title, abstract, _ in rows]
    primary = [(json.loads(categories) or ["none"])[0] for _, _, categories in rows]
    return vectors, texts, primary


class Clock:
    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.seconds[name] = round(time.perf_counter() - start, 1)


def run(config: str, vectors: Any, texts: list[str], primary: list[str]) -> dict[str, Any]:
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
        from service.topics.sampling import draw_sample, fit_on_sample

        sample = draw_sample(len(vectors), int(config.rstrip("a")), settings.seed)
        fitted = fit_on_sample(
            vectors,
            texts,
            params,
            settings.label_terms,
            sample,
            stage=clock.stage,
            vote=not config.endswith("a"),
        )
        model, coords = fitted.model, fitted.coords
    assert coords.shape == (len(vectors), 2)
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
    size: int, vectors: Any, texts: list[str], params: TopicParams, clock: Clock
) -> tuple[TopicModel, Any]:
    """The alternative to placing: keep the sample's UMAP reducers and ``transform`` the rest."""
    import hdbscan
    import umap

    from service.topics.sampling import draw_sample, sample_params

    n = len(vectors)
    sample = draw_sample(n, size, params.seed)
    rest = np.setdiff1d(np.arange(n), sample)
    fit_params = sample_params(params, size / n)
    common = {"n_neighbors": params.umap_neighbors, "metric": "cosine"}
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
    elif config.endswith("a"):
        fit = f"sample {int(config[:-1]):,}, placed, topic by approximate_predict"
    else:
        fit = f"sample {int(config):,}, placed, topic by neighbour vote"
    return (
        f"| {fit} | {s.get('topics', 0):.0f} | {s.get('map', 0):.0f} | {s.get('assign', 0):.0f} "
        f"| {s.get('labels', 0):.0f} | {result['total_seconds']:.0f} | {result['topics']} "
        f"| {result['noise_share']:.1%} | {result['nmi_all']:.3f} | {result['nmi_clustered']:.3f} "
        f"| {result['nmi_reassigned']:.3f} |"
    )


HEADER = (
    "| fit | topics s | map s | assign s | labels s | total s | topics | noise | NMI all "
    "| NMI clustered | NMI reassigned |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("configs", nargs="?", default="full,10000,20000,40000")
    parser.add_argument("--json", type=Path, help="append one JSON line per configuration")
    args = parser.parse_args()
    vectors, texts, primary = read_build(args.data_dir)
    print(f"{len(vectors)} papers, {len(set(primary))} primary categories")
    print(HEADER, flush=True)
    for config in args.configs.split(","):
        result = run(config, vectors, texts, primary)
        print(row(result), flush=True)
        if args.json:
            with args.json.open("a", encoding="utf-8") as out:
                out.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
