"""``paperscope verify``: is a data folder sound?

Every build folder is checked against its manifest (files present, sizes and BLAKE2b checksums),
``builds/CURRENT`` must name a sound build, and the papers database must pass SQLite's
``integrity_check``. Nothing is written or repaired; the findings say what is wrong, per item.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from service import artifacts
from service.artifacts import BuildCheck
from service.config import Settings
from service.errors import megabytes
from service.store import integrity_problems


@dataclass(frozen=True)
class Finding:
    """One item checked: what it is, what is wrong with it (nothing: sound) or what was seen."""

    item: str
    name: str
    detail: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_data_folder(settings: Settings) -> list[Finding]:
    """The database, then every build (oldest first), then the ``CURRENT`` pointer."""
    checks = [artifacts.check_build(b) for b in artifacts.published_builds(settings.builds_dir)]
    return [
        _database(settings.db_path),
        *(_build(check) for check in checks),
        _current(settings.builds_dir, checks),
    ]


def _database(path: Path) -> Finding:
    if not path.exists():
        return Finding("database", str(path), "none yet (paperscope ingest or build makes it)")
    problems = integrity_problems(path)
    return Finding(
        "database",
        str(path),
        f"integrity_check ok ({megabytes(path.stat().st_size)})",
        [f"integrity_check: {p}" for p in problems[:10]],
    )


def _build(check: BuildCheck) -> Finding:
    if check.problems:
        return Finding("build", check.name, problems=check.problems)
    if not check.files:
        return Finding("build", check.name, "made before checksums: files present, not verified")
    return Finding("build", check.name, f"{check.files} files match their checksums")


def _current(builds_dir: Path, checks: list[BuildCheck]) -> Finding:
    pointer = artifacts.read_pointer(builds_dir)
    where = str(builds_dir / artifacts.CURRENT)
    if not pointer:
        return Finding("current", where, "no build published yet (paperscope build)")
    check = next((c for c in checks if c.name == pointer), None)
    if check is None:
        return Finding("current", where, problems=[f"names build {pointer}, which does not exist"])
    if not check.problems:
        return Finding("current", where, f"names build {pointer}")
    sound = [c.name for c in checks if not c.problems and c.name != pointer]  # as BuildWatcher
    instead = f"a server serves {sound[-1]} instead" if sound else "no other build is sound"
    return Finding(
        "current", where, problems=[f"names build {pointer}, which is damaged; {instead}"]
    )
