import numpy as np

from service.eval.peers import kmeans_row, majority_of_neighbours, peer_rows, topic_words
from service.schemas import NOISE_TOPIC


def _blobs(sizes: list[int], dim: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = np.eye(dim, dtype=np.float32)[: len(sizes)] * 5
    vectors = np.vstack(
        [c + rng.normal(size=(n, dim)) * 0.3 for c, n in zip(centres, sizes, strict=True)]
    )
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32)


def test_noise_takes_the_majority_topic_of_its_nearest_clustered_papers() -> None:
    vectors = _blobs([20, 20])
    topics = np.array([0] * 20 + [1] * 20, dtype=np.int64)
    topics[[3, 25]] = NOISE_TOPIC
    moved = majority_of_neighbours(vectors, topics)
    assert moved[3] == 0 and moved[25] == 1
    assert (moved[topics != NOISE_TOPIC] == topics[topics != NOISE_TOPIC]).all()
    everyone = np.full(40, NOISE_TOPIC, dtype=np.int64)
    assert (majority_of_neighbours(vectors, everyone) == everyone).all()


def test_topic_words_name_each_cluster_by_its_own_words() -> None:
    texts = ["galaxy survey redshift"] * 5 + ["protein folding enzyme"] * 5
    topics = np.array([0] * 5 + [1] * 5, dtype=np.int64)
    words = topic_words(texts, topics, top=3)
    assert set(words[0]) == {"galaxy", "survey", "redshift"}
    assert set(words[1]) == {"protein", "folding", "enzyme"}
    assert topic_words(texts, np.full(10, NOISE_TOPIC, dtype=np.int64)) == []


def test_kmeans_rows_come_at_the_asked_counts_and_skip_impossible_ones() -> None:
    vectors = _blobs([15, 15, 15])
    texts = [f"word{i % 3} text" for i in range(45)]
    row = kmeans_row(vectors, texts, 3, 42, "ours")
    assert row.method == "k-means, k = 3 (ours)" and len(set(row.topics.tolist())) == 3
    assert not row.noise.any() and len(row.words) == 3
    notes: list[str] = []
    counts = {"ours": 3, "none": 1, "all": 45}
    rows = peer_rows(vectors, texts, 42, counts, notes, None, optional=("topeax",))
    assert [r.method for r in rows if r.method.startswith("k-means")] == ["k-means, k = 3 (ours)"]
    # Topeax needs an encoder for its vocabulary: without one it is skipped with a note
    assert any(note.startswith("topeax skipped") for note in notes)
