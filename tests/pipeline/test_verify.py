"""``paperscope verify``'s findings: the database, every build, the CURRENT pointer."""

from __future__ import annotations

import shutil
from pathlib import Path

from service.artifacts import CURRENT, current_build_dir
from service.pipeline.verify import verify_data_folder
from tests.helpers import make_settings


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4] = bytes(b ^ 0xFF for b in data[middle : middle + 4])
    path.write_bytes(bytes(data))


def test_a_sound_folder_is_all_ok(built_dir: Path) -> None:
    findings = verify_data_folder(make_settings(built_dir))
    assert [(f.item, f.ok) for f in findings] == [
        ("database", True),
        ("build", True),
        ("current", True),
    ]
    build = current_build_dir(make_settings(built_dir).builds_dir)
    assert build is not None and findings[2].detail == f"names build {build.name}"
    assert findings[1].detail.endswith("files match their checksums")


def test_a_damaged_current_build_names_the_file_and_the_fallback(built_copy: Path) -> None:
    settings = make_settings(built_copy)
    build = current_build_dir(settings.builds_dir)
    assert build is not None
    older = settings.builds_dir / "20000101T000000Z-older0"
    shutil.copytree(build, older)
    _flip(build / "embeddings.npy")
    findings = verify_data_folder(settings)
    assert [(f.item, f.name, f.ok) for f in findings] == [
        ("database", str(settings.db_path), True),
        ("build", older.name, True),
        ("build", build.name, False),
        ("current", str(settings.builds_dir / CURRENT), False),
    ]
    assert findings[2].problems == [
        "embeddings.npy does not match its checksum (its bytes changed)"
    ]
    assert findings[3].problems == [
        f"names build {build.name}, which is damaged; a server serves {older.name} instead"
    ]


def test_a_pointer_to_nothing_and_a_damaged_database_are_findings(built_copy: Path) -> None:
    settings = make_settings(built_copy)
    (settings.builds_dir / CURRENT).write_text("20990101T000000Z-gone00", encoding="utf-8")
    db = settings.db_path
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    findings = {f.item: f for f in verify_data_folder(settings)}
    assert findings["database"].problems == ["integrity_check: database disk image is malformed"]
    assert findings["current"].problems == [
        "names build 20990101T000000Z-gone00, which does not exist"
    ]
    assert findings["build"].ok


def test_an_empty_folder_has_nothing_wrong(tmp_path: Path) -> None:
    findings = verify_data_folder(make_settings(tmp_path))
    assert all(f.ok for f in findings)
    assert [f.item for f in findings] == ["database", "current"]
