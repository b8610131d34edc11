"""A build: run every stage over the stored papers and publish the result atomically.

Layout of the data directory::

    papers.sqlite            the store (papers + embedding cache)
    builds/<build_id>/       one folder per build: manifest.json, embeddings.npy, index.faiss,
                             papers.sqlite (snapshot + topic per paper), topics.json,
                             assignments.npy, map.npy, duplicates.json, reduced.npy,
                             neighbours.npy + neighbour_scores.npy (like-this, precomputed),
                             clusterer.joblib (to place papers added live, see service.live),
                             lexical/ (the BM25 index: bm25s arrays + vocabulary)
    builds/CURRENT           the id of the published build (replaced atomically)

Artifacts are written into ``builds/.tmp-<id>`` and renamed into place, then ``CURRENT`` is
swapped, so a reader never sees half a build and a crash leaves the previous build serving.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import secrets
import shutil
import sqlite3
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from importlib import metadata
from pathlib import Path

import numpy as np

from service import incremental
from service.config import Settings
from service.duplicates import duplicates_in_lists, find_duplicates
from service.embed import ChunkEncoder, Embedder
from service.errors import InvalidInput, NotReady
from service.index import build_index, reranks, save_index
from service.ingest import NO_FILTER, IngestFilter, apply_filter, read_records
from service.ingest.tabular import NO_MAP, ColumnMap
from service.lexical import LEXICAL_DIR, LexicalIndex, LexicalParams
from service.lineage import Carried, carry_over, load_previous
from service.maps import layout_map
from service.neighbours import LIST_DEPTH, MAX_LISTED_PAPERS, neighbour_lists, save_lists
from service.passages import embed_papers, load_windowing
from service.placement import MapFn
from service.sampling import fit_on_sample, sample_rows
from service.schemas import BuildManifest, FitInfo, IngestReport, ModelInfo, Paper, TopicParams
from service.store import Store, embedding_text, hash_corpus, paper_fields
from service.topics import TopicModel, clean_for_labels, fit_topics, resolve_params
from service.warm import WarmStart, warm_start

log = logging.getLogger(__name__)

DEFAULT_CORPUS = Path(__file__).parent / "data" / "trending-papers.jsonl"
KEEP_BUILDS = 3
CURRENT = "CURRENT"
LIBRARIES = (
    "paperscope",
    "sentence-transformers",
    "torch",
    "faiss-cpu",
    "bm25s",
    "umap-learn",
    "hdbscan",
    "scikit-learn",
    "numpy",
)


def library_versions() -> dict[str, str]:
    versions = {"python": sys.version.split()[0]}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def current_build_dir(builds_dir: Path) -> Path | None:
    """The published build folder, or None when nothing was published yet."""
    pointer = builds_dir / CURRENT
    if not pointer.exists():
        return None
    build_id = pointer.read_text(encoding="utf-8").strip()
    folder = builds_dir / build_id
    return folder if build_id and folder.is_dir() else None


def read_manifest(build_dir: Path) -> BuildManifest:
    return BuildManifest.model_validate_json((build_dir / "manifest.json").read_text("utf-8"))


@contextmanager
def _build_lock(builds_dir: Path) -> Iterator[None]:
    builds_dir.mkdir(parents=True, exist_ok=True)
    with (builds_dir / ".lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise InvalidInput(f"another build is running in {builds_dir}") from None
        yield


def ingest_file(
    store: Store,
    path: Path,
    fmt: str = "auto",
    progress: bool = True,
    columns: ColumnMap = NO_MAP,
    keep: IngestFilter = NO_FILTER,
) -> IngestReport:
    """Read one file into the store (one transaction); the report says what changed."""
    from tqdm import tqdm

    resolved, records = read_records(path, fmt, columns)
    report = IngestReport(file=str(path), format=resolved)
    shown = tqdm(records, desc=f"ingest {path.name}", unit="rec", disable=not progress)
    store.ingest(apply_filter(iter(shown), keep, report), report)
    return report


@dataclass
class StageClock:
    """Times each stage so the manifest (and the closing log line) can report them; a stage
    entered twice adds up."""

    seconds: dict[str, float]

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        log.info("stage %s ...", name)
        yield
        self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - start, 3)
        log.info("stage %s done in %.1fs", name, self.seconds[name])


def _write_papers_snapshot(
    path: Path, papers: list[tuple[Paper, str]], assignments: np.ndarray
) -> None:
    db = sqlite3.connect(path)
    db.execute(
        "CREATE TABLE papers (row INTEGER PRIMARY KEY, id TEXT UNIQUE NOT NULL, title TEXT, "
        "abstract TEXT, authors TEXT, categories TEXT, date TEXT, source TEXT, topic INTEGER)"
    )
    rows = (
        (row, p.id, *paper_fields(p), int(assignments[row])) for row, (p, _) in enumerate(papers)
    )
    db.executemany("INSERT INTO papers VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    db.commit()
    db.close()


def _write_topics(path: Path, carried: Carried, previous_build: str | None) -> None:
    model = carried.model
    payload = {
        "next_topic_id": carried.next_id,
        "previous_build": previous_build,
        "hdbscan_to_topic": {str(k): v for k, v in model.hdbscan_to_topic.items()},
        "topics": [
            {
                "id": t.id,
                "label": t.label,
                "keywords": t.keywords,
                "members": t.members,
                "parents": [{"id": p, "shared": n} for p, n in carried.parents.get(t.id, [])],
            }
            for t in model.topics
        ],
        "groups": [
            {"id": g.id, "label": g.label, "keywords": g.keywords, "children": g.children}
            for g in model.groups
        ],
    }
    path.write_text(json.dumps(payload), encoding="utf-8")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _publish(builds_dir: Path, staging: Path, build_id: str) -> Path:
    """Make the staged build durable, rename it into place, then swap the CURRENT pointer."""
    for artifact in staging.rglob("*"):  # the lexical index is a folder of files
        _fsync(artifact)
    _fsync(staging)
    final = builds_dir / build_id
    staging.rename(final)
    _fsync(builds_dir)
    pointer_tmp = builds_dir / f".{CURRENT}.tmp"
    pointer_tmp.write_text(build_id, encoding="utf-8")
    with pointer_tmp.open("rb") as handle:
        os.fsync(handle.fileno())
    os.replace(pointer_tmp, builds_dir / CURRENT)
    _fsync(builds_dir)
    return final


def _prune(builds_dir: Path, keep: str) -> None:
    """Remove leftovers of crashed builds and all but the newest KEEP_BUILDS builds."""
    for leftover in builds_dir.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    builds = sorted(p for p in builds_dir.iterdir() if p.is_dir() and not p.name.startswith("."))
    for old in builds[:-KEEP_BUILDS]:
        if old.name != keep:
            shutil.rmtree(old, ignore_errors=True)


def run_build(
    settings: Settings,
    embedder_factory: Callable[[], Embedder],
    *,
    force: bool = False,
    progress: bool = True,
) -> tuple[Path, BuildManifest, bool]:
    """Build and publish; returns (build folder, manifest, whether a new build was made).

    Without ``force``, an up-to-date build (same corpus, model and parameters) is kept as is.
    An empty store is first filled with the bundled default corpus.
    """
    builds_dir = settings.builds_dir
    with _build_lock(builds_dir), Store(settings.db_path) as store:
        for leftover in builds_dir.glob(".tmp-*"):
            shutil.rmtree(leftover, ignore_errors=True)
        if store.count() == 0:
            log.info("the store is empty: ingesting the bundled corpus %s", DEFAULT_CORPUS.name)
            ingest_file(store, DEFAULT_CORPUS, progress=progress)
        papers = store.snapshot()
        n = len(papers)
        corpus_hash = hash_corpus((p.id, h) for p, h in papers)

        embedder = embedder_factory()
        if settings.umap_components >= embedder.dim:
            raise InvalidInput(
                f"umap_components ({settings.umap_components}) must be below the model's "
                f"dimension ({embedder.dim})"
            )
        current = current_build_dir(builds_dir)
        base = _readable_manifest(current)
        same_inputs = (
            base is not None
            and base.model.revision == embedder.revision
            and base.build_settings == _build_settings(settings)
        )
        if current and base and same_inputs and not force and base.corpus_hash == corpus_hash:
            log.info("build %s is up to date (same corpus, model, settings)", current.name)
            return current, base, False

        clock = StageClock({})
        increment = (
            incremental.plan(
                current,
                base,
                [p.id for p, _ in papers],
                [h for _, h in papers],
                settings.incremental_limit,
            )
            if same_inputs and not force
            else None
        )
        if increment is not None:  # the base build's rows first, in its order; new ones after
            papers = [papers[i] for i in increment.order]
        ids = [p.id for p, _ in papers]
        hashes = [h for _, h in papers]
        with clock.stage("embed"):
            texts = [embedding_text(p) for p, _ in papers]
            vectors, embedded_new = embed_papers(
                store,
                embedder,
                [(p.title, p.abstract) for p, _ in papers],
                hashes,
                load_windowing(settings),
                progress,
                _chunk_encoder(settings, embedder),
            )
        with clock.stage("index"):
            extended = incremental.extend_index(increment, vectors) if increment else None
            index, index_info = extended or build_index(
                vectors, settings.exact_index_max, settings.compressed_index_above, settings.seed
            )
        with clock.stage("neighbours"):
            stored = vectors if reranks(index_info) else None  # searched as the engine will
            lists = (
                neighbour_lists(index, vectors, LIST_DEPTH, stored=stored)
                if n <= MAX_LISTED_PAPERS
                else None
            )
            if increment:
                threshold = settings.duplicate_threshold
                duplicates = incremental.duplicates(increment, index, vectors, threshold)
            elif lists is not None:
                duplicates = duplicates_in_lists(
                    lists, np.arange(n), vectors, settings.duplicate_threshold
                )
            else:
                duplicates = find_duplicates(index, vectors, settings.duplicate_threshold)
        if increment is not None:
            with clock.stage("place"):
                folded = incremental.fold(increment, vectors)
            carried, coords, fit = folded.carried, folded.coords, folded.fit
            previous_build: str | None = increment.base.name
            clusterer_source: Path | None = increment.base / "clusterer.joblib"
        else:
            params = topic_params(settings, n)
            start = (
                warm_start(current, base, ids, vectors, params.umap_components)
                if settings.warm_start and base and base.model.revision == embedder.revision
                else None
            )
            label_texts = [clean_for_labels(t) for t in texts]
            fitted, coords, sample = _fit_topics_and_map(
                settings, vectors, label_texts, params, start, clock, progress
            )
            with clock.stage("topics" if sample is None else "labels"):
                previous = load_previous(current, embedder.revision)
                carried = carry_over(fitted, ids, vectors, previous)
            fit = FitInfo(
                mode="full",
                fitted_papers=n,
                warm_start_from=current.name if start and current else None,
                sampled_papers=None if sample is None else len(sample),
            )
            previous_build = previous.build_id if previous else None
            clusterer_source = None
        topic_model = carried.model
        with clock.stage("lexical"):
            lexical = LexicalIndex.build(
                [(p.title, p.abstract) for p, _ in papers], lexical_params(settings)
            )

        stamp = datetime.now(UTC)
        build_id = f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        staging = builds_dir / f".tmp-{build_id}"
        staging.mkdir(parents=True)
        try:
            with clock.stage("write"):
                np.save(staging / "embeddings.npy", vectors)
                np.save(staging / "assignments.npy", topic_model.assignments)
                np.save(staging / "map.npy", coords)
                save_index(index, staging / "index.faiss")
                if lists is not None:
                    save_lists(lists, staging)
                lexical.save(staging / LEXICAL_DIR)
                _write_papers_snapshot(staging / "papers.sqlite", papers, topic_model.assignments)
                _write_topics(staging / "topics.json", carried, previous_build)
                (staging / "duplicates.json").write_text(
                    json.dumps([{"a": a, "b": b, "score": score} for a, b, score in duplicates]),
                    encoding="utf-8",
                )
                if topic_model.reduced is not None:
                    np.save(staging / "reduced.npy", topic_model.reduced)
                if topic_model.clusterer is not None:
                    import joblib

                    joblib.dump(topic_model.clusterer, staging / "clusterer.joblib")
                elif clusterer_source is not None and clusterer_source.is_file():
                    shutil.copyfile(clusterer_source, staging / "clusterer.joblib")
            noise = float(np.mean(topic_model.assignments == -1)) if n else 0.0
            manifest = BuildManifest(
                build_id=build_id,
                created_at=stamp.isoformat(timespec="seconds"),
                model=ModelInfo(
                    name=embedder.name,
                    revision=embedder.revision,
                    dim=embedder.dim,
                    backend=embedder.backend,
                    agreement=getattr(embedder, "agreement", None),
                ),
                papers=n,
                corpus_hash=corpus_hash,
                embedded_new=embedded_new,
                index=index_info,
                topics=topic_model.params,
                n_topics=sum(1 for t in topic_model.topics if t.id >= 0),
                noise_share=round(noise, 4),
                map_neighbors=topic_model.params.umap_neighbors,
                stage_seconds=clock.seconds,
                build_settings=_build_settings(settings),
                duplicates=len(duplicates),
                fit=fit
                if fit.mode == "incremental"
                else fit.model_copy(update={"fitted_build": build_id}),
                topic_ids={"previous_build": previous_build, **carried.stats},
                versions=library_versions(),
            )
            (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2), "utf-8")
            final = _publish(builds_dir, staging, build_id)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _prune(builds_dir, keep=build_id)
        log.info("published build %s (%s fit): %s", build_id, fit.mode, clock.seconds)
        return final, manifest, True


def _fit_topics_and_map(
    settings: Settings,
    vectors: np.ndarray,
    label_texts: list[str],
    params: TopicParams,
    start: WarmStart | None,
    clock: StageClock,
    progress: bool,
) -> tuple[TopicModel, np.ndarray, np.ndarray | None]:
    """Topics and map of a full fit: of every paper, or above ``topic_sample_above`` papers of
    a sample with the rest assigned (:mod:`service.sampling`). Also returns the sample's rows."""
    sample = sample_rows(
        len(vectors), settings.topic_sample_above, settings.topic_sample_size, settings.seed
    )
    if sample is not None:
        on_sample = fit_on_sample(
            vectors,
            label_texts,
            params,
            settings.label_terms,
            sample,
            init_reduced=start.reduced if start else None,
            init_coords=start.coords if start else None,
            stage=clock.stage,
            map_fn=_placement_map(settings),
            progress=progress,
        )
        return on_sample.model, on_sample.coords, sample
    with clock.stage("topics"):
        fitted = fit_topics(
            vectors,
            label_texts,
            params,
            settings.label_terms,
            init=start.reduced if start else None,
        )
    with clock.stage("map"):
        coords = layout_map(
            vectors, params.umap_neighbors, settings.seed, start.coords if start else None
        )
    return fitted, coords, None


