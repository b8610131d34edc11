"""Backups of a data folder and bringing them back (``paperscope backup`` / ``restore``).

A backup is a folder::

    backup.json              what it holds: when, paperscope version, papers, build, checksums
    papers.sqlite            the papers database, copied with SQLite's online backup API
    build-manifest.json      the manifest of the build that was current (when there was one)
    builds/<build_id>/       that build itself (with ``--with-build``)

It is written under a hidden temporary name beside the destination and renamed into place
only when complete, with ``backup.json`` written last: an interrupted backup never looks like
one. SQLite goes through :mod:`service.store` and build folders through
:mod:`service.artifacts`; this module only lays out the backup folder.
"""

from __future__ import annotations

import re
import secrets
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ValidationError

from service import __version__, artifacts, store
from service.config import BUILDS, DATABASE, Settings
from service.errors import InvalidInput, PaperscopeError
from service.files import digest, fsync, fsync_tree

BACKUP_MANIFEST = "backup.json"
BUILD_MANIFEST = "build-manifest.json"


class BackupFile(BaseModel):
    bytes: int
    blake2b: str


class BackupManifest(BaseModel):
    """``backup.json``: written last, so a backup folder without it is not a backup."""

    format_version: Literal[1] = 1
    created_at: str
    paperscope_version: str
    papers: int
    build_id: str | None
    with_build: bool
    files: dict[str, BackupFile]
    """Every other file of the backup (path relative to it) with its size and BLAKE2b digest."""


BuildPlan = Literal["restored", "already there", "not in the backup", "none"]
"""What restore does with the backup's build (and then says it did)."""


@dataclass(frozen=True)
class Restored:
    """What ``restore`` did."""

    papers: int
    build_id: str | None
    build: BuildPlan


def _files(root: Path) -> dict[str, BackupFile]:
    return {
        path.relative_to(root).as_posix(): BackupFile(
            bytes=path.stat().st_size, blake2b=digest(path)
        )
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != BACKUP_MANIFEST
    }


# -- backup -----------------------------------------------------------------------------------


