from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.embed.backends import Embedder, embed_with_cache
from service.embed.pooled import FIXED_WIDTH_STEP, PooledTransformer
from service.store import Store
from tests.helpers import CountingEmbedder, settings_without_env


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


def test_openvino_backends_agree_with_torch_as_prepared() -> None:
    """OpenVINO over the same export: fp32/bf16 within the 'identical' cosine (sharing torch's
    identity), static int8 close but with its own cache key."""
    from service.embed.backends import IDENTICAL_COSINE, load_embedder

    texts = ["one-step diffusion distillation " * 60, "RLHF", "graph neural networks for molecules"]
    torch = load_embedder(settings_without_env(backend="torch"))
    reference = torch.encode(texts)
    openvino = load_embedder(settings_without_env(backend="openvino"))
    assert float(np.sum(openvino.encode(texts) * reference, axis=1).min()) >= IDENTICAL_COSINE
    assert openvino.cache_key == torch.cache_key
    int8 = load_embedder(settings_without_env(backend="openvino-int8"))
    cosines = np.sum(int8.encode(texts) * reference, axis=1)
    assert 0.97 < float(cosines.min()) < 1.0
    assert int8.cache_key not in {torch.cache_key, openvino.cache_key}
    assert int8.backend == "openvino/int8-static"


def _models_dir_with_choice(tmp_path: Path, choice: str | None) -> Path:
    """A models folder linking the prepared model's files, whose ``prepared.json`` records
    ``choice`` as this machine's measured ``auto`` (None: no measurement here)."""
    from service.embed.models import read_prepared, write_prepared
    from service.embed.speed import machine_key

    source = settings_without_env().models_dir
    (tmp_path / "manifest.json").write_bytes((source / "manifest.json").read_bytes())
    prepared = source / "all-MiniLM-L6-v2"
    folder = tmp_path / "all-MiniLM-L6-v2"
    folder.mkdir()
    for item in prepared.iterdir():
        if item.name != "prepared.json":
            (folder / item.name).symlink_to(item.resolve())
    report = read_prepared(prepared)
    report["speed"] = {}
    if choice is not None:
        report["speed"][machine_key()] = {"auto": choice, "why": "a test", "measured_at": "now"}
    write_prepared(folder, report)
    return tmp_path


@pytest.mark.parametrize(
    ("choice", "runtime"), [("openvino-int8", "openvino/int8-static"), ("onnx", "onnxruntime/fp32")]
)
def test_auto_follows_the_choice_measured_on_this_machine(
    tmp_path: Path, choice: str, runtime: str
) -> None:
    from service.embed.backends import explain_choice, load_embedder

    settings = settings_without_env(models_dir=_models_dir_with_choice(tmp_path, choice))
    assert load_embedder(settings).backend == runtime
    assert explain_choice(settings) == (choice, "a test (measured now)")


