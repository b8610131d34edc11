"""The map page's data: every visible paper's position, topic (with outlier flag and
confidence), title, date and category, plus
topic and group centres, columnar (one array per field) so 75k papers fit in a few MB.

The exported map (``paperscope export-map``) also carries each paper's abstract and nearest
neighbours, indexed like the map's arrays (build papers and live additions alike)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from service.query.view import BuildView
from service.schemas import MapGroup, MapPoints, MapTopic

NEIGHBOUR_BATCH = 4096


def _centre(coords: npt.NDArray[np.float32], members: list[int]) -> tuple[float, float]:
    median = np.median(coords[members], axis=0)
    return round(float(median[0]), 5), round(float(median[1]), 5)


def drawn_rows(view: BuildView) -> list[int]:
    """The rows the map draws, in the order of its arrays: the build's, then live additions,
    hidden (deleted or replaced) ones left out."""
    return view.visible(list(range(view.size + len(view.live.papers))))


def map_points(view: BuildView) -> MapPoints:
    """Everything the map page draws, for the view as it is now."""
    live = view.live
    dates = view.all_dates()
    categories = view.all_categories()
    firsts: list[str | None] = [c[0] if c else None for c in categories]
    ids = view.ids + [p.id for p in live.papers]
    titles = view.titles + [p.title for p in live.papers]
    coords = np.vstack([view.coords, live.coords]) if live.papers else view.coords
    assignments = np.concatenate([view.assignments, live.topics])
    outliers, confidence = view.all_outliers(), view.all_confidence()
    keep = drawn_rows(view)
    primary = [firsts[r] for r in keep]
    names = sorted({c for c in primary if c})
    index_of = {name: i for i, name in enumerate(names)}
    group_of = {child: g.id for g in view.groups for child in g.children}
    members_of = {t.id: view.members(t) for t in view.topics.values()}

    topics = []
    for topic in view.topics.values():
        visible = members_of[topic.id]
        if not visible:
            continue
        x, y = _centre(coords, visible)
        topics.append(
            MapTopic(
                id=topic.id,
                label=topic.label,
                name=topic.name or topic.label,
                keywords=topic.keywords,
                size=len(visible),
                x=x,
                y=y,
                group=group_of.get(topic.id),
                user_named=topic.id in view.user_named,
            )
        )
    groups = []
    for group in view.groups:
        members = [m for c in group.children for m in members_of[c]]
        if not members:
            continue
        x, y = _centre(coords, members)
        groups.append(
            MapGroup(
                id=group.id,
                label=group.label,
                name=group.name or group.label,
                keywords=group.keywords,
                size=len(members),
                x=x,
                y=y,
                children=group.children,
            )
        )
    return MapPoints(
        ids=[ids[r] for r in keep],
        x=[round(float(v), 5) for v in coords[keep, 0]],
        y=[round(float(v), 5) for v in coords[keep, 1]],
        topic=[int(t) for t in assignments[keep]],
        title=[titles[r] for r in keep],
        date=[dates[r] for r in keep],
        category=[index_of[c] if c else -1 for c in primary],
        categories=names,
        outlier=[bool(v) for v in outliers[keep]],
        confidence=[round(float(v), 3) for v in confidence[keep]],
        topics=sorted(topics, key=lambda t: t.id),
        groups=groups,
    )


def drawn_neighbours(view: BuildView, rows: list[int], k: int) -> list[list[tuple[int, float]]]:
    """For each drawn row, its k nearest other drawn papers as (position in ``rows``, score):
    the build's index merged with the live additions, hidden rows skipped."""
    position = {row: i for i, row in enumerate(rows)}
    wanted = view.candidates(k) + 1
    found: list[list[tuple[int, float]]] = []
    for start in range(0, len(rows), NEIGHBOUR_BATCH):
        block = rows[start : start + NEIGHBOUR_BATCH]
        scores, nearest = view.dense(view.vectors_at(block), wanted)
        for own, row_scores, row_ids in zip(block, scores.tolist(), nearest.tolist(), strict=True):
            found.append(
                [
                    (position[r], round(s, 4))
                    for s, r in zip(row_scores, row_ids, strict=True)
                    if r != own and r in position
                ][:k]
            )
    return found


def drawn_abstracts(view: BuildView, rows: list[int]) -> list[str]:
    """The abstract of each drawn row (the build's from its snapshot, live ones from memory)."""
    built = view.papers.abstracts()
    live = view.live.papers
    return [built[r] if r < view.size else live[r - view.size].abstract for r in rows]
