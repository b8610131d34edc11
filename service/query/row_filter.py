"""Which rows a filter lets through, as numpy masks: the filtered routes' first step.

A per-row Python test cost tens of milliseconds a request at 75k papers. Here the build's rows
are indexed once (the first time a filter is used): dates as one fixed-width string array
(compared like the strings they are), and for each category and each category prefix (``cs``
for every ``cs.*``) the sorted rows holding it. A filter is then a few vectorised operations
over one boolean array of the rows. Live additions (few) are tested one by one and appended.
"""

from __future__ import annotations

import hashlib
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Collection, Sequence

import numpy as np
import numpy.typing as npt

from service.search.shortlist import HalfPrecisionRows

Rows = npt.NDArray[np.int64]


class RowIndex:
    """Dates and categories of the build's own rows, for vectorised filtering (topics are
    given with each filter: curation changes them while a build is served)."""

    def __init__(self, dates: Sequence[str | None], categories: Sequence[Sequence[str]]) -> None:
        self.size = len(dates)
        self.has_date = np.array([d is not None for d in dates], dtype=np.bool_)
        self.dates = np.array([d or "" for d in dates], dtype=np.str_)
        members: dict[str, list[int]] = {}
        for row, names in enumerate(categories):
            for name in set(names) | {n.split(".")[0] for n in names}:
                members.setdefault(name, []).append(row)
        self.members = {name: np.asarray(rows, dtype=np.int64) for name, rows in members.items()}
        """A category or prefix -> the rows holding it (rows ascending)."""

    def mask(
        self,
        since: str | None,
        until: str | None,
        categories: Collection[str],
        topics: set[int],
        assignments: npt.NDArray[np.integer],
    ) -> npt.NDArray[np.bool_]:
        """Build rows matching every given condition, topics as in ``assignments`` (the
        build's rows' topics now); hidden rows not removed here."""
        keep = np.ones(self.size, dtype=np.bool_)
        if since or until:
            keep &= self.has_date
        if since:
            keep &= self.dates >= since
        if until:
            keep &= self.dates <= until
        if topics:
            keep &= np.isin(assignments, np.fromiter(topics, dtype=np.int64))
        if categories:
            in_any = np.zeros(self.size, dtype=np.bool_)
            for name in categories:
                in_any[self.members.get(name, np.zeros(0, dtype=np.int64))] = True
            keep &= in_any
        return keep


def matches(
    day: str | None,
    paper_categories: Sequence[str],
    topic: int,
    since: str | None,
    until: str | None,
    categories: Collection[str],
    topics: set[int],
) -> bool:
    """One paper against the filter (the same rules as :meth:`RowIndex.mask`), for live rows."""
    if (since or until) and day is None:
        return False
    if since and day is not None and day < since:
        return False
    if until and day is not None and day > until:
        return False
    if topics and topic not in topics:
        return False
    return not categories or any(
        c in categories or c.split(".")[0] in categories for c in paper_categories
    )


class LazyRowIndex:
    """A :class:`RowIndex` made on first use (a command that never filters never pays for
    it; a server makes it as it loads a build)."""

    def __init__(self, dates: Sequence[str | None], categories: Sequence[Sequence[str]]) -> None:
        self._args = (dates, categories)
        self._index: RowIndex | None = None
        self._lock = threading.Lock()

    def get(self) -> RowIndex:
        index = self._index
        if index is None:
            with self._lock:
                if self._index is None:
                    self._index = RowIndex(*self._args)
                index = self._index
        return index


GATHERED_BYTES = 128 * 1024 * 1024
"""Memory the gathered vectors of recent filters may hold (per server process)."""

DIGESTS_KEPT = 256
"""Read-only row arrays whose hash is remembered."""

Gathered = npt.NDArray[np.float32] | HalfPrecisionRows


class GatheredVectors:
    """The build's vectors of a filter's rows, copied together once (a sub-index made on
    demand): a repeated filter (a category, a date range) scores them in one product without
    gathering them from the whole matrix again, in float32 (:meth:`get`) or as float16 for
    shortlists (:meth:`half`). Keyed by the rows themselves, so hidden papers or live additions
    make a new entry; least recently used entries go past ``budget`` bytes."""

    def __init__(self, budget: int = GATHERED_BYTES) -> None:
        self.budget = budget
        self._entries: OrderedDict[bytes, Gathered] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._digests: dict[int, tuple[weakref.ref[Rows], bytes]] = {}

    def get(self, rows: Rows, vectors: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """``vectors[rows]`` as one contiguous matrix, from the cache when it holds it."""
        found = self._kept(b"f32", rows, lambda: np.ascontiguousarray(vectors[rows], np.float32))
        assert isinstance(found, np.ndarray)
        return found

    def half(self, rows: Rows, vectors: npt.NDArray[np.float32]) -> HalfPrecisionRows:
        """``vectors[rows]`` in float16, from the cache when it holds it."""
        found = self._kept(b"f16", rows, lambda: HalfPrecisionRows(vectors[rows]))
        assert isinstance(found, HalfPrecisionRows)
        return found

    def _kept(self, kind: bytes, rows: Rows, make: Callable[[], Gathered]) -> Gathered:
        key = kind + self._digest(rows)
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                return found
        made = make()
        if made.nbytes > self.budget:
            return made
        with self._lock:
            if key not in self._entries:
                self._entries[key] = made
                self._bytes += made.nbytes
            while self._bytes > self.budget:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= dropped.nbytes
        return made

    def _digest(self, rows: Rows) -> bytes:
        """The rows' hash; remembered for a read-only array (the rows of a filter, kept by the
        view and asked again and again), whose content cannot change under it."""
        if rows.flags.writeable:
            return hashlib.blake2b(rows.tobytes(), digest_size=16).digest()
        with self._lock:
            known = self._digests.get(id(rows))
        if known is not None and known[0]() is rows:
            return known[1]
        digest = hashlib.blake2b(rows.tobytes(), digest_size=16).digest()
        with self._lock:
            if len(self._digests) >= DIGESTS_KEPT:
                self._digests.clear()
            self._digests[id(rows)] = (weakref.ref(rows), digest)
        return digest
