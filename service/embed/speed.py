"""Which backend embeds fastest on this machine, decided by measuring it.

No CPU flag predicts the winner: OpenVINO's bf16 pays off where the CPU has AMX (int8 was only
1.08x bf16 on a Xeon with AMX), but on an AMD EPYC with AVX512-BF16 and no AMX the static int8
model ran 1.5x bf16. So ``paperscope models prepare`` times every backend the machine can run on
real abstracts (interleaved rounds, so load from other processes falls on all of them alike),
checks each against torch's vectors, and records the figures and the choice in the model's
``prepared.json``, keyed by the machine (:func:`machine_key`: CPU model, its vector
instructions, the oneDNN ISA cap, cores, runtime version). ``auto`` follows that record.

The quality guard: mean cosine to torch >= :data:`MIN_COSINE`, and, for every backend whose
vectors differ from torch's at all, a retrieval check: each abstract's ten nearest neighbours
among the others must mostly be torch's (:data:`MIN_NEIGHBOUR_OVERLAP`); and a text's vector
must not depend on its batch: known for ONNX's dynamic int8 (:data:`BATCH_DEPENDENT`), measured
for every backend (:func:`batch_agreement`).

``ONEDNN_MAX_CPU_ISA`` (oneDNN's own control, honoured by OpenVINO and torch) hides instruction
sets from the runtimes: ``AVX512_CORE_BF16`` hides AMX, ``AVX512_CORE`` hides VNNI and BF16 too.
It changes the key, so a machine can hold its choice with and without them.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

LAYERS, HIDDEN, FFN = 6, 384, 1536
"""MiniLM-L6's shape, for the arithmetic count (other models: the figure is indicative)."""
MIN_COSINE = 0.99
BATCH_DEPENDENT = frozenset({"onnx-int8"})
"""Backends whose vector for a text depends on the texts batched with it, never chosen:
ONNX Runtime's dynamic int8 quantises a batch's activations with that batch's own scale (a text
alone and in a batch of others: cosine 0.975-0.99 on an AVX2 EPYC), so two builds of one corpus
would not agree and cached vectors would not match fresh ones. Still timed and listed."""
MIN_NEIGHBOUR_OVERLAP = 0.9
MIN_BATCH_COSINE = 0.999
"""A text's vector in another batch (or batch shape) must agree with it to this cosine: bf16
and int8 kernels of other shapes round differently by less (0.9996 at worst, measured)."""
NEIGHBOURS = 10
ISA_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")
"""The /proc/cpuinfo flags that decide which kernels the runtimes can use."""
ISA_ORDER = (
    "SSE41",
    "AVX",
    "AVX2",
    "AVX2_VNNI",
    "AVX2_VNNI_2",
    "AVX512_CORE",
    "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16",
    "AVX10_1_512",
    "AVX512_CORE_FP16",
    "AVX512_CORE_AMX",
    "AVX10_1_512_AMX_FP16",
    "AVX512_CORE_AMX_FP16",
    "AVX10_2_512",
    "AVX10_2_512_AMX_2",
)
"""oneDNN's ``ONEDNN_MAX_CPU_ISA`` values, lowest first."""


class Encoder(Protocol):
    backend: str

    def encode(self, texts: Sequence[str], progress: bool = False) -> npt.NDArray[np.float32]: ...


@dataclass(frozen=True)
class Timing:
    """One backend on this machine: speed (median round) and agreement with torch."""

    backend: str
    abstracts_per_s: float
    tokens_per_s: float
    gflops: float
    mean_cosine: float
    min_cosine: float
    neighbour_overlap: float
    runtime: str = ""
    """What the backend computed with (``openvino/int8-static``, ``onnxruntime/fp32``, ...)."""
    batch_cosine: float = 1.0
    """The least cosine between a text's vectors from two batchings (:func:`batch_agreement`)."""

    @property
    def depends_on_batch(self) -> bool:
        """Known to (:data:`BATCH_DEPENDENT`) or measured to (:data:`MIN_BATCH_COSINE`)."""
        return self.backend in BATCH_DEPENDENT or self.batch_cosine < MIN_BATCH_COSINE

    @property
    def passes(self) -> bool:
        identical = self.min_cosine >= 0.9999
        if self.depends_on_batch:
            return False
        return self.mean_cosine >= MIN_COSINE and (
            identical or self.neighbour_overlap >= MIN_NEIGHBOUR_OVERLAP
        )


