"""Embedding: texts -> L2-normalised float32 vectors, with a cache keyed by content hash.

The :class:`Embedder` protocol is what the rest of the service needs. Two backends:

- ``torch``: sentence-transformers itself (any model, CPU or GPU).
- ``onnx`` / ``onnx-int8``: ONNX Runtime over the transformer exported at install time
  (``paperscope models prepare``), with the same tokenizer, mean pooling and normalisation as
  sentence-transformers, and batches sorted by length so little time goes into padding. fp32 ONNX
  gives the torch vectors (cosine >= 0.9999, checked at export) about 1.7x faster on CPU; int8 is
  faster still but moves vectors (cosine ~0.99), so it gets its own cache key and build identity.

``auto`` (the default) picks ``onnx`` when the ONNX files are prepared and no GPU is present,
else ``torch``. Vectors for papers are looked up in the store's cache first, and only new
or changed papers are sent to the model, chunk by chunk, so an interrupted build keeps its work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from service.config import Settings
from service.embed.models import ResolvedModel, onnx_agreement, resolve_model
from service.errors import InvalidInput
from service.store import Store

log = logging.getLogger(__name__)

Vectors = npt.NDArray[np.float32]

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
cluster (:mod:`service.build.ray_engine`). Each chunk is saved as it arrives."""


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (offline) or a hub name."""

    backend = "sentence-transformers/torch"

    def __init__(
        self,
        model: ResolvedModel,
        device: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
    ):
        if model.local:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(threads or max(1, os.cpu_count() or 1))
        log.info("loading embedding model %s from %s", model.name, model.location)
        self._model = SentenceTransformer(model.location, device=device)
        self.name = model.name
        self.revision = model.revision
        dim = self._model.get_embedding_dimension()
        if dim is None:
            raise ValueError(f"model {model.name} does not report its embedding dimension")
        self.dim = int(dim)
        self.batch_size = batch_size

    @property
    def cache_key(self) -> str:
        return f"{self.name}@{self.revision}"

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        vectors = self._model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


IDENTICAL_COSINE = 0.9999
"""fp32 ONNX vectors at least this close to torch's share torch's cache and build identity."""


class OnnxEmbedder:
    """ONNX Runtime transformer + tokenizers + mean pooling + L2 normalisation."""

    def __init__(
        self,
        session: Any,
        tokenizer: Any,
        *,
        name: str,
        revision: str,
        backend: str,
        batch_size: int = 32,
    ) -> None:
        self._session = session
        self._tokenizer = tokenizer
        self._inputs = {i.name for i in session.get_inputs()}
        self.name, self.revision, self.backend = name, revision, backend
        self.dim = int(session.get_outputs()[0].shape[-1])
        self.batch_size = batch_size
        self.agreement: dict[str, float] | None = None
        """Cosine to the torch vectors, as measured when the export was prepared."""

    @classmethod
    def from_files(
        cls,
        weights: Path,
        onnx_file: Path,
        max_tokens: int,
        *,
        name: str = "",
        revision: str = "",
        backend: str = "onnx",
        batch_size: int = 32,
        threads: int | None = None,
    ) -> OnnxEmbedder:
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(weights / "tokenizer.json"))
        tokenizer.enable_truncation(max_length=max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token, no secret
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads or max(1, os.cpu_count() or 1)
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        session = onnxruntime.InferenceSession(
            str(onnx_file), options, providers=["CPUExecutionProvider"]
        )
        return cls(
            session,
            tokenizer,
            name=name or weights.name,
            revision=revision,
            backend=backend,
            batch_size=batch_size,
        )

    @property
    def cache_key(self) -> str:
        return f"{self.name}@{self.revision}"

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
        batches = [order[s : s + self.batch_size] for s in range(0, len(order), self.batch_size)]
        for batch in tqdm(batches, desc="batches", disable=not progress):
            encoded = self._tokenizer.encode_batch([texts[i] for i in batch])
            ids = np.array([e.ids for e in encoded], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
            hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden[0] * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
            out[batch] = pooled / norms
        return out


def _gpu_present() -> bool:
    return Path("/proc/driver/nvidia").exists()


def choose_backend(requested: str, resolved: ResolvedModel) -> str:
    if requested != "auto":
        return requested
    if resolved.onnx_dir is not None and not _gpu_present():
        return "onnx"
    return "torch"


def load_embedder(settings: Settings, threads: int | None = None) -> Embedder:
    """The configured model; ``threads`` caps its CPU threads (default: every core)."""
    resolved = resolve_model(settings.model, settings.models_dir)
    backend = choose_backend(settings.backend, resolved)
    if backend == "torch":
        return SentenceTransformerEmbedder(
            resolved, settings.device, settings.embed_batch_size, threads
        )
    if resolved.onnx_dir is None:
        raise InvalidInput(
            f"backend {backend!r} needs the ONNX export of {resolved.name}; "
            "run: paperscope models prepare (or set PAPERSCOPE_BACKEND=torch)"
        )
    variant_file = "model.onnx" if backend == "onnx" else "model-int8.onnx"
    agreement = onnx_agreement(resolved.onnx_dir, backend) or {}
    identical = backend == "onnx" and agreement.get("min_cosine", 0.0) >= IDENTICAL_COSINE
    revision = resolved.revision if identical else f"{resolved.revision}+{backend}"
    log.info("embedding backend %s (agreement with torch: %s)", backend, agreement or "unknown")
    embedder = OnnxEmbedder.from_files(
        Path(resolved.location),
        resolved.onnx_dir / variant_file,
        _max_tokens(Path(resolved.location)),
        name=resolved.name,
        revision=revision,
        backend=f"onnxruntime/{'fp32' if backend == 'onnx' else 'int8'}",
        batch_size=settings.embed_batch_size,
        threads=threads,
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
    embedder: Embedder, texts: Sequence[str], hashes: Sequence[str]
) -> Iterator[tuple[list[str], Vectors]]:
    """The local engine: ``CHUNK`` texts at a time with the embedder in this process."""
    for start in range(0, len(texts), CHUNK):
        chunk = list(hashes[start : start + CHUNK])
        yield chunk, embedder.encode(texts[start : start + CHUNK])


def embed_with_cache(
    store: Store,
    embedder: Embedder,
    texts: Sequence[str],
    hashes: Sequence[str],
    progress: bool = True,
    encode: ChunkEncoder | None = None,
) -> tuple[Vectors, int]:
    """Vectors for ``texts`` in order, embedding only those whose hash is not cached.

    ``encode`` embeds the missing texts (default: :func:`encode_in_chunks` with ``embedder``);
    it must give the vectors ``embedder`` would. Returns the matrix and how many texts were
    embedded now.
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
            chunks = encode_in_chunks(embedder, missing_texts, missing_hashes)
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
