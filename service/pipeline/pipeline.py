"""A build: run every stage over the stored papers and publish the result atomically.

The stages, in order: embed (service.embed), index, like-this lists and duplicates
(service.search), topics and map (service.topics), the BM25 index, then write and publish
(service.artifacts owns the build folder). When few papers changed since the published build,
its topics and map are kept and only the new papers are placed (service.pipeline.incremental).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property, partial
from importlib import metadata
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

from service import artifacts
from service.artifacts import BuildFolder, GroupEntry, NewBuild, TopicEntry, TopicsFile
from service.config import Settings
from service.embed.backends import ChunkEncoder, Embedder, Vectors
from service.embed.passages import embed_papers, load_windowing
from service.errors import DiskFull, InvalidInput, StorageError, megabytes, storage_error
from service.ingest import BUNDLED_CORPUS, ingest_file
from service.pipeline import incremental
from service.schemas import (
    BuildManifest,
    FitInfo,
    IndexInfo,
    ModelInfo,
    Paper,
    TopicParams,
    embedding_text,
)
from service.search.duplicates import duplicates_in_lists, find_duplicates
from service.search.index import build_index, reranks
from service.search.lexical import LexicalIndex, LexicalParams
from service.search.neighbours import LIST_DEPTH, MAX_LISTED_PAPERS, Lists, neighbour_lists
from service.store import Store, hash_corpus
from service.topics.cluster import fit_topics, resolve_params
from service.topics.labels import PhraseEncoder, clean_for_labels
from service.topics.lineage import Carried, carry_over, load_previous
from service.topics.maps import layout_map
from service.topics.model import TopicModel
from service.topics.placement import MapFn
from service.topics.reduce import neighbour_graph
from service.topics.sampling import fit_on_sample, sample_rows
from service.topics.warm import WarmStart, warm_start

log = logging.getLogger(__name__)

LEXICAL_ELSEWHERE_FROM = 10_000
"""From this many papers the BM25 index is built in a child process while the topics are fitted
(below it, it takes a few seconds and a child process would cost as much to start)."""

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


@dataclass(frozen=True)
class Corpus:
    """The stored papers a build is made of, in its row order, each with its content hash."""

    papers: list[tuple[Paper, str]]
    hash: str
    """Of every (id, content hash): equal hashes mean the same embedded corpus."""

    @cached_property
    def ids(self) -> list[str]:
        return [paper.id for paper, _ in self.papers]

    @cached_property
    def hashes(self) -> list[str]:
        return [content for _, content in self.papers]

    @cached_property
    def titled(self) -> list[tuple[str, str]]:
        return [(paper.title, paper.abstract) for paper, _ in self.papers]


@dataclass(frozen=True)
class Base:
    """The published build a new one starts from; its manifest is None when it is unreadable,
    the folder too when there is none or it is damaged."""

    folder: Path | None
    manifest: BuildManifest | None
    same_inputs: bool
    """Made with the same model and build settings: it may be kept or built on incrementally."""

    def kept_for(self, corpus_hash: str) -> tuple[Path, BuildManifest] | None:
        """This build, when a new one would be the same (same corpus, model and settings)."""
        if not (self.folder and self.manifest and self.same_inputs):
            return None
        return (self.folder, self.manifest) if self.manifest.corpus_hash == corpus_hash else None


@dataclass(frozen=True)
class Fitted:
    """What the topic stages made: the topics (ids carried over), the map and how it was fitted."""

    carried: Carried
    coords: npt.NDArray[np.float32]
    fit: FitInfo
    previous_build: str | None
    """The build whose topic ids were carried over."""
    clusterer_from: BuildFolder | None
    """The build whose fitted clusterer is kept (an incremental build), else None."""


@dataclass(frozen=True)
class Parts:
    """Everything the stages made: what the new build folder and its manifest hold."""

    corpus: Corpus
    vectors: Vectors
    embedded_new: int
    index: faiss.Index
    index_info: IndexInfo
    lists: Lists | None
    duplicates: list[tuple[int, int, float]]
    fitted: Fitted
    lexical: LexicalIndex


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
    with artifacts.build_lock(builds_dir), Store(settings.db_path) as store:
        store.ensure_sound()  # a damaged database is refused, not built from
        artifacts.remove_leftovers(builds_dir)
        corpus = _read_corpus(store, progress)
        embedder = _load_embedder(settings, embedder_factory)
        base = _base(settings, embedder)
        kept = None if force else base.kept_for(corpus.hash)
        if kept is not None:
            log.info("build %s is up to date (same corpus, model, settings)", kept[0].name)
            return *kept, False

        clock = StageClock({})
        increment = None if force else _plan(settings, base, corpus)
        if increment is not None:  # the base build's rows first, in its order; new ones after
            corpus = replace(corpus, papers=[corpus.papers[i] for i in increment.order])
        vectors, embedded_new = _embed(clock, settings, store, embedder, corpus, progress)
        index, index_info = _index(clock, settings, increment, vectors)
        lists, duplicates = _neighbours(clock, settings, increment, index, index_info, vectors)
        lexical = _start_lexical(settings, corpus)
        fitted = (
            _place(clock, increment, vectors)
            if increment is not None
            else _fit(clock, settings, base, corpus, vectors, embedder, progress)
        )
        with clock.stage("lexical"):  # what is left of it after the topic stages
            lexical_index = lexical()
        parts = Parts(
            corpus,
            vectors,
            embedded_new,
            index,
            index_info,
            lists,
            duplicates,
            fitted,
            lexical_index,
        )
        final, manifest = _write_and_publish(settings, embedder, base.folder, parts, clock)
        log.info(
            "published build %s (%s fit): %s", manifest.build_id, fitted.fit.mode, clock.seconds
        )
        return final, manifest, True


def _read_corpus(store: Store, progress: bool) -> Corpus:
    """The stored papers, read in one transaction; an empty store gets the bundled corpus."""
    if store.count() == 0:
        log.info("the store is empty: ingesting the bundled corpus %s", BUNDLED_CORPUS.name)
        ingest_file(store, BUNDLED_CORPUS, progress=progress)
    papers = store.snapshot()
    return Corpus(papers, hash_corpus((p.id, h) for p, h in papers))


def _load_embedder(settings: Settings, embedder_factory: Callable[[], Embedder]) -> Embedder:
    """The embedding model, refused when the map's UMAP would not reduce its dimension."""
    embedder = embedder_factory()
    if settings.umap_components >= embedder.dim:
        raise InvalidInput(
            f"umap_components ({settings.umap_components}) must be below the model's "
            f"dimension ({embedder.dim})"
        )
    return embedder