def _check_destination(settings: Settings, dest: Path, force: bool) -> None:
    builds_dir = settings.builds_dir.resolve()
    if dest.resolve() == builds_dir or builds_dir in dest.resolve().parents:
        raise InvalidInput(f"{dest} is inside the builds folder; choose a folder outside it")
    if dest.exists() and not dest.is_dir():
        raise InvalidInput(f"{dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()):
        if not force:
            raise InvalidInput(
                f"{dest} is not empty; choose a new or empty folder (--force replaces an "
                "earlier backup)"
            )
        if not (dest / BACKUP_MANIFEST).is_file():
            raise InvalidInput(f"{dest} is not empty and not a paperscope backup; not replacing it")


def backup(settings: Settings, dest: Path, with_build: bool, force: bool) -> BackupManifest:
    """Copy the papers database (consistent while servers write to it) and the current build's
    manifest (with ``with_build``, the whole build) into the new folder ``dest``."""
    dest = dest.absolute()
    _check_destination(settings, dest, force)
    build = artifacts.current_build_dir(settings.builds_dir)
    if with_build and build is None:
        raise InvalidInput(f"--with-build: no build in {settings.data_dir} yet")
    dest.parent.mkdir(parents=True, exist_ok=True)
    for leftover in dest.parent.glob(f".{dest.name}.partial-*"):  # of interrupted backups
        shutil.rmtree(leftover, ignore_errors=True)
    staging = dest.parent / f".{dest.name}.partial-{secrets.token_hex(3)}"
    staging.mkdir()
    try:
        papers = store.backup_database(settings.db_path, staging / DATABASE)
        problems = store.integrity_problems(staging / DATABASE)
        if problems:
            raise PaperscopeError(
                f"the copy of {settings.db_path} fails SQLite's integrity check: "
                + "; ".join(problems[:5])
            )
        if build is not None:
            shutil.copyfile(build / artifacts.MANIFEST, staging / BUILD_MANIFEST)
            if with_build:
                artifacts.copy_build(build, staging / BUILDS / build.name)
        manifest = BackupManifest(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            paperscope_version=__version__,
            papers=papers,
            build_id=build.name if build else None,
            with_build=with_build,
            files=_files(staging),
        )
        (staging / BACKUP_MANIFEST).write_text(manifest.model_dump_json(indent=2), "utf-8")
        fsync_tree(staging)
        _move_into_place(staging, dest)
    except OSError as err:
        raise PaperscopeError(f"backup to {dest} failed: {err}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _move_into_place(staging: Path, dest: Path) -> None:
    """Rename the finished backup to ``dest`` (an empty folder is replaced by the rename; an
    earlier backup is moved aside first and removed after)."""
    old = dest.parent / f".{dest.name}.replaced-{secrets.token_hex(3)}"
    if dest.is_dir() and any(dest.iterdir()):
        dest.rename(old)
    staging.rename(dest)
    fsync(dest.parent)
    shutil.rmtree(old, ignore_errors=True)


# -- restore ----------------------------------------------------------------------------------


def read_backup(source: Path) -> BackupManifest:
    """The backup's manifest, after checking every file it lists against its checksum."""
    try:
        raw = (source / BACKUP_MANIFEST).read_text(encoding="utf-8")
    except OSError:
        raise InvalidInput(
            f"{source} is not a complete paperscope backup (no {BACKUP_MANIFEST}: an "
            "interrupted backup, or another folder)"
        ) from None
    try:
        manifest = BackupManifest.model_validate_json(raw)
    except ValidationError as err:
        version = re.search(r'"format_version":\s*(\d+)', raw)
        if version and version.group(1) != "1":
            raise InvalidInput(
                f"{source} is a backup of format {version.group(1)} (made by a newer "
                f"paperscope?); paperscope {__version__} reads format 1"
            ) from None
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the file"
        raise InvalidInput(
            f"{source / BACKUP_MANIFEST} is not a backup manifest ({where}: {first['msg']})"
        ) from None
    if manifest.build_id is not None and not artifacts.BUILD_ID.match(manifest.build_id):
        raise InvalidInput(f"{source / BACKUP_MANIFEST} names no valid build id")
    damaged = []
    for name, expected in manifest.files.items():
        path = source / name
        if Path(name).is_absolute() or ".." in Path(name).parts:
            damaged.append(f"{name} is outside the backup")
        elif not path.is_file():
            damaged.append(f"{name} is missing")
        elif path.stat().st_size != expected.bytes or digest(path) != expected.blake2b:
            damaged.append(f"{name} differs from its checksum")
    if DATABASE not in manifest.files:
        damaged.append(f"{DATABASE} is not listed")
    if damaged:
        raise InvalidInput(f"the backup in {source} is damaged: {'; '.join(damaged)}")
    return manifest


def restore(settings: Settings, source: Path, force: bool) -> Restored:
    """Bring a backup back into the data folder: check it, then replace the papers database
    atomically (refused over an existing one without ``force``), then restore and publish the
    backup's build when it holds one."""
    manifest = read_backup(source)
    db_path = settings.db_path
    if db_path.exists() and not force:
        raise InvalidInput(
            f"{db_path} exists; restore --force replaces it (paperscope backup keeps a copy first)"
        )
    plan = _build_plan(settings, manifest, force)
    db_path.parent.mkdir(parents=True, exist_ok=True)
    staged = db_path.with_name(f".{db_path.name}.restore-{secrets.token_hex(3)}")
    try:
        shutil.copyfile(source / DATABASE, staged)
        problems = store.integrity_problems(staged)
        if problems:
            raise InvalidInput(
                f"{source / DATABASE} fails SQLite's integrity check: {'; '.join(problems[:5])}"
            )
        store.replace_database(staged, db_path)
        try:
            _restore_build(settings, source, manifest.build_id or "", plan)
        except (PaperscopeError, OSError) as err:
            raise PaperscopeError(f"the database is restored, but not the build: {err}") from None
    except OSError as err:
        raise PaperscopeError(f"restore from {source} failed: {err}") from None
    finally:
        staged.unlink(missing_ok=True)
    return Restored(manifest.papers, manifest.build_id, plan)


def _build_plan(settings: Settings, manifest: BackupManifest, force: bool) -> BuildPlan:
    """What restore does with the backup's build; refused (before anything changes) when a
    different build of that id is in the data folder and ``force`` is not given."""
    if manifest.build_id is None:
        return "none"
    if not manifest.with_build:
        return "not in the backup"
    prefix = f"{BUILDS}/{manifest.build_id}/"
    ours = {k[len(prefix) :]: v for k, v in manifest.files.items() if k.startswith(prefix)}
    there = settings.builds_dir / manifest.build_id
    if there.is_dir() and _files(there) == ours:
        return "already there"
    if there.exists() and not force:
        raise InvalidInput(f"{there} exists and differs from the backup's; --force replaces it")
    return "restored"


def _restore_build(settings: Settings, source: Path, build_id: str, plan: BuildPlan) -> None:
    if plan == "already there":
        artifacts.use_build(settings.builds_dir, build_id)
    elif plan == "restored":
        artifacts.install_build(settings.builds_dir, source / BUILDS / build_id, build_id)
