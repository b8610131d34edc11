import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.topics.groups import MAX_GROUPS, MAX_SHARE, balanced_groups, group_count


@given(st.integers(min_value=4, max_value=2_000))
def test_group_count_is_a_map_sized_coarse_level(topics: int) -> None:
    groups = group_count(topics)
    assert 2 <= groups <= 30 and groups < topics
    if topics >= 40:  # a 75k-paper corpus has about 100 topics: 8-30 named groups
        assert 8 <= groups <= 30


@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=2, max_value=160),
    st.integers(min_value=0, max_value=2**31 - 1),
    st.floats(min_value=0.0, max_value=3.0),
)
def test_groups_cover_every_topic_and_stay_balanced(k: int, seed: int, skew: float) -> None:
    rng = np.random.default_rng(seed)
    centroids = rng.normal(size=(k, 16)).astype(np.float32)
    sizes = np.maximum(1, (rng.pareto(1 + skew, size=k) * 50)).astype(np.int64)
    group = balanced_groups(centroids, sizes)
    assert len(group) == k
    ids = sorted(set(group))
    assert ids == list(range(len(ids)))  # every group has a topic, numbered 0..n-1
    assert len(ids) <= MAX_GROUPS
    papers = [int(sizes[[i for i in range(k) if group[i] == g]].sum()) for g in ids]
    assert papers == sorted(papers, reverse=True)  # largest first
    for g, share in zip(ids, np.array(papers) / sizes.sum(), strict=True):
        alone = group.count(g) == 1
        assert share <= MAX_SHARE or alone or len(ids) == MAX_GROUPS


def test_one_dominant_field_is_split_until_balanced() -> None:
    # 40 topics, 30 of them close together (one field holding most papers)
    rng = np.random.default_rng(0)
    field = rng.normal(size=16)
    centroids = np.vstack(
        [field + 0.05 * rng.normal(size=(30, 16)), rng.normal(size=(10, 16)) * 3]
    ).astype(np.float32)
    sizes = np.full(40, 100, dtype=np.int64)
    group = balanced_groups(centroids, sizes)
    shares = np.bincount(group, weights=sizes) / sizes.sum()
    assert 8 <= len(shares) <= 30 and shares.max() <= MAX_SHARE
