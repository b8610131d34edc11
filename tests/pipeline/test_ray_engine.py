"""The Ray engine against the local one, on a real local Ray with 2 CPUs started here."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from service.embed.backends import Embedder, Vectors
from service.embed.passages import embed_papers, load_windowing
from service.errors import InvalidInput, PaperscopeError
from service.pipeline.ray_engine import (
    connect,
    map_batches_on_ray,
    ray_encoder,
    require_ray,
    worker_plan,
)
from service.store import Store
from tests.helpers import (
    assert_clean_failure,
    built_corpus,
    make_settings,
    run,
    settings_without_env,
)

BUNDLED = Path(__file__).parents[2] / "service" / "data" / "trending-papers.jsonl"
LABELLED = Path(__file__).parents[1] / "fixtures" / "labelled-arxiv.jsonl"


@pytest.fixture(scope="module")
def ray() -> Iterator[ModuleType]:
    module = connect(num_cpus=2)
    yield module
    module.shutdown()


def _bundled(n: int) -> tuple[list[tuple[str, str]], list[str]]:
    rows = [json.loads(line) for line in BUNDLED.read_text(encoding="utf-8").splitlines()[:n]]
    return [(r["title"], r["abstract"]) for r in rows], [r["id"] for r in rows]


@pytest.mark.slow
def test_ray_gives_the_local_vectors_and_fills_the_cache(
    ray: ModuleType, tmp_path: Path, embedder: Embedder
) -> None:
    settings = make_settings(tmp_path)
    papers, hashes = _bundled(12)
    windowing = load_windowing(settings)  # some bundled abstracts are longer than one window
    with Store(tmp_path / "local.sqlite") as store:
        local, _ = embed_papers(store, embedder, papers, hashes, windowing, progress=False)
    encode = ray_encoder(settings, embedder)
    with Store(tmp_path / "ray.sqlite") as store:
        on_ray, embedded = embed_papers(
            store, embedder, papers, hashes, windowing, progress=False, encode=encode
        )
        assert embedded > len(papers)  # windows of the long abstracts, each cached by hash
        # the same vectors to the backend's precision: Ray's shards batch the windows otherwise,
        # and bf16 kernels of other shapes round differently (test_backends: batch independence)
        assert float(np.sum(on_ray * local, axis=1).min()) >= 0.9999
        again, embedded_again = embed_papers(
            store, embedder, papers, hashes, windowing, progress=False, encode=encode
        )
        assert embedded_again == 0
        np.testing.assert_array_equal(again, on_ray)


class OtherModel:
    """The driver's side of a model the workers do not have (another cache key)."""

    name, revision, dim, backend, cache_key = "other", "0", 384, "none", "other@0"

    def encode(self, texts: Sequence[str], progress: bool = False) -> Vectors:
        raise AssertionError("the driver embeds nothing with the ray engine")


@pytest.mark.slow
def test_a_worker_with_another_model_stops_the_build(ray: ModuleType, tmp_path: Path) -> None:
    encode = ray_encoder(make_settings(tmp_path), OtherModel())
    with pytest.raises(PaperscopeError, match=r"embedding on Ray failed: .*loaded all-MiniLM"):
        list(encode(["some text", "more text"], ["h1", "h2"]))


def test_workers_use_gpus_when_the_cluster_has_them() -> None:
    settings = settings_without_env()
    assert worker_plan(settings, {"CPU": 16.0}) == (16, 1.0, 0.0)
    assert worker_plan(settings, {"CPU": 16.0, "GPU": 2.0}) == (2, 1.0, 1.0)
    onnx = settings_without_env(backend="onnx")
    assert worker_plan(onnx, {"CPU": 16.0, "GPU": 2.0}) == (16, 1.0, 0.0)


def _row_norms(scale: float, rows: np.ndarray) -> np.ndarray:
    return np.asarray(scale * np.linalg.norm(rows, axis=1))


@pytest.mark.slow
def test_map_batches_on_ray_keeps_the_order(ray: ModuleType) -> None:
    rows = np.random.default_rng(0).normal(size=(23, 4))
    fn = partial(_row_norms, 2.0)
    np.testing.assert_allclose(map_batches_on_ray(fn, rows, batch_size=5), fn(rows))
    assert map_batches_on_ray(fn, rows[:0], batch_size=5).shape == (0,)
    with pytest.raises(InvalidInput, match="batch_size"):
        map_batches_on_ray(fn, rows, batch_size=0)


def test_without_ray_the_engine_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(InvalidInput, match=r"pip install 'paperscope\[ray\]'"):
        require_ray()


def test_cli_rejects_an_unknown_engine(tmp_path: Path) -> None:
    result = run("build", "--engine", "spark", data_dir=tmp_path)
    assert_clean_failure(result, "engine: Input should be 'local' or 'ray'")


@pytest.mark.slow
def test_papers_left_out_of_a_sampled_fit_are_placed_alike_on_ray(
    ray: ModuleType, built_dir: Path
) -> None:
    from service.pipeline.pipeline import topic_params
    from service.pipeline.ray_engine import map_on_ray
    from service.topics.sampling import draw_sample, fit_on_sample

    vectors, texts = built_corpus(built_dir)
    params = topic_params(make_settings(built_dir), len(vectors))
    sample = draw_sample(len(vectors), 80, seed=3)
    local = fit_on_sample(vectors, texts, params, 4, sample, progress=False)
    on_ray = fit_on_sample(vectors, texts, params, 4, sample, map_fn=map_on_ray, progress=False)
    assert np.array_equal(on_ray.model.assignments, local.model.assignments)
    assert np.allclose(on_ray.coords, local.coords)


@pytest.mark.slow
def test_ray_and_local_embedding_give_the_same_topics(
    ray: ModuleType, tmp_path: Path, embedder: Embedder
) -> None:
    from sklearn.metrics import adjusted_rand_score

    from service.pipeline.pipeline import topic_params
    from service.topics.cluster import fit_topics

    settings = make_settings(tmp_path)
    papers, _ = _bundled(115)
    extra = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines()]
    papers += [(r["title"], r["abstract"]) for r in extra]  # 175 papers
    hashes = [f"paper-{i}" for i in range(len(papers))]
    windowing = load_windowing(settings)
    with Store(tmp_path / "local.sqlite") as store:
        local, _ = embed_papers(store, embedder, papers, hashes, windowing, progress=False)
    with Store(tmp_path / "ray.sqlite") as store:
        on_ray, _ = embed_papers(
            store,
            embedder,
            papers,
            hashes,
            windowing,
            progress=False,
            encode=ray_encoder(settings, embedder),
        )
    # Ray's actors batch each chunk as the local engine does: the same kernels, the same vectors
    assert float(np.sum(on_ray * local, axis=1).min()) >= 0.99999
    texts = [f"{title}. {abstract}" for title, abstract in papers]
    params = topic_params(settings, len(papers))
    topics = [fit_topics(v, texts, params, 4).assignments for v in (local, on_ray)]
    assert adjusted_rand_score(*topics) >= 0.95
