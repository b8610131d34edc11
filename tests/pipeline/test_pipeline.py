from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from service import artifacts
from service.artifacts import current_build_dir, read_manifest
from service.embed.backends import Embedder
from service.errors import ArtifactMismatch, DiskFull, InvalidInput
from service.pipeline.pipeline import run_build
from service.query.engine import Engine
from service.query.view import short_revision
from tests.helpers import make_settings


def test_build_of_bundled_corpus_has_a_full_manifest(built_dir: Path) -> None:
    build = current_build_dir(built_dir / "builds")
    assert build is not None
    manifest = read_manifest(build)
    assert manifest.papers == 115
    assert manifest.model.name == "all-MiniLM-L6-v2"
    assert manifest.model.dim == 384
    if manifest.model.backend.startswith("onnxruntime"):  # its measured agreement with torch
        assert manifest.model.agreement is not None
        assert manifest.model.agreement["min_cosine"] >= 0.9999
    assert manifest.model.revision.startswith("53aa5117")
    assert manifest.index.type == "Flat" and "exact" in manifest.index.reason
    stages = {"embed", "index", "neighbours", "topics", "map", "lexical", "write"}
    assert set(manifest.stage_seconds) == stages
    assert manifest.build_settings["bm25_title_weight"] == 3
    assert (build / "lexical" / "paperscope.json").is_file()
    assert manifest.versions["faiss-cpu"] != "not installed"
    assert 5 <= manifest.n_topics <= 25
    assert manifest.noise_share < 0.4
    assert not list((built_dir / "builds").glob(".tmp-*"))


def test_unchanged_corpus_is_not_rebuilt_unless_forced(
    built_copy: Path, embedder: Embedder
) -> None:
    settings = make_settings(built_copy)
    before = current_build_dir(settings.builds_dir)
    folder, _, made = run_build(settings, lambda: embedder, progress=False)
    assert not made and folder == before
    folder, manifest, made = run_build(settings, lambda: embedder, force=True, progress=False)
    assert made and folder != before
    assert manifest.embedded_new == 0  # every vector came from the cache
    assert current_build_dir(settings.builds_dir) == folder


def test_crash_while_writing_keeps_previous_build_and_no_leftovers(
    built_copy: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(built_copy)
    before = current_build_dir(settings.builds_dir)

    def broken_save(*_: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "index.faiss")

    monkeypatch.setattr(artifacts, "save_index", broken_save)
    with pytest.raises(DiskFull, match=r"writing build \S+ stopped after .*No space left"):
        run_build(settings, lambda: embedder, force=True, progress=False)
    assert current_build_dir(settings.builds_dir) == before
    assert not list(settings.builds_dir.glob(".tmp-*"))


def test_old_builds_are_pruned(built_copy: Path, embedder: Embedder) -> None:
    settings = make_settings(built_copy)
    for _ in range(artifacts.KEEP_BUILDS + 1):
        run_build(settings, lambda: embedder, force=True, progress=False)
    kept = [p for p in settings.builds_dir.iterdir() if p.is_dir()]
    assert len(kept) == artifacts.KEEP_BUILDS
    assert current_build_dir(settings.builds_dir) in kept


def test_engine_refuses_a_build_of_another_model(built_copy: Path, embedder: Embedder) -> None:
    build = current_build_dir(built_copy / "builds")
    assert build is not None
    manifest_path = build / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["model"]["revision"] = "0" * 64
    manifest["model"]["dim"] = 768
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactMismatch, match="configured model"):
        Engine(build, embedder)


def test_a_build_read_by_another_backend_or_token_count_says_which(
    built_copy: Path, embedder: Embedder
) -> None:
    build = current_build_dir(built_copy / "builds")
    assert build is not None
    manifest_path = build / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    weights = embedder.revision.split("+")[0].split("@")[0]  # auto's backend may add its own
    manifest["model"]["revision"] = f"{weights}+onnx-int8@64tok"
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtifactMismatch) as refused:
        Engine(build, embedder)
    message = str(refused.value)
    assert f"{weights[:12]}+onnx-int8@64tok)" in message
    assert f"revision {short_revision(embedder.revision)})" in message
    assert "PAPERSCOPE_BACKEND" in message


@pytest.mark.parametrize(
    ("revision", "shown"),
    [
        ("a" * 64, "a" * 12),
        ("a" * 64 + "+openvino-int8", "a" * 12 + "+openvino-int8"),
        ("a" * 64 + "@64tok", "a" * 12 + "@64tok"),
        ("abc+onnx-int8@128tok", "abc+onnx-int8@128tok"),
        ("all-MiniLM-L6-v2", "all-MiniLM-L"),
    ],
)
def test_short_revisions_keep_what_follows_the_hash(revision: str, shown: str) -> None:
    assert short_revision(revision) == shown


def test_incomplete_build_is_refused(built_copy: Path, embedder: Embedder) -> None:
    build = current_build_dir(built_copy / "builds")
    assert build is not None
    (build / "index.faiss").unlink()
    with pytest.raises(ArtifactMismatch, match="missing"):
        Engine(build, embedder)


def test_umap_components_must_be_below_model_dim(tmp_path: Path, embedder: Embedder) -> None:
    settings = make_settings(tmp_path, umap_components=100)
    settings.__dict__["umap_components"] = 500  # beyond the settings' own bound, as a bad config
    with pytest.raises(InvalidInput, match="below the model's dimension"):
        run_build(settings, lambda: embedder, progress=False)


def test_damaged_artifact_is_refused_clearly(built_copy: Path, embedder: Embedder) -> None:
    build = current_build_dir(built_copy / "builds")
    assert build is not None
    data = (build / "embeddings.npy").read_bytes()
    (build / "embeddings.npy").write_bytes(data[: len(data) // 3])
    with pytest.raises(ArtifactMismatch, match="damaged"):
        Engine(build, embedder)


def test_previous_build_of_another_model_gives_no_lineage(built_dir: Path) -> None:
    from service.topics.lineage import load_previous

    build = current_build_dir(built_dir / "builds")
    assert load_previous(build, "some-other-model-revision") is None
    previous = load_previous(build, read_manifest(build).model.revision) if build else None
    assert previous is not None and previous.topic_of


def test_compressed_index_tier_serves_exact_scores(
    built_copy: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tiny thresholds and no memory budget: the bundled corpus gets the product-quantised
    tier, and the engine still ranks by the stored vectors' exact cosine."""
    from service.search import index as index_module

    monkeypatch.setattr(index_module, "COMPRESSED_BUDGET_BYTES", 0)
    settings = make_settings(built_copy, exact_index_max=10, compressed_index_above=20)
    folder, manifest, _ = run_build(settings, lambda: embedder, force=True, progress=False)
    assert ",PQ" in manifest.index.type and manifest.index.params["tier"] == "compressed"
    assert manifest.index.nprobe is not None
    assert manifest.index.recall_at_10 is not None and manifest.index.recall_at_10 >= 0.9
    assert manifest.build_settings["compressed_index_above"] == 20
    engine = Engine(folder, embedder)
    try:
        title = "Sinkhorn Distance Minimization for Knowledge Distillation"
        hits = engine.search(title, k=5, mode="dense")
        query = embedder.encode([title])[0]
        stored = engine.view.vectors_at([engine.view.row_of(h.id) for h in hits])
        assert [h.score for h in hits] == pytest.approx((stored @ query).tolist(), abs=1e-4)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert engine.search(title, k=3)[0].title == title  # hybrid, the default
        similar = engine.similar(hits[0].id, k=10)
        assert hits[0].id not in {h.id for h in similar} and len(similar) == 10
    finally:
        engine.close()
