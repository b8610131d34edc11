from __future__ import annotations

import os
import subprocess
import sys
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from service.embed.speed import (
    Timing,
    batch_agreement,
    choose,
    isa_allows,
    machine_key,
    neighbour_overlap,
    probe_texts,
    time_backends,
)


def timing(backend: str, rate: float, cosine: float = 1.0, overlap: float = 1.0) -> Timing:
    return Timing(backend, rate, rate * 250, rate * 5, cosine, cosine, overlap)


def test_the_fastest_backend_within_the_guard_is_chosen() -> None:
    timings = [
        timing("torch", 20),
        timing("openvino", 54),
        timing("openvino-int8", 82, cosine=0.997, overlap=0.95),
        timing("onnx-int8", 90, cosine=0.98, overlap=0.95),  # too far from torch
        timing("fast-but-reordered", 99, cosine=0.995, overlap=0.6),  # neighbours change
    ]
    chosen, why = choose(timings)
    assert chosen == "openvino-int8"
    assert "onnx-int8" in why and "fast-but-reordered" in why and "quality guard" in why


def test_a_backend_whose_vectors_depend_on_the_batch_is_never_chosen() -> None:
    """onnx-int8 (dynamic activation scales) within the guard and fastest: still not chosen."""
    timings = [timing("openvino", 17), timing("onnx-int8", 22, cosine=0.993, overlap=0.93)]
    chosen, why = choose(timings)
    assert chosen == "openvino"
    assert "onnx-int8: its vectors depend on the batch" in why


def test_with_amx_bf16_wins_when_it_measures_faster() -> None:
    chosen, _ = choose([timing("torch", 20), timing("openvino", 90), timing("openvino-int8", 83)])
    assert chosen == "openvino"


def test_torch_when_nothing_else_keeps_the_guard() -> None:
    assert choose([timing("onnx-int8", 90, cosine=0.9)])[0] == "torch"


def test_hiding_instructions_changes_the_machine_key(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = machine_key()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert machine_key() != plain
    assert isa_allows("AVX512_CORE_BF16") and not isa_allows("AVX512_CORE_AMX")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    assert not isa_allows("AVX512_CORE")


def test_neighbour_overlap_sees_reordered_neighbours() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(40, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    assert neighbour_overlap(vectors, vectors) == 1.0
    shuffled = vectors[rng.permutation(40)]
    assert neighbour_overlap(vectors, shuffled) < 0.5


class Scaled:
    """A real computation standing in for a runtime: each text's reference vector (seeded by the
    text), perturbed; with ``batch_noise`` also by its batch (as dynamic int8 scales would)."""

    def __init__(self, backend: str, noise: float, batch_noise: float = 0.0) -> None:
        self.backend, self.noise, self.batch_noise = backend, noise, batch_noise

    def encode(self, texts: Sequence[str], progress: bool = False) -> npt.NDArray[np.float32]:
        rows = []
        for text in texts:
            rng = np.random.default_rng(zlib.crc32(text.encode()))
            base = rng.normal(size=16) + self.noise * rng.normal(size=16)
            rows.append(base)
        batch = np.random.default_rng(zlib.crc32("".join(texts).encode()))
        vectors = np.asarray(rows) + self.batch_noise * batch.normal(size=(len(texts), 16))
        normalised: npt.NDArray[np.float32] = (
            vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        ).astype(np.float32)
        return normalised


def test_a_backend_that_cannot_run_is_skipped_and_reported() -> None:
    def broken() -> Scaled:
        raise RuntimeError("Supported primitive descriptors list is empty")

    skipped: list[str] = []
    timings = time_backends(
        {"torch": lambda: Scaled("torch", 0.0), "bf16": broken, "noisy": lambda: Scaled("n", 2)},
        [f"text {i}" for i in range(30)],
        [100] * 30,
        rounds=1,
        on_skip=lambda name, error: skipped.append(name),
    )
    assert skipped == ["bf16"]
    assert [t.backend for t in timings] == ["torch", "noisy"]
    assert timings[0].passes and not timings[1].passes


def test_a_backend_measured_to_depend_on_its_batch_fails_the_guard() -> None:
    """Close to torch on the timed texts, but a text's vector moves with its batch: not chosen,
    and the reason is given."""
    timings = time_backends(
        {
            "torch": lambda: Scaled("torch", 0.0),
            "steady": lambda: Scaled("steady", 0.02),
            "batchy": lambda: Scaled("batchy", 0.0, batch_noise=0.1),
        },
        [f"text {i}" for i in range(30)],
        [100] * 30,
        rounds=1,
    )
    steady, batchy = timings[1], timings[2]
    assert steady.batch_cosine == pytest.approx(1.0) and steady.passes
    assert batchy.batch_cosine < 0.999 and not batchy.passes
    chosen, why = choose(timings)
    assert chosen != "batchy" and "batchy: its vectors depend on the batch" in why


@pytest.mark.parametrize("backend", ["openvino", "openvino-int8"])
def test_each_openvino_backend_gives_a_text_one_vector_in_any_batch_shape(backend: str) -> None:
    """The real runtimes on :func:`probe_texts`, fixed shapes against dynamic batches: what
    ``models prepare`` checks before ``auto`` may choose a backend."""
    from service.embed.backends import load_embedder
    from tests.helpers import settings_without_env

    try:
        embedder = load_embedder(settings_without_env(backend=backend))
        embedder.encode(["a warm-up text"])
    except Exception as error:  # noqa: BLE001 -- a backend this CPU cannot run (int8 on AVX2)
        pytest.skip(f"{backend} does not run here: {error}")
    assert batch_agreement(embedder, probe_texts()) >= 0.999


@pytest.mark.slow
def test_prepare_measures_each_machine_once_and_info_shows_the_choice(tmp_path: Path) -> None:
    """``models prepare`` with VNNI, BF16 and AMX hidden from the runtimes (oneDNN's cap) is
    another machine: it is timed, recorded beside this one's, and ``info`` explains it."""
    import json
    import shutil

    from tests.helpers import settings_without_env

    source = settings_without_env().models_dir
    models = tmp_path / "models"
    shutil.copytree(source, models, symlinks=True)
    env = {**os.environ, "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "PAPERSCOPE_MODELS_DIR": str(models)}
    env = {k: v for k, v in env.items() if not k.startswith("PAPERSCOPE_") or k.endswith("_DIR")}
    cli = [sys.executable, "-m", "service"]
    prepared = subprocess.run(
        [*cli, "models", "prepare"], env=env, capture_output=True, text=True, check=True
    )
    assert "auto = " in prepared.stdout and "tokens/s" in prepared.stdout
    report = json.loads((models / "all-MiniLM-L6-v2" / "prepared.json").read_text())
    capped = [key for key in report["speed"] if "cap AVX512_CORE |" in key]
    assert len(capped) == 1
    entry = report["speed"][capped[0]]
    assert {t["backend"] for t in entry["backends"]} >= {"torch", "openvino-int8", "onnx"}
    info = subprocess.run(
        [*cli, "info", "--json", "--data-dir", str(tmp_path / "data")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    embedding = json.loads(info.stdout)["embedding"]
    assert embedding["backend"] == entry["auto"]
    assert "measured" in embedding["why"] and "not measured" not in embedding["why"]
    again = subprocess.run(
        [*cli, "models", "prepare"], env=env, capture_output=True, text=True, check=True
    )
    assert "tokens/s" not in again.stdout  # measured once per machine: no timing lines