def isa_cap() -> str | None:
    """The oneDNN ISA cap of this process (``ONEDNN_MAX_CPU_ISA``), upper-cased, or None."""
    value = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    return value if value and value != "ALL" else None


def isa_allows(level: str) -> bool:
    """Whether the ISA cap (if any) lets the runtimes use ``level`` (an :data:`ISA_ORDER` name)."""
    cap = isa_cap()
    if cap is None or cap not in ISA_ORDER:
        return True
    return ISA_ORDER.index(level) <= ISA_ORDER.index(cap)


def cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def machine() -> dict[str, Any]:
    """What the choice depends on: the CPU, its vector instructions, the cap, cores, runtime."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        import openvino

        runtime = openvino.get_version().split("-")[0]
    except ImportError:  # pragma: no cover -- a dependency
        runtime = "none"
    flags = cpu_flags()
    return {
        "cpu": model,
        "isa": [flag for flag in ISA_FLAGS if flag in flags],
        "isa_cap": isa_cap(),
        "cores": os.cpu_count() or 1,
        "openvino": runtime,
    }


def machine_key(described: dict[str, Any] | None = None) -> str:
    """A stable name of :func:`machine`, the key of its choice in ``prepared.json``."""
    m = described or machine()
    return (
        f"{m['cpu']} | {' '.join(m['isa']) or '-'} | cap {m['isa_cap'] or 'none'} | "
        f"{m['cores']} cores | openvino {m['openvino']}"
    )


def model_flops(token_counts: Sequence[int]) -> float:
    """Arithmetic of one pass over texts of these token counts: the dense layers
    (2 x 4·h² + 2 x 2·h·ffn per token per layer) plus attention (4·t²·h per text per layer)."""
    per_token = LAYERS * 2 * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN)
    tokens = np.asarray(token_counts, dtype=np.float64)
    return float(per_token * tokens.sum() + LAYERS * 4 * HIDDEN * np.square(tokens).sum())


def token_counts(weights: Path, texts: Sequence[str], max_tokens: int) -> list[int]:
    """Tokens each text is embedded with (the model's tokenizer, truncated as embedding does)."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(weights / "tokenizer.json"))
    tokenizer.enable_truncation(max_length=max_tokens)
    return [len(e.ids) for e in tokenizer.encode_batch(list(texts))]


def neighbour_overlap(reference: npt.NDArray[np.float32], other: npt.NDArray[np.float32]) -> float:
    """Mean share of each text's :data:`NEIGHBOURS` nearest others (by ``other``'s vectors) that
    are also among its nearest by ``reference``'s: what a search would see change."""
    k = min(NEIGHBOURS, len(reference) - 1)
    if k < 1:
        return 1.0

    def nearest(vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
        scores = vectors @ vectors.T
        np.fill_diagonal(scores, -np.inf)
        return np.argsort(-scores, axis=1)[:, :k]

    ours, theirs = nearest(reference), nearest(other)
    shared = [len(set(a) & set(b)) / k for a, b in zip(ours.tolist(), theirs.tolist(), strict=True)]
    return float(np.mean(shared))


def probe_texts() -> list[str]:
    """Texts that show a batch dependence real abstracts hide, longest first: repetitive ones,
    40 at the model's full width (a full fixed-shape batch) and 60 of varied lengths. With
    OpenVINO left to run int8's other operations in bf16 on an AMX Xeon, these got vectors 0.88
    apart from one batch shape to another, where real abstracts agreed to 0.9995."""
    words = ["graph", "protein", "speech", "galaxy", "policy", "kernel", "sensor", "matrix"]
    long = [f"{words[i % 8]} paper {i}: " + f"{words[i * 3 % 8]} results " * 200 for i in range(40)]
    texts = long + [f"{words[i % 8]} paper {i}: " + "shorter findings " * i for i in range(60)]
    return sorted(texts, key=len, reverse=True)


def batch_agreement(encoder: Encoder, texts: Sequence[str]) -> float:
    """The least cosine between each text's vector in one run of ``texts`` and in another:
    in fixed-shape batches where the runtime has them (as a long build embeds), otherwise
    reversed, so each text falls among other texts and paddings."""
    together = encoder.encode(list(texts))
    stream = getattr(encoder, "encode_stream", None)
    if getattr(encoder, "fixed_shapes", False) and stream is not None:
        other = np.vstack(list(stream(iter([list(texts)]), fixed=True)))
    else:
        other = encoder.encode(list(texts)[::-1])[::-1]
    return float(np.sum(together * other, axis=1).min())


def time_backends(
    loaders: dict[str, Callable[[], Encoder]],
    texts: Sequence[str],
    token_counts: Sequence[int],
    rounds: int = 3,
    on_skip: Callable[[str, Exception], None] | None = None,
) -> list[Timing]:
    """Each backend ``rounds`` times over ``texts`` after a warm-up, rounds interleaved; the first
    loader is the reference (torch). A backend that fails to load or run (e.g. bf16 with its
    instructions hidden) is skipped and reported through ``on_skip``."""
    encoders: dict[str, Encoder] = {}
    for name, load in loaders.items():
        try:
            encoder = load()
            encoder.encode(list(texts[:8]))
        except Exception as error:  # noqa: BLE001 -- a runtime this machine cannot run
            if on_skip is not None:
                on_skip(name, error)
            continue
        encoders[name] = encoder
    seconds: dict[str, list[float]] = {name: [] for name in encoders}
    vectors: dict[str, npt.NDArray[np.float32]] = {}
    for _ in range(max(1, rounds)):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            vectors[name] = encoder.encode(list(texts))
            seconds[name].append(time.perf_counter() - start)
    flops, tokens = model_flops(token_counts), float(sum(token_counts))
    reference = next(iter(vectors.values()))
    probes = probe_texts()
    timings = []
    for name, encoder in encoders.items():
        median = statistics.median(seconds[name])
        cosine = np.sum(reference * vectors[name], axis=1)
        timings.append(
            Timing(
                name,
                round(len(texts) / median, 1),
                round(tokens / median),
                round(flops / median / 1e9, 1),
                round(float(cosine.mean()), 6),
                round(float(cosine.min()), 6),
                round(neighbour_overlap(reference, vectors[name]), 4),
                getattr(encoder, "backend", name),
                round(batch_agreement(encoder, probes), 6),
            )
        )
    return timings


def choose(timings: Sequence[Timing]) -> tuple[str, str]:
    """The fastest backend that keeps the quality guard, and why, in one line."""
    kept = sorted((t for t in timings if t.passes), key=lambda t: -t.abstracts_per_s)
    if not kept:
        return "torch", "no exported backend kept the quality guard; torch is the reference"
    best = kept[0]
    others = ", ".join(f"{t.backend} {t.abstracts_per_s:.0f}/s" for t in kept[1:])
    dropped = [t.backend for t in timings if not t.passes]
    why = (
        f"fastest measured: {best.backend} {best.abstracts_per_s:.0f} abstracts/s "
        f"(cosine to torch {best.mean_cosine:.4f}, neighbours kept {best.neighbour_overlap:.0%})"
    )
    if others:
        why += f"; then {others}"
    if dropped:
        why += f"; failed the quality guard: {', '.join(dropped)}"
        batched = sorted(t.backend for t in timings if t.depends_on_batch)
        if batched:
            why += f" ({', '.join(batched)}: its vectors depend on the batch)"
    return best.backend, why


def record(timings: Sequence[Timing], chosen: str, why: str) -> dict[str, Any]:
    """The ``prepared.json`` entry of this machine."""
    return {
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backends": [asdict(t) for t in timings],
        "auto": chosen,
        "why": why,
    }
