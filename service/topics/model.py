"""What a topic fit produces: topics (id, label, keywords, members), the coarse groups above
them, and HDBSCAN's state for placing papers later. Ids are ordered by size: topic 0 is the
largest; -1 (:data:`~service.schemas.NOISE_TOPIC`) holds the unclustered papers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from service.schemas import NOISE_TOPIC, TopicParams

NOISE_LABEL = "unclustered"
REPRESENTATIVES = 3


def outliers_or_noise(
    topics: npt.NDArray[np.int32], outliers: npt.NDArray[np.bool_] | None
) -> npt.NDArray[np.bool_]:
    """The outlier flags, or where none were recorded (builds made before outlier assignment,
    papers added without them) the noise topic's papers."""
    return topics == NOISE_TOPIC if outliers is None else outliers


def confidence_or_sure(
    topics: npt.NDArray[np.int32], confidence: npt.NDArray[np.float32] | None
) -> npt.NDArray[np.float32]:
    """The confidences, or where none were recorded: 1 for a paper in a topic, 0 for noise."""
    return (topics != NOISE_TOPIC).astype(np.float32) if confidence is None else confidence


def merged_rows(
    n: int, parts: list[tuple[npt.NDArray[np.int64], npt.ArrayLike]], dtype: npt.DTypeLike
) -> npt.NDArray[Any]:
    """One array of ``n`` rows from parts that each fill some rows: ``(rows, values)``, e.g. a
    sample's fitted topics and the rest's placed ones, or a base build's kept rows and the
    placed new ones. Trailing dimensions come from the first part's values."""
    first = np.asarray(parts[0][1])
    out = np.empty((n, *first.shape[1:]), dtype=dtype)
    for rows, values in parts:
        out[rows] = values
    return out


@dataclass
class Topic:
    id: int
    label: str
    keywords: list[str]
    members: list[int] = field(repr=False)
    """Row numbers, closest to the topic centre (in embedding space) first."""
    name: str = ""
    """A short name (1-4 words, see :func:`service.topics.labels.topic_labels`)."""

    @property
    def size(self) -> int:
        return len(self.members)


@dataclass
class TopicGroup:
    """A coarse topic: fine topics merged by the similarity of their centroids."""

    id: int
    label: str
    keywords: list[str]
    children: list[int]
    name: str = ""


@dataclass
class TopicModel:
    assignments: npt.NDArray[np.int32]
    probabilities: npt.NDArray[np.float32]
    topics: list[Topic]
    params: TopicParams
    clusterer: Any = field(default=None, repr=False)
    """The fitted ``hdbscan.HDBSCAN`` (with prediction data), or None for tiny corpora."""
    hdbscan_to_topic: dict[int, int] = field(default_factory=dict)
    """HDBSCAN's own label -> topic id (ids are renumbered by size)."""
    groups: list[TopicGroup] = field(default_factory=list)
    """The coarse level of the topic hierarchy (what the map shows when zoomed out)."""
    reduced: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    """The UMAP clustering space HDBSCAN ran in (None for tiny corpora): kept so papers added
    later can be given a position in it."""
    outliers: npt.NDArray[np.bool_] | None = field(default=None, repr=False)
    """Papers HDBSCAN (or the placement vote) called noise; assigned a topic all the same
    unless ``params.assign_outliers`` is off. None: no paper is an outlier."""
    confidence: npt.NDArray[np.float32] | None = field(default=None, repr=False)
    """Each paper's confidence in its topic (0-1): the share of its neighbours' vote."""
