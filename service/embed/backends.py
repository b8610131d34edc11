"""Embedding: texts -> L2-normalised float32 vectors, with a cache keyed by content hash.

The :class:`Embedder` protocol is what the rest of the service needs. The backends:

- ``torch``: sentence-transformers itself (any model, CPU or GPU).
- ``onnx`` / ``onnx-int8``: ONNX Runtime over the transformer exported at install time
  (``paperscope models prepare``); fp32 gives torch's vectors at about torch's speed on CPU,
  dynamic int8 about 1.8x (cosine ~0.995).
- ``openvino`` / ``openvino-int8``: OpenVINO over the same export, computing in bf16 where the
  CPU has it natively (torch's vectors, cosine >= 0.9999) or with a static int8 model calibrated
  on real abstracts at prepare time (cosine ~0.997); which is faster depends on the CPU (bf16
  with AMX, int8 without), so ``auto`` follows what ``models prepare`` measured here.

Each runtime has its module (``torch_backend``, ``onnx_backend``, ``openvino_backend``); this one
chooses and loads them. The exported backends share :class:`PooledTransformer` (``pooled``): the
model's own tokenizer, batches by token length (OpenVINO: long runs in a few fixed shapes,
:class:`OpenVinoEmbedder`), mean pooling and normalisation as sentence-transformers does them.
Vectors at least :data:`IDENTICAL_COSINE` from torch's (measured at prepare time) share torch's
cache key and build identity; the others get their own. ``auto`` (the default) is chosen by
:func:`choose_backend`. Vectors for papers are looked up in the store's cache first, and only
new or changed papers are sent to the model, chunk by chunk, so an interrupted build keeps its
work.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from tqdm import tqdm

from service.config import Settings
from service.embed.models import ResolvedModel, measured_choice, onnx_agreement, resolve_model
from service.embed.onnx_backend import OnnxEmbedder
from service.embed.openvino_backend import OpenVinoEmbedder, cpu_has_bf16, openvino_precision
from service.embed.pooled import ModelInput, PooledTransformer
from service.embed.pooled import Vectors as Vectors  # re-exported: the type every stage uses
from service.embed.speed import machine_key
from service.embed.torch_backend import SentenceTransformerEmbedder
from service.errors import InvalidInput
from service.store import Store

log = logging.getLogger(__name__)


CHUNK = 1024
"""Papers embedded (and saved to the cache) per step."""


class Embedder(Protocol):
    name: str
    revision: str
    dim: int
    backend: str

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors: ...

    @property
    def cache_key(self) -> str: ...


ChunkEncoder = Callable[[Sequence[str], Sequence[str]], Iterator[tuple[list[str], Vectors]]]
"""Embeds ``(texts, hashes)`` and yields ``(hashes, vectors)`` chunk by chunk, in any order.

How the texts that miss the cache get embedded: :func:`encode_in_chunks` here, or on a Ray
cluster (:mod:`service.pipeline.ray_engine`). Each chunk is saved as it arrives."""

IDENTICAL_COSINE = 0.9999
"""Vectors of a backend at least this close to torch's (measured when the model was prepared)
share torch's cache and build identity; others get their own."""
FIXED_SHAPES_FROM = 20_000
"""Texts in one run from which fixed shapes pay: compiling the shapes of a run of arXiv windows
took 6.8 s (16 shapes, ``paperscope bench embed-path``), about what 10% of 10,000 windows'
embedding saves (see :class:`OpenVinoEmbedder`)."""


def _gpu_present() -> bool:
    return Path("/proc/driver/nvidia").exists()


OPENVINO_INT8 = "model-int8-static.xml"
"""The statically quantised int8 model, prepared by ``paperscope models prepare``."""


