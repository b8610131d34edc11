"""Embedding: texts -> L2-normalised float32 vectors, with a cache keyed by content hash.

The :class:`Embedder` protocol is what the rest of the service needs; the sentence-transformers
backend is the default. Vectors for papers are looked up in the store's cache first, and only new
or changed papers are sent to the model, chunk by chunk, so an interrupted build keeps its work.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from tqdm import tqdm

from service.config import Settings
from service.models import ResolvedModel, resolve_model
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


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (offline) or a hub name."""

    backend = "sentence-transformers/torch"

    def __init__(self, model: ResolvedModel, device: str | None = None, batch_size: int = 32):
        if model.local:
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(max(1, os.cpu_count() or 1))
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


def load_embedder(settings: Settings) -> Embedder:
    resolved = resolve_model(settings.model, settings.models_dir)
    return SentenceTransformerEmbedder(resolved, settings.device, settings.embed_batch_size)


def embed_with_cache(
    store: Store,
    embedder: Embedder,
    texts: Sequence[str],
    hashes: Sequence[str],
    progress: bool = True,
) -> tuple[Vectors, int]:
    """Vectors for ``texts`` in order, embedding only those whose hash is not cached.

    Returns the matrix and how many texts were embedded now.
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
        for start in range(0, len(missing_hashes), CHUNK):
            chunk = missing_hashes[start : start + CHUNK]
            vectors = embedder.encode([texts[first_of[h]] for h in chunk])
            store.save_embeddings(key, chunk, vectors)
            cached.update(zip(chunk, vectors, strict=True))
            bar.update(len(chunk))
    matrix = np.empty((len(hashes), embedder.dim), dtype=np.float32)
    for row, text_hash in enumerate(hashes):
        matrix[row] = cached[text_hash]
    return matrix, len(missing_hashes)