def _base(settings: Settings, embedder: Embedder) -> Base:
    """The published build, when sound, and whether it was made as this build would be."""
    current = _sound(artifacts.current_build_dir(settings.builds_dir))
    manifest = _readable_manifest(current)
    same_inputs = (
        manifest is not None
        and manifest.model.revision == embedder.revision
        and manifest.build_settings == _build_settings(settings)
    )
    return Base(current, manifest, same_inputs)


def _plan(settings: Settings, base: Base, corpus: Corpus) -> incremental.Plan | None:
    """An incremental build over the base build when few papers changed, else None."""
    if not base.same_inputs:
        return None
    return incremental.plan(
        base.folder, base.manifest, corpus.ids, corpus.hashes, settings.incremental_limit
    )


def _embed(
    clock: StageClock,
    settings: Settings,
    store: Store,
    embedder: Embedder,
    corpus: Corpus,
    progress: bool,
) -> tuple[Vectors, int]:
    """Stage embed: a vector per paper, from the cache or embedded (and cached); returns the
    vectors and how many texts were embedded."""
    with clock.stage("embed"):
        return embed_papers(
            store,
            embedder,
            corpus.titled,
            corpus.hashes,
            load_windowing(settings),
            progress,
            _chunk_encoder(settings, embedder),
        )


def _index(
    clock: StageClock, settings: Settings, increment: incremental.Plan | None, vectors: Vectors
) -> tuple[faiss.Index, IndexInfo]:
    """Stage index: the FAISS index, the base build's extended where it can be."""
    with clock.stage("index"):
        extended = incremental.extend_index(increment, vectors) if increment else None
        return extended or build_index(
            vectors, settings.exact_index_max, settings.compressed_index_above, settings.seed
        )


def _neighbours(
    clock: StageClock,
    settings: Settings,
    increment: incremental.Plan | None,
    index: faiss.Index,
    index_info: IndexInfo,
    vectors: Vectors,
) -> tuple[Lists | None, list[tuple[int, int, float]]]:
    """Stage neighbours: every paper's like-this list (up to MAX_LISTED_PAPERS papers) and the
    likely duplicates (of the new papers only, in an incremental build)."""
    n = len(vectors)
    threshold = settings.duplicate_threshold
    with clock.stage("neighbours"):
        stored = vectors if reranks(index_info) else None  # searched as the engine will
        lists = (
            neighbour_lists(index, vectors, LIST_DEPTH, stored=stored)
            if n <= MAX_LISTED_PAPERS
            else None
        )
        if increment:
            duplicates = incremental.duplicates(increment, index, vectors, threshold)
        elif lists is not None:
            duplicates = duplicates_in_lists(lists, np.arange(n), vectors, threshold)
        else:
            duplicates = find_duplicates(index, vectors, threshold)
    return lists, duplicates