def test_auto_falls_back_to_cpu_flags_where_nothing_was_measured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A machine not measured (here: the same models folder with AMX, VNNI and BF16 hidden,
    which changes the machine's key) uses the flags: bf16 only where it is visible."""
    from service.embed.backends import explain_choice, load_embedder
    from service.embed.openvino_backend import cpu_has_bf16

    settings = settings_without_env(models_dir=_models_dir_with_choice(tmp_path, "onnx"))
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert not cpu_has_bf16()
    assert load_embedder(settings).backend == "openvino/int8-static"
    assert "not measured on this machine" in explain_choice(settings)[1]


def test_fewer_tokens_read_change_the_identity_not_the_shape() -> None:
    from service.embed.backends import load_embedder

    full = load_embedder(settings_without_env(backend="openvino-int8"))
    short = load_embedder(settings_without_env(backend="openvino-int8", embed_max_tokens=64))
    long_text = "a survey of diffusion models " * 80
    assert short.cache_key != full.cache_key
    a, b = short.encode([long_text]), full.encode([long_text])
    assert a.shape == b.shape == (1, 384)
    assert float(a[0] @ b[0]) < 0.9999  # the second half of the text is not read


@given(st.lists(st.integers(min_value=1, max_value=256), min_size=0, max_size=300))
def test_batches_cover_every_text_once_within_the_token_budget(lengths: list[int]) -> None:
    from service.embed.pooled import TOKEN_BUDGET, PooledTransformer

    batching = PooledTransformer(None, name="m", revision="r", backend="b", dim=4, batch_size=8)
    batches = batching.batches(lengths)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    for batch in batches:
        widest = max(lengths[i] for i in batch)
        assert lengths[batch[0]] == widest  # the batch pads to its first (longest) text
        assert len(batch) * widest <= max(TOKEN_BUDGET, widest)
        assert len(batch) <= 8 * 4
    firsts = [lengths[b[0]] for b in batches]
    assert firsts == sorted(firsts, reverse=True)


@given(
    st.lists(st.integers(min_value=1, max_value=256), min_size=0, max_size=600),
    st.sampled_from([4, 8, 32]),
)
def test_fixed_shape_batches_are_full_batches_of_one_width(lengths: list[int], size: int) -> None:
    """Fixed-shape batches: every text once, each batch padded to one multiple-of-16 width
    that fits its texts, a power of two of texts within the budget, and only the last batch of
    a width short of that (so a long sorted run asks for each shape once)."""
    from service.embed.pooled import TOKEN_BUDGET, fixed_rows, fixed_width

    batching = PooledTransformer(None, name="m", revision="r", backend="b", dim=4, batch_size=size)
    batching._special_tokens = ([101], [102], 254)  # a 256-token model, without loading one
    batches = batching.batches(lengths, fixed=True)
    assert sorted(i for batch in batches for i in batch) == list(range(len(lengths)))
    widths = [fixed_width(lengths[b[0]], 256) for b in batches]
    assert widths == sorted(widths, reverse=True)
    for k, (batch, width) in enumerate(zip(batches, widths, strict=True)):
        following = widths[k + 1] if k + 1 < len(widths) else None
        assert width % 16 == 0 and width <= 256
        assert all(fixed_width(lengths[i], 256) == width for i in batch)
        rows = fixed_rows(width, size * 4)
        assert rows & (rows - 1) == 0 and rows * width <= TOKEN_BUDGET and rows <= size * 4
        assert len(batch) == rows or following != width


@pytest.fixture(scope="module", params=["openvino", "openvino-int8"])
def exported(request: pytest.FixtureRequest) -> PooledTransformer:
    """Each OpenVINO backend in turn, whichever one ``auto`` measured fastest here: CI's machine
    may choose the other (int8 and bf16 were 99 and 107 abstracts/s on one Xeon)."""
    from service.embed.backends import load_embedder

    try:
        embedder = load_embedder(settings_without_env(backend=request.param))
        embedder.encode(["a warm-up text"])
    except Exception as error:  # noqa: BLE001 -- a backend this CPU cannot run
        pytest.skip(f"{request.param} does not run here: {error}")
    return _pooled(embedder)


def test_fixed_shapes_give_the_dynamic_vectors(
    exported: PooledTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long run in fixed-shape batches (the model compiled for each full batch's shape, one
    shape at a time) gives each text the vector the dynamic model gives it, in its own row."""
    pooled = exported
    if not pooled.fixed_shapes:
        pytest.skip(f"{pooled.backend} has no fixed shapes")
    compiled: list[tuple[int, int]] = []
    compile_shape = pooled._compile  # type: ignore[attr-defined]

    def recording(shape: tuple[int, int]) -> object:
        compiled.append((shape[0], shape[1]))
        return compile_shape(shape)

    monkeypatch.setattr(pooled, "_compile", recording)
    words = ["graph", "protein", "speech", "galaxy", "policy", "kernel", "sensor", "matrix"]
    # 80 texts cut at 256 tokens (full batches of 32 at that width), 120 of varied lengths
    texts = [
        f"{words[i % 8]} paper {i}: " + f"{words[(i * 3) % 8]} results " * 200 for i in range(80)
    ]
    texts += [f"{words[i % 8]} paper {i}: " + "shorter findings " * (i % 60) for i in range(120)]
    texts.sort(key=len, reverse=True)
    chunks = [texts[:70], texts[70:]]
    streamed = np.vstack(list(pooled.encode_stream(iter(chunks), fixed=True)))
    assert compiled, "no full batch ran on a fixed shape"
    assert len(compiled) == len(set(compiled))  # sorted texts: each shape compiled once
    dynamic = pooled.encode(texts)
    # int8 kernels chosen per shape round differently (measured: min 0.9996); bf16 agrees closer
    close = 0.999 if "int8" in pooled.backend else 0.9999
    assert float(np.sum(streamed * dynamic, axis=1).min()) >= close


def test_a_long_run_is_sorted_by_length_and_keeps_each_hash_with_its_vector(
    exported: PooledTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """From ``FIXED_SHAPES_FROM`` texts the local engine sends them longest first (few shapes,
    full batches); each hash still comes back with its own text's vector."""
    from service.embed.backends import encode_in_chunks

    pooled = exported
    monkeypatch.setattr("service.embed.backends.FIXED_SHAPES_FROM", 10)
    monkeypatch.setattr("service.embed.backends.CHUNK", 16)
    texts = [f"abstract {i} on " + "sparse attention " * ((i * 7) % 50 + 1) for i in range(40)]
    hashes = [f"h{i}" for i in range(40)]
    chunks = list(encode_in_chunks(pooled, texts, hashes))
    order = [h for chunk, _ in chunks for h in chunk]
    assert sorted(order) == sorted(hashes)
    if pooled.fixed_shapes:
        lengths = [len(texts[int(h[1:])]) for h in order]
        assert lengths == sorted(lengths, reverse=True)
    got = {h: v for chunk, vectors in chunks for h, v in zip(chunk, vectors, strict=True)}
    expected = pooled.encode(texts)
    for i, h in enumerate(hashes):
        assert float(got[h] @ expected[i]) >= 0.9999


def test_encoding_is_independent_of_the_batch_it_falls_in(exported: PooledTransformer) -> None:
    """Token-length batching pads each batch to its own longest text: a text's vector is the
    same whether it is embedded alone or among longer and shorter ones (to the backend's
    precision: bf16 kernels of other shapes round differently, far below what ranks differ by)."""
    texts = ["short", "a medium length abstract about graph neural networks " * 3, "x " * 300]
    together = exported.encode(texts)
    alone = np.vstack([exported.encode([t]) for t in texts])
    assert float(np.sum(together * alone, axis=1).min()) >= 0.9999


def test_openvino_batches_in_flight_land_in_their_own_rows() -> None:
    """OpenVINO runs one batch per core at once and finishes them in any order: every vector
    must still land in its own text's row (checked against each text embedded alone)."""
    from service.embed.backends import load_embedder

    embedder = load_embedder(settings_without_env(backend="openvino"))
    topics = ["graph neural networks", "protein folding", "speech recognition", "galaxy surveys"]
    texts = [f"{topics[i % 4]} study number {i}: " + "results " * (60 + 3 * i) for i in range(80)]
    together = embedder.encode(texts)
    alone = np.vstack([embedder.encode([t]) for t in texts])
    assert float(np.sum(together * alone, axis=1).min()) >= 0.9999


def _pooled(embedder: Embedder) -> PooledTransformer:
    assert isinstance(embedder, PooledTransformer), "the default backend runs an exported model"
    return embedder


def test_token_ids_read_as_their_text(embedder: Embedder) -> None:
    """Token ids given for a text are read as the tokenised text: with the special tokens, cut
    where the tokenizer cuts, and embedded to the same vector."""
    pooled = _pooled(embedder)
    texts = ["Graph neural networks. Message-passing GNNs (e.g., GCN)", "long abstract " * 300]
    bare = [
        np.asarray(e.ids, dtype=np.int32)
        for e in pooled._tokenizer.encode_batch(texts, add_special_tokens=False)
    ]
    for given_ids, tokenised in zip(pooled.token_ids(bare), pooled.token_ids(texts), strict=True):
        assert given_ids.tolist() == tokenised.tolist()
    assert len(pooled.token_ids(bare)[1]) == 256
    mixed = pooled.encode([bare[0], texts[1]])
    np.testing.assert_allclose(mixed, pooled.encode(texts), atol=1e-6)


def test_streamed_chunks_give_each_chunk_its_vectors_in_order(embedder: Embedder) -> None:
    pooled = _pooled(embedder)
    texts = [f"paper {i} on " + "graph learning " * (i % 40 + 1) for i in range(150)]
    chunks = [texts[:64], texts[64:65], texts[65:]]
    streamed = list(pooled.encode_stream(iter(chunks)))
    assert [len(v) for v in streamed] == [64, 1, 85]
    together = pooled.encode(texts)
    assert float(np.sum(np.vstack(streamed) * together, axis=1).min()) >= 0.9999


def test_a_failing_stream_raises_in_the_caller_and_stops(embedder: Embedder) -> None:
    """An error while the runtime works in its thread reaches the caller; a caller that stops
    reading leaves no thread behind."""
    pooled = _pooled(embedder)

    def chunks() -> Iterator[list[str]]:
        yield ["a first chunk", "of two texts"]
        raise RuntimeError("the corpus file went away")

    stream = pooled.encode_stream(chunks())
    with pytest.raises(RuntimeError, match="went away"):
        list(stream)
    endless = pooled.encode_stream(iter(lambda: ["again and again"], None))
    assert next(endless).shape == (1, 384)
    endless.close()
    assert not any(t.name == "embed-stream" for t in threading.enumerate())


def test_cached_texts_are_streamed_in_chunks_with_their_token_ids(
    tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build's missing texts go to the model a chunk at a time, read from the token ids the
    caller has (no second tokenisation), each chunk saved as it lands."""
    pooled = _pooled(embedder)
    monkeypatch.setattr("service.embed.backends.CHUNK", 4)
    texts = [f"abstract number {i} about protein design" for i in range(10)]
    ids = [
        np.asarray(e.ids, dtype=np.int32)
        for e in pooled._tokenizer.encode_batch(texts, add_special_tokens=False)
    ]
    with Store(tmp_path / "p.sqlite") as store:
        vectors, embedded = embed_with_cache(
            store, pooled, texts, [f"h{i}" for i in range(10)], False, inputs=ids
        )
        assert embedded == 10
        assert len(store.cached_embeddings(pooled.cache_key, [f"h{i}" for i in range(10)])) == 10
    assert float(np.sum(vectors * pooled.encode(texts), axis=1).min()) >= 0.9999


def _encode_from_threads(embedder: Embedder, threads: int = 16, calls: int = 96) -> float:
    """Each text encoded alone from ``threads`` threads at once, as a server's threads do: the
    lowest cosine between a text's vector there and its vector encoded first, one at a time."""
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"query {i} about {('graphs', 'proteins', 'speech')[i % 3]}" for i in range(24)]
    texts += ["a long query " + "with many words " * 40]  # a wider batch in between
    alone = np.vstack([embedder.encode([t]) for t in texts])
    with ThreadPoolExecutor(threads) as pool:
        vectors = list(pool.map(lambda i: embedder.encode([texts[i % len(texts)]]), range(calls)))
    return min(float(v[0] @ alone[i % len(texts)]) for i, v in enumerate(vectors))


def test_a_servers_copies_of_the_model_give_the_builds_vectors_from_many_threads(
    exported: PooledTransformer,
) -> None:
    """A server compiles the model once per core, each run on one thread: its vectors are the
    build's, and every concurrent caller gets its own."""
    from service.embed.backends import load_embedder

    backend = "openvino-int8" if "int8" in exported.backend else "openvino"
    serving = load_embedder(settings_without_env(backend=backend), serving=True)
    texts = [f"query {i} about {('graphs', 'proteins', 'speech')[i % 3]}" for i in range(6)]
    texts.append("a pasted abstract " + "about learning on graphs " * 30)
    cosine = np.sum(serving.encode(texts) * exported.encode(texts), axis=1)
    assert float(cosine.min()) >= 0.9999
    assert _encode_from_threads(serving) >= 0.9999


def test_openvino_pads_every_batch_to_a_step_of_tokens(
    exported: PooledTransformer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Queries of any length run in a few input shapes (each new one costs the runtime a
    preparation), with the vectors they get unpadded."""
    texts = ["graphs", "speech recognition in noisy rooms", "proteins " * 20, "x " * 300]
    ids = exported.token_ids(texts)
    widths = {padded.shape[1] for _, padded, _ in exported.padded(ids)}
    assert all(w % FIXED_WIDTH_STEP == 0 or w == exported.max_length for w in widths)
    stepped = np.vstack([exported.encode([t]) for t in texts])
    monkeypatch.setattr(exported, "pads_to_step", False)
    exact = np.vstack([exported.encode([t]) for t in texts])
    assert float(np.sum(stepped * exact, axis=1).min()) >= 0.9999


def test_the_default_backend_encodes_from_many_threads_at_once(embedder: Embedder) -> None:
    """A shared runtime request used by two threads at once fails ("Infer Request is busy") or
    hands one thread the other's output: every text must get its own vector."""
    assert _encode_from_threads(embedder) >= 0.9999


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8", "openvino", "openvino-int8"])
def test_every_backend_encodes_from_many_threads_at_once(backend: str) -> None:
    from service.embed.backends import load_embedder

    assert _encode_from_threads(load_embedder(settings_without_env(backend=backend))) >= 0.9999
