"""The ``torch`` backend: sentence-transformers itself (any model, CPU or GPU)."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

import numpy as np

from service.embed.models import ResolvedModel
from service.embed.pooled import Vectors

log = logging.getLogger(__name__)


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder (offline) or a hub name."""

    backend = "sentence-transformers/torch"

    def __init__(
        self,
        model: ResolvedModel,
        device: str | None = None,
        batch_size: int = 32,
        threads: int | None = None,
        max_tokens: int | None = None,
    ):
        """``max_tokens``: read at most this many tokens (below the model's own limit, the
        vectors differ, so the revision names it)."""
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
        limit = int(self._model.max_seq_length or 0)
        if max_tokens is not None and 0 < max_tokens < limit:
            self._model.max_seq_length = max_tokens
            self.revision = f"{model.revision}@{max_tokens}tok"
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
