"""The vectors of recently asked texts, kept: a query's text is embedded once.

Embedding a short query is the largest cost of a text search (7-10 ms of one core on an AVX2
CPU, against about 1 ms for the rest), and the same text comes back often: the page asks for
papers and topics of one query at once, every further page of results (``offset``) sends it
again, and people repeat searches. Vectors are kept per text (by its hash: a query may be
10,000 characters), least recently used first out. Only for queries: papers' vectors have the
database's cache (:func:`service.embed.backends.embed_with_cache`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from service.embed.backends import Embedder, Vectors

KEPT_TEXTS = 4096
"""Texts whose vectors are kept (1.5 KB each at 384 dimensions)."""


class RecentTexts:
    """``encode`` for queries, through a least-recently-used store of their vectors."""

    def __init__(self, embedder: Embedder, kept: int = KEPT_TEXTS) -> None:
        self.embedder = embedder
        self.kept = kept
        self._vectors: OrderedDict[bytes, Vectors] = OrderedDict()
        self._lock = threading.Lock()

    def encode(self, texts: Sequence[str]) -> Vectors:
        """Vectors of ``texts`` in order (a new array), embedding only those not kept."""
        keys = [
            hashlib.blake2b(t.encode("utf-8", "surrogatepass"), digest_size=16).digest()
            for t in texts
        ]
        found: dict[bytes, Vectors] = {}
        with self._lock:
            for key in keys:
                vector = self._vectors.get(key)
                if vector is not None:
                    self._vectors.move_to_end(key)
                    found[key] = vector
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        if missing:
            made = self.embedder.encode(list(missing.values()))
            made.setflags(write=False)
            fresh = dict(zip(missing, made, strict=True))
            found.update(fresh)
            with self._lock:
                self._vectors.update(fresh)
                while len(self._vectors) > self.kept:
                    self._vectors.popitem(last=False)
        dim = self.embedder.dim
        return np.array([found[key] for key in keys], dtype=np.float32).reshape(len(keys), dim)