def _start_lexical(settings: Settings, corpus: Corpus) -> Callable[[], LexicalIndex]:
    """The BM25 index, started in a child process for a large corpus (it runs while the topics
    are fitted): call the result for the index."""
    titled, params = corpus.titled, lexical_params(settings)
    if len(titled) >= LEXICAL_ELSEWHERE_FROM:
        return LexicalIndex.build_elsewhere(titled, params)
    return partial(LexicalIndex.build, titled, params)


def _place(clock: StageClock, increment: incremental.Plan, vectors: Vectors) -> Fitted:
    """Stage place (an incremental build): the new papers placed into the base build's topics
    and map."""
    with clock.stage("place"):
        folded = incremental.fold(increment, vectors)
    return Fitted(
        folded.carried, folded.coords, folded.fit, increment.base.name, BuildFolder(increment.base)
    )


def _fit(
    clock: StageClock,
    settings: Settings,
    base: Base,
    corpus: Corpus,
    vectors: Vectors,
    embedder: Embedder,
    progress: bool,
) -> Fitted:
    """Stages topics and map (or sampled: topics, assign, map, labels): a full fit, warm-started
    from the base build when asked, topic ids carried over from it."""
    params = topic_params(settings, len(vectors))
    current, manifest = base.folder, base.manifest
    start = (
        warm_start(current, manifest, corpus.ids, vectors, params.umap_components)
        if settings.warm_start and manifest and manifest.model.revision == embedder.revision
        else None
    )
    label_texts = [clean_for_labels(embedding_text(t, a)) for t, a in corpus.titled]
    fitted, coords, sample = _fit_topics_and_map(
        settings, vectors, label_texts, params, start, clock, progress, embedder.encode
    )
    with clock.stage("topics" if sample is None else "labels"):
        previous = load_previous(current, embedder.revision)
        carried = carry_over(fitted, corpus.ids, vectors, previous)
    fit = FitInfo(
        mode="full",
        fitted_papers=len(vectors),
        warm_start_from=current.name if start and current else None,
        sampled_papers=None if sample is None else len(sample),
    )
    return Fitted(carried, coords, fit, previous.build_id if previous else None, None)


def _write_and_publish(
    settings: Settings, embedder: Embedder, current: Path | None, parts: Parts, clock: StageClock
) -> tuple[Path, BuildManifest]:
    """Stage write, then publish: the folder is written under a staging name, its manifest
    last, and published. On any failure the staging folder goes; a failed write says how far it
    got and which build is still served."""
    builds_dir = settings.builds_dir
    stamp = datetime.now(UTC)
    build_id = f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
    staging = artifacts.staging_dir(builds_dir, build_id)
    try:
        with clock.stage("write"):
            artifacts.write_build(staging, _new_build(parts))
        manifest = _manifest(build_id, stamp, settings, embedder, parts, clock)
        manifest = artifacts.write_manifest(staging, manifest)
        final = artifacts.publish(builds_dir, staging, build_id)
    except BaseException as err:
        written = artifacts.folder_bytes(staging)
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(err, OSError):
            raise _write_failed(err, build_id, written, current) from err
        raise
    artifacts.prune(builds_dir, keep=build_id)
    return final, manifest


def _new_build(parts: Parts) -> NewBuild:
    model, fitted = parts.fitted.carried.model, parts.fitted
    return NewBuild(
        vectors=parts.vectors,
        papers=[p for p, _ in parts.corpus.papers],
        assignments=model.assignments,
        coords=fitted.coords,
        index=parts.index,
        lexical=parts.lexical,
        topics=_topics_file(fitted.carried, fitted.previous_build),
        duplicates=parts.duplicates,
        lists=parts.lists,
        reduced=model.reduced,
        clusterer=model.clusterer,
        clusterer_from=fitted.clusterer_from,
        outliers=model.outliers,
        confidence=model.confidence,
    )


def _manifest(
    build_id: str,
    stamp: datetime,
    settings: Settings,
    embedder: Embedder,
    parts: Parts,
    clock: StageClock,
) -> BuildManifest:
    """The new build's manifest (its checksums are added as it is written)."""
    n, model, fitted = len(parts.vectors), parts.fitted.carried.model, parts.fitted
    noise = float(np.mean(model.assignments == -1)) if n else 0.0
    outliers = model.outliers
    outlier_share = float(np.mean(outliers)) if n and outliers is not None else noise
    return BuildManifest(
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
        corpus_hash=parts.corpus.hash,
        embedded_new=parts.embedded_new,
        index=parts.index_info,
        topics=model.params,
        n_topics=sum(1 for t in model.topics if t.id >= 0),
        noise_share=round(noise, 4),
        outlier_share=round(outlier_share, 4),
        map_neighbors=model.params.umap_neighbors,
        stage_seconds=clock.seconds,
        build_settings=_build_settings(settings),
        duplicates=len(parts.duplicates),
        fit=fitted.fit
        if fitted.fit.mode == "incremental"
        else fitted.fit.model_copy(update={"fitted_build": build_id}),
        topic_ids={"previous_build": fitted.previous_build, **fitted.carried.stats},
        versions=library_versions(),
    )


