"""The coarse level: fine topics merged into balanced groups, built from the topics' centroids.

Ward linkage over the topics' (unit) centroids, cut into
:func:`group_count` groups; then, while a group holds more than ``MAX_SHARE`` of the papers,
that group is split along its own Ward tree (the two halves its papers' topics fall into),
up to ``MAX_GROUPS``. Average linkage, used before, chained most of a corpus into one group
(49% of a 14k astronomy corpus; docs/quality.md).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

MAX_SHARE = 0.25
"""No group holds more of the papers than this, unless it is one topic or the cap is reached."""
MAX_GROUPS = 30
MIN_GROUPS = 8
"""From :data:`MIN_GROUPS_FROM` topics, at least this many groups (a map zoomed out)."""
MIN_GROUPS_FROM = 24


def group_count(topics: int) -> int:
    """How many coarse groups k fine topics fall into before balancing: k/5 or sqrt(k),
    whichever is more (20 for 100 topics, 3 for 12), at least 2 (8 from 24 topics) and at
    most 30, so a 75k-paper map shows 8-30 group names zoomed out and a small corpus a few."""
    floor = MIN_GROUPS if topics >= MIN_GROUPS_FROM else 2
    return int(min(MAX_GROUPS, max(floor, round(max(topics / 5, np.sqrt(topics))))))


def _split_in_two(centroids: npt.NDArray[np.float32], sizes: npt.NDArray[np.int64]) -> list[int]:
    """0/1 for each of these topics: the top split of their Ward tree."""
    from scipy.cluster.hierarchy import fcluster, linkage

    if len(centroids) == 2:
        return [0, 1]
    tree = linkage(centroids, method="ward")
    halves = fcluster(tree, t=2, criterion="maxclust")
    if len(set(halves.tolist())) < 2:  # identical centroids: split by size order
        order = np.argsort(-sizes, kind="stable")
        return [int(i in order[: len(order) // 2]) for i in range(len(sizes))]
    return [int(h) - 1 for h in halves]


def balanced_groups(centroids: npt.NDArray[np.float32], sizes: npt.NDArray[np.int64]) -> list[int]:
    """Each topic's group (0-based, groups numbered by size, largest first).

    ``centroids``: the topics' mean vectors; ``sizes``: their papers."""
    from scipy.cluster.hierarchy import fcluster, linkage

    k = len(centroids)
    if k < 2:
        return [0] * k
    unit = centroids / np.maximum(np.linalg.norm(centroids, axis=1, keepdims=True), 1e-12)
    tree = linkage(unit, method="ward")
    group = [int(g) for g in fcluster(tree, t=min(k, group_count(k)), criterion="maxclust")]
    total = float(sizes.sum())
    while len(set(group)) < MAX_GROUPS:
        share = {g: sizes[[i for i in range(k) if group[i] == g]].sum() / total for g in set(group)}
        splittable = [g for g in share if share[g] > MAX_SHARE and group.count(g) > 1]
        if not splittable:
            break
        largest = max(splittable, key=lambda g: share[g])
        members = [i for i in range(k) if group[i] == largest]
        halves = _split_in_two(unit[members], sizes[members])
        new = max(group) + 1
        for i, half in zip(members, halves, strict=True):
            if half:
                group[i] = new
    paper_sizes: dict[int, int] = {}
    for i, g in enumerate(group):
        paper_sizes[g] = paper_sizes.get(g, 0) + int(sizes[i])
    order = {g: n for n, g in enumerate(sorted(paper_sizes, key=lambda g: (-paper_sizes[g], g)))}
    return [order[g] for g in group]