def choose_backend(requested: str, resolved: ResolvedModel) -> str:
    """``auto``: torch with a GPU or for a model without a prepared export; else the backend
    ``paperscope models prepare`` measured fastest on this machine (within the quality guard,
    :mod:`service.embed.speed`); on a machine not measured yet, the old rule: OpenVINO bf16
    where the CPU computes bf16 natively, else its static int8 model, else ONNX Runtime fp32."""
    if requested != "auto":
        return requested
    if resolved.onnx_dir is None or _gpu_present():
        return "torch"
    measured = measured_choice(resolved.onnx_dir, machine_key())
    if measured is not None:
        return str(measured["auto"])
    if cpu_has_bf16():
        return "openvino"
    if (resolved.onnx_dir / OPENVINO_INT8).is_file():
        return "openvino-int8"
    return "onnx"


def explain_choice(settings: Settings) -> tuple[str, str]:
    """The backend ``settings`` give and why (for ``paperscope info``)."""
    resolved = resolve_model(settings.model, settings.models_dir)
    backend = choose_backend(settings.backend, resolved)
    if settings.backend != "auto":
        return backend, "set by PAPERSCOPE_BACKEND"
    if resolved.onnx_dir is None or _gpu_present():
        return backend, "a GPU, or a model without a prepared export"
    measured = measured_choice(resolved.onnx_dir, machine_key())
    if measured is None:
        return backend, (
            "not measured on this machine (run: paperscope models prepare); chosen by CPU flags"
        )
    return backend, f"{measured['why']} (measured {measured['measured_at']})"


def load_embedder(
    settings: Settings, threads: int | None = None, serving: bool = False
) -> Embedder:
    """The configured model; ``threads`` caps its CPU threads (default: every core).

    ``serving``: for a server's queries, where concurrent requests are the parallelism: ONNX
    Runtime then runs each inference on one thread (a short query on two threads took 4.5 ms
    and 8.8 ms of CPU here, on one 5.1 ms and 5.1 ms: under load, a third fewer queries a
    second). OpenVINO then compiles one copy of the model per core, each running a query on
    one thread in the thread that asks (:data:`service.embed.openvino_backend.SERVING_CONFIG`)."""
    resolved = resolve_model(settings.model, settings.models_dir)
    backend = choose_backend(settings.backend, resolved)
    if backend == "torch":
        return SentenceTransformerEmbedder(
            resolved, settings.device, settings.embed_batch_size, threads, settings.embed_max_tokens
        )
    prepared = resolved.onnx_dir
    files = {
        "onnx": "model.onnx",
        "onnx-int8": "model-int8.onnx",
        "openvino": "model.onnx",
        "openvino-int8": OPENVINO_INT8,
    }
    if prepared is None or not (prepared / files[backend]).is_file():
        raise InvalidInput(
            f"backend {backend!r} needs the prepared export of {resolved.name} "
            f"({files[backend]}); run: paperscope models prepare (or set PAPERSCOPE_BACKEND=torch)"
        )
    agreement = onnx_agreement(prepared, backend) or {}
    identical = agreement.get("min_cosine", 0.0) >= IDENTICAL_COSINE
    revision = resolved.revision if identical else f"{resolved.revision}+{backend}"
    log.info("embedding backend %s (agreement with torch: %s)", backend, agreement or "unknown")
    weights, max_tokens = (
        Path(resolved.location),
        min(_max_tokens(Path(resolved.location)), settings.embed_max_tokens),
    )
    if max_tokens < _max_tokens(weights):
        revision = f"{revision}@{max_tokens}tok"
    embedder: OnnxEmbedder | OpenVinoEmbedder
    if backend.startswith("onnx"):
        embedder = OnnxEmbedder.from_files(
            weights,
            prepared / files[backend],
            max_tokens,
            name=resolved.name,
            revision=revision,
            backend=f"onnxruntime/{'fp32' if backend == 'onnx' else 'int8'}",
            batch_size=settings.embed_batch_size,
            threads=1 if serving else threads,
        )
    else:
        int8 = backend == "openvino-int8"
        # int8's unquantised operations in f32: left to OpenVINO they run in bf16 where the CPU
        # has it, and a repetitive text then got vectors 0.88 apart from one batch shape to
        # another (AMX Xeon); in f32 they agree to 0.9996, at the same speed within noise
        precision = "f32" if int8 else openvino_precision()
        embedder = OpenVinoEmbedder.from_files(
            weights,
            prepared / files[backend],
            max_tokens,
            precision=precision,
            name=resolved.name,
            revision=revision,
            backend=f"openvino/{'int8-static' if int8 else precision}",
            batch_size=settings.embed_batch_size,
            threads=threads,
            serving=serving,
        )
    embedder.agreement = agreement or None
    return embedder