def _readable_manifest(build_dir: Path | None) -> BuildManifest | None:
    if build_dir is None:
        return None
    try:
        return read_manifest(build_dir)
    except (OSError, ValueError):
        log.warning("build %s has an unreadable manifest; refitting", build_dir.name)
        return None


def _placement_map(settings: Settings) -> MapFn | None:
    """How papers left out of a sampled fit are placed: here (None) or as Ray tasks."""
    if settings.engine == "local":
        return None
    from service.ray_engine import map_on_ray

    return partial(map_on_ray, address=settings.ray_address)


def _chunk_encoder(settings: Settings, embedder: Embedder) -> ChunkEncoder | None:
    """How new texts are embedded: here (None, the default) or on Ray (``engine = ray``)."""
    if settings.engine == "local":
        return None
    from service.ray_engine import ray_encoder

    return ray_encoder(settings, embedder, settings.ray_address)


def _build_settings(settings: Settings) -> dict[str, int | float | str]:
    """Settings a build's result depends on, as configured (``auto`` where left open)."""
    return {
        "label_terms": settings.label_terms,
        "exact_index_max": settings.exact_index_max,
        "compressed_index_above": settings.compressed_index_above,
        "duplicate_threshold": settings.duplicate_threshold,
        "embed_window_tokens": settings.embed_window_tokens,
        "embed_window_stride": settings.embed_window_stride,
        "embed_pooling": "mean of windows" if settings.embed_window_tokens else "none",
        "bm25_k1": settings.bm25_k1,
        "bm25_b": settings.bm25_b,
        "bm25_title_weight": settings.bm25_title_weight,
        "umap_components": settings.umap_components,
        "umap_neighbors": settings.umap_neighbors or "auto",
        "min_cluster_size": settings.min_cluster_size or "auto",
        "min_samples": settings.min_samples or "auto",
        "cluster_selection": settings.cluster_selection,
        "topic_sample_above": settings.topic_sample_above,
        "topic_sample_size": settings.topic_sample_size,
        "seed": settings.seed,
    }


def lexical_params(settings: Settings) -> LexicalParams:
    return LexicalParams(
        k1=settings.bm25_k1, b=settings.bm25_b, title_weight=settings.bm25_title_weight
    )


def topic_params(settings: Settings, n: int) -> TopicParams:
    return resolve_params(
        n,
        umap_components=settings.umap_components,
        umap_neighbors=settings.umap_neighbors,
        min_cluster_size=settings.min_cluster_size,
        min_samples=settings.min_samples,
        cluster_selection=settings.cluster_selection,
        seed=settings.seed,
    )


def require_build(settings: Settings) -> Path:
    build = current_build_dir(settings.builds_dir)
    if build is None:
        raise NotReady(f"no build in {settings.data_dir}; run: paperscope build")
    return build