def _fit_topics_and_map(
    settings: Settings,
    vectors: np.ndarray,
    label_texts: list[str],
    params: TopicParams,
    start: WarmStart | None,
    clock: StageClock,
    progress: bool,
    encode: PhraseEncoder | None = None,
) -> tuple[TopicModel, np.ndarray, np.ndarray | None]:
    """Topics and map of a full fit: of every paper, or above ``topic_sample_above`` papers of
    a sample with the rest assigned (:mod:`service.topics.sampling`). Also returns the sample's
    rows."""
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
            encode=encode,
        )
        return on_sample.model, on_sample.coords, sample
    with clock.stage("topics"):
        graph = neighbour_graph(vectors, params.umap_neighbors)  # the map's too
        fitted = fit_topics(
            vectors,
            label_texts,
            params,
            settings.label_terms,
            init=start.reduced if start else None,
            encode=encode,
            graph=graph,
        )
    with clock.stage("map"):
        coords = layout_map(
            vectors, params.umap_neighbors, settings.seed, start.coords if start else None, graph
        )
    return fitted, coords, None


def _sound(build_dir: Path | None) -> Path | None:
    """The published build, unless its files fail their checksums: a damaged build is neither
    kept as up to date nor the base of lineage, a warm start or an incremental build."""
    if build_dir is None:
        return None
    problems = artifacts.check_build(build_dir).problems
    if problems:
        log.warning("build %s is damaged (%s): building afresh", build_dir.name, problems)
        return None
    return build_dir


def _write_failed(err: OSError, build_id: str, written: int, current: Path | None) -> StorageError:
    """What a failed write of the build folder tells the user: what, where, how much room."""
    failed = storage_error(err, f"writing build {build_id} stopped after {megabytes(written)}")
    extra = ""
    if isinstance(failed, DiskFull) and current is not None:
        size = artifacts.folder_bytes(current)
        extra += f"; the current build takes {megabytes(size)}, about what a new one needs"
    if current is not None:
        extra += f"; build {current.name} is still the one served"
    return type(failed)(failed.message + extra)


def _readable_manifest(build_dir: Path | None) -> BuildManifest | None:
    if build_dir is None:
        return None
    try:
        return BuildFolder(build_dir).manifest()
    except (OSError, ValueError):
        log.warning("build %s has an unreadable manifest; refitting", build_dir.name)
        return None


def _placement_map(settings: Settings) -> MapFn | None:
    """How papers left out of a sampled fit are placed: here (None) or as Ray tasks."""
    if settings.engine == "local":
        return None
    from service.pipeline.ray_engine import map_on_ray

    return partial(map_on_ray, address=settings.ray_address)


def _chunk_encoder(settings: Settings, embedder: Embedder) -> ChunkEncoder | None:
    """How new texts are embedded: here (None, the default) or on Ray (``engine = ray``)."""
    if settings.engine == "local":
        return None
    from service.pipeline.ray_engine import ray_encoder

    return ray_encoder(settings, embedder, settings.ray_address)


def _build_settings(settings: Settings) -> dict[str, int | float | str]:
    """Settings a build's result depends on, as configured (``auto`` where left open)."""
    return {
        "label_terms": settings.label_terms,
        "exact_index_max": settings.exact_index_max,
        "compressed_index_above": settings.compressed_index_above,
        "duplicate_threshold": settings.duplicate_threshold,
        "embed_max_tokens": settings.embed_max_tokens,
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
        "assign_outliers": str(settings.assign_outliers).lower(),
        "outlier_far_similarity": settings.outlier_far_similarity,
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
        assign_outliers=settings.assign_outliers,
        far_similarity=settings.outlier_far_similarity,
    )


def _topics_file(carried: Carried, previous_build: str | None) -> TopicsFile:
    model = carried.model
    return TopicsFile(
        topics=[
            TopicEntry(t.id, t.label, t.keywords, t.members, carried.parents.get(t.id, []), t.name)
            for t in model.topics
        ],
        groups=[GroupEntry(g.id, g.label, g.keywords, g.children, g.name) for g in model.groups],
        hdbscan_to_topic=model.hdbscan_to_topic,
        next_topic_id=carried.next_id,
        previous_build=previous_build,
    )