def _max_tokens(weights: Path) -> int:
    """The model's own window (sentence-transformers' max_seq_length), 256 for MiniLM."""
    import json

    config = weights / "sentence_bert_config.json"
    if config.is_file():
        return int(json.loads(config.read_text(encoding="utf-8")).get("max_seq_length", 256))
    return 256


def encode_in_chunks(
    embedder: Embedder,
    texts: Sequence[str],
    hashes: Sequence[str],
    inputs: Sequence[ModelInput] | None = None,
) -> Iterator[tuple[list[str], Vectors]]:
    """The local engine: ``CHUNK`` texts at a time with the embedder in this process, streamed
    where the embedder can (:meth:`PooledTransformer.encode_stream`). ``inputs``: what the model
    reads for each text, where the caller has its token ids already."""
    starts = range(0, len(texts), CHUNK)
    if not isinstance(embedder, PooledTransformer):
        for start in starts:
            yield list(hashes[start : start + CHUNK]), embedder.encode(texts[start : start + CHUNK])
        return
    read = list(texts if inputs is None else inputs)
    hashes = list(hashes)
    fixed = embedder.fixed_shapes and len(read) >= FIXED_SHAPES_FROM
    if fixed:  # longest first (ids by their tokens, texts by their characters): few shapes each
        order = sorted(range(len(read)), key=lambda i: len(read[i]), reverse=True)
        read, hashes = [read[i] for i in order], [hashes[i] for i in order]
    stream = embedder.encode_stream((read[start : start + CHUNK] for start in starts), fixed)
    for start, vectors in zip(starts, stream, strict=True):
        yield hashes[start : start + CHUNK], vectors


def embed_with_cache(
    store: Store,
    embedder: Embedder,
    texts: Sequence[str],
    hashes: Sequence[str],
    progress: bool = True,
    encode: ChunkEncoder | None = None,
    inputs: Sequence[ModelInput] | None = None,
) -> tuple[Vectors, int]:
    """Vectors for ``texts`` in order, embedding only those whose hash is not cached.

    ``encode`` embeds the missing texts (default: :func:`encode_in_chunks` with ``embedder``,
    reading ``inputs`` where given: the texts' token ids); it must give the vectors
    ``embedder`` would. Returns the matrix and how many texts were embedded now.
    """
    key = embedder.cache_key
    cached = store.cached_embeddings(key, hashes)
    missing = [i for i, h in enumerate(hashes) if h not in cached]
    missing_hashes = list(dict.fromkeys(hashes[i] for i in missing))
    first_of = {h: i for i in reversed(missing) for h in [hashes[i]]}
    log.info("embedding: %d cached, %d to embed", len(hashes) - len(missing), len(missing_hashes))
    with tqdm(
        total=len(missing_hashes), desc="embedding", unit="paper", disable=not progress
    ) as bar:
        missing_texts = [texts[first_of[h]] for h in missing_hashes]
        if encode is None:
            read = None if inputs is None else [inputs[first_of[h]] for h in missing_hashes]
            chunks = encode_in_chunks(embedder, missing_texts, missing_hashes, read)
        else:
            chunks = encode(missing_texts, missing_hashes)
        for chunk, vectors in chunks:
            store.save_embeddings(key, chunk, vectors)
            cached.update(zip(chunk, vectors, strict=True))
            bar.update(len(chunk))
    matrix = np.empty((len(hashes), embedder.dim), dtype=np.float32)
    for row, text_hash in enumerate(hashes):
        matrix[row] = cached[text_hash]
    return matrix, len(missing_hashes)
