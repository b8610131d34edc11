"""A build: run every stage over the stored papers and publish the result atomically.

The stages, in order: embed (service.embed), index, like-this lists and duplicates
(service.search), topics and map (service.topics), the BM25 index, then write and publish
(service.artifacts owns the build folder). When few papers changed since the published build,
its topics and map are kept and only the new papers are placed (service.build.incremental).
"""

from __future__ import annotations

import logging
import secrets
import shutil
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

from service import artifacts
from service.artifacts import BuildFolder, GroupEntry, NewBuild, TopicEntry, TopicsFile
from service.build import incremental
from service.config import Settings
from service.embed.backends import ChunkEncoder, Embedder
from service.embed.passages import embed_papers, load_windowing
from service.errors import DiskFull, InvalidInput, StorageError, megabytes, storage_error
from service.ingest import BUNDLED_CORPUS, ingest_file
from service.schemas import BuildManifest, FitInfo, ModelInfo, TopicParams, embedding_text
from service.search.duplicates import duplicates_in_lists, find_duplicates
from service.search.index import build_index, reranks
from service.search.lexical import LexicalIndex, LexicalParams
from service.search.neighbours import LIST_DEPTH, MAX_LISTED_PAPERS, neighbour_lists
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
        if store.count() == 0:
            log.info("the store is empty: ingesting the bundled corpus %s", BUNDLED_CORPUS.name)
            ingest_file(store, BUNDLED_CORPUS, progress=progress)
        papers = store.snapshot()
        n = len(papers)
        corpus_hash = hash_corpus((p.id, h) for p, h in papers)

        embedder = embedder_factory()
        if settings.umap_components >= embedder.dim:
            raise InvalidInput(
                f"umap_components ({settings.umap_components}) must be below the model's "
                f"dimension ({embedder.dim})"
            )
        current = _sound(artifacts.current_build_dir(builds_dir))
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
        titled = [(p.title, p.abstract) for p, _ in papers]
        with clock.stage("embed"):
            texts = [embedding_text(title, abstract) for title, abstract in titled]
            vectors, embedded_new = embed_papers(
                store,
                embedder,
                titled,
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
        lexical_index = (
            LexicalIndex.build_elsewhere(titled, lexical_params(settings))
            if n >= LEXICAL_ELSEWHERE_FROM
            else partial(LexicalIndex.build, titled, lexical_params(settings))
        )
        if increment is not None:
            with clock.stage("place"):
                folded = incremental.fold(increment, vectors)
            carried, coords, fit = folded.carried, folded.coords, folded.fit
            previous_build: str | None = increment.base.name
            clusterer_source: BuildFolder | None = BuildFolder(increment.base)
        else:
            params = topic_params(settings, n)
            start = (
                warm_start(current, base, ids, vectors, params.umap_components)
                if settings.warm_start and base and base.model.revision == embedder.revision
                else None
            )
            label_texts = [clean_for_labels(t) for t in texts]
            fitted, coords, sample = _fit_topics_and_map(
                settings, vectors, label_texts, params, start, clock, progress, embedder.encode
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
        with clock.stage("lexical"):  # what is left of it after the topic stages
            lexical = lexical_index()

        stamp = datetime.now(UTC)
        build_id = f"{stamp:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}"
        staging = artifacts.staging_dir(builds_dir, build_id)
        try:
            with clock.stage("write"):
                artifacts.write_build(
                    staging,
                    NewBuild(
                        vectors=vectors,
                        papers=[p for p, _ in papers],
                        assignments=topic_model.assignments,
                        coords=coords,
                        index=index,
                        lexical=lexical,
                        topics=_topics_file(carried, previous_build),
                        duplicates=duplicates,
                        lists=lists,
                        reduced=topic_model.reduced,
                        clusterer=topic_model.clusterer,
                        clusterer_from=clusterer_source,
                        outliers=topic_model.outliers,
                        confidence=topic_model.confidence,
                    ),
                )
            noise = float(np.mean(topic_model.assignments == -1)) if n else 0.0
            outliers = topic_model.outliers
            outlier_share = float(np.mean(outliers)) if n and outliers is not None else noise
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
                outlier_share=round(outlier_share, 4),
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
            manifest = artifacts.write_manifest(staging, manifest)
            final = artifacts.publish(builds_dir, staging, build_id)
        except BaseException as err:
            written = artifacts.folder_bytes(staging)
            shutil.rmtree(staging, ignore_errors=True)
            if isinstance(err, OSError):
                raise _write_failed(err, build_id, written, current) from err
            raise
        artifacts.prune(builds_dir, keep=build_id)
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
    from service.build.ray_engine import map_on_ray

    return partial(map_on_ray, address=settings.ray_address)


def _chunk_encoder(settings: Settings, embedder: Embedder) -> ChunkEncoder | None:
    """How new texts are embedded: here (None, the default) or on Ray (``engine = ray``)."""
    if settings.engine == "local":
        return None
    from service.build.ray_engine import ray_encoder

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
