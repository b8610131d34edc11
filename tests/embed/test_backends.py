from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from service.embed.backends import Embedder, Vectors, embed_with_cache
from service.store import Store
from tests.helpers import settings_without_env


class CountingEmbedder:
    """Delegates to the real model and counts the texts it is asked to embed."""

    def __init__(self, inner: Embedder) -> None:
        self.inner = inner
        self.name, self.revision, self.dim = inner.name, inner.revision, inner.dim
        self.backend = inner.backend
        self.seen: list[str] = []

    @property
    def cache_key(self) -> str:
        return self.inner.cache_key

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        self.seen.extend(texts)
        return self.inner.encode(texts, progress)


def test_real_model_gives_normalised_384_dim_vectors(embedder: Embedder) -> None:
    vectors = embedder.encode(["diffusion models for image generation", "protein folding"])
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)


def test_similar_texts_score_higher(embedder: Embedder) -> None:
    a, b, c = embedder.encode(
        ["knowledge distillation from a teacher network", "distilling a student model", "galaxies"]
    )
    assert float(a @ b) > float(a @ c) + 0.2


def test_unchanged_texts_are_never_embedded_twice(tmp_path: Path, embedder: Embedder) -> None:
    counting = CountingEmbedder(embedder)
    texts = ["first abstract", "second abstract", "first abstract"]
    hashes = ["h1", "h2", "h1"]
    with Store(tmp_path / "p.sqlite") as store:
        first, embedded = embed_with_cache(store, counting, texts, hashes, progress=False)
        assert embedded == 2
        assert counting.seen == ["first abstract", "second abstract"]
        again, embedded_again = embed_with_cache(
            store, counting, [*texts, "third"], [*hashes, "h3"], progress=False
        )
        assert embedded_again == 1
        assert counting.seen[-1] == "third"
        np.testing.assert_array_equal(first, again[:3])
        np.testing.assert_array_equal(first[0], first[2])


def test_onnx_backend_reproduces_torch_vectors() -> None:
    """fp32 ONNX (prepared by scripts/install) gives the torch vectors and shares their cache."""
    from service.embed.backends import load_embedder

    onnx = load_embedder(settings_without_env(backend="onnx"))
    torch = load_embedder(settings_without_env(backend="torch"))
    texts = ["one-step diffusion distillation " * 60, "RLHF", "graph neural networks for molecules"]
    cosines = np.sum(onnx.encode(texts) * torch.encode(texts), axis=1)
    assert cosines.min() >= 0.9999
    assert onnx.cache_key == torch.cache_key
    assert onnx.backend == "onnxruntime/fp32"


def test_int8_backend_has_its_own_identity() -> None:
    from service.embed.backends import load_embedder

    int8 = load_embedder(settings_without_env(backend="onnx-int8"))
    fp32 = load_embedder(settings_without_env(backend="onnx"))
    assert int8.cache_key != fp32.cache_key
    vectors = int8.encode(["a paper about protein folding", "protein structure prediction"])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert float(vectors[0] @ vectors[1]) > 0.5
