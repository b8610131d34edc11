"""Which build the server answers from, and switching to a new one without a restart.

A :class:`BuildWatcher` holds the engine of the published build. A background thread looks at
``builds/CURRENT`` every ``reload_seconds``; when it names another build, the new engine is opened
first and then swapped in with one assignment, so every request is answered by one whole build,
old or new (requests already running keep their engine; it is freed when they finish).
If the published build is damaged (a missing file, or one that fails its checksum), the newest
older build that loads is served instead, with a ``note``. Papers deleted from the store since
the build are hidden, papers added live are served again and topic edits
(:mod:`service.query.curation`) applied; the same check, on every look at
the pointer, keeps several server processes in step. While the papers database is damaged or
unreadable nothing is served (503, naming it): deleted papers would come back.
"""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

import faiss
from threadpoolctl import ThreadpoolController

from service.artifacts import CURRENT, current_build_dir
from service.embed.backends import Embedder
from service.embed.passages import NO_WINDOWS, Windowing
from service.errors import BuildDamaged, DatabaseDamaged, PaperscopeError, StorageError
from service.query import curation
from service.query.engine import Engine
from service.query.live import LiveAdditions
from service.store import Store

log = logging.getLogger(__name__)


def one_thread_per_query() -> None:
    """Matrix products and index searches of this (serving) process on one thread each:
    requests are the parallelism. OpenBLAS and OpenMP otherwise wake a team of threads for
    every query's product of one vector with a few thousand rows; on two busy cores that cost
    8 ms of CPU a filtered like-this instead of 0.4 ms."""
    # OpenBLAS only (numpy's, scipy's, faiss's), not the embedding runtimes' own threads
    ThreadpoolController().select(internal_api="openblas").limit(limits=1)
    faiss.omp_set_num_threads(1)


class BuildWatcher:
    def __init__(
        self,
        builds_dir: Path,
        embedder: Embedder,
        reload_seconds: float,
        db_path: Path | None = None,
        windowing: Windowing = NO_WINDOWS,
    ) -> None:
        self.builds_dir = builds_dir
        self.db_path = db_path
        self.embedder = embedder
        self.reload_seconds = reload_seconds
        self.live = LiveAdditions(db_path, embedder, windowing) if db_path is not None else None
        self.engine: Engine | None = None
        """The engine answering requests; None while nothing can be served (see reason)."""
        self.reason = "starting up"
        self.note: str | None = None
        self._loaded: Engine | None = None
        """The engine of the build loaded last, held back while the database is unusable."""
        self._loaded_note: str | None = None
        self._pointer: str | None = None
        self._store_version: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _read_pointer(self) -> str | None:
        try:
            return (self.builds_dir / CURRENT).read_text(encoding="utf-8").strip()
        except OSError:
            return None

    def refresh(self) -> bool:
        """Load the published build if it changed and follow the papers database; returns
        whether the engine answering requests was replaced."""
        pointer = self._read_pointer()
        build = current_build_dir(self.builds_dir)
        if pointer is None or build is None:
            self.reason = f"no build in {self.builds_dir.parent} yet; run: paperscope build"
            return False
        if pointer != self._pointer:  # else: already loaded, or it already failed to load
            self._pointer = pointer
            if self._load(build):
                self._store_version = None
        loaded = self._loaded
        if loaded is None:
            return False
        try:
            self._follow_store(loaded)
        except StorageError as err:  # a full disk: keep answering from what was followed
            if self.engine is loaded and self._store_version is not None:
                if self.reason != err.message:  # once, not every reload_seconds
                    log.error("cannot follow the papers database: %s", err.message)
                self.reason = err.message
                return False
            self._not_serving(err.message)
            return False
        except DatabaseDamaged as err:  # deleted papers would come back: answer nothing
            self._not_serving(err.message)
            return False
        if self.engine is loaded:
            return False
        self.engine, self.note = loaded, self._loaded_note  # one assignment: old or new, whole
        # The engine's many long-lived objects (ids, titles, categories) would otherwise be
        # walked by every full garbage collection: pauses of tens of ms in the latency tail.
        # Unfrozen first, so the engine replaced now can be collected.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info(
            "serving build %s (%d papers)%s",
            loaded.build_dir.name,
            loaded.size,
            f"; {self.note}" if self.note else "",
        )
        return True

    def _not_serving(self, reason: str) -> None:
        if self.engine is not None or self.reason != reason:
            log.error("not serving: %s", reason)
        self.engine, self.reason = None, reason

    def _load(self, build: Path) -> bool:
        """Open the published build (or, if it is damaged, the newest older one that loads);
        False, with the reason set, when neither can be served."""
        try:
            engine, note = Engine(build, self.embedder), None
        except BuildDamaged as err:
            log.error("published build %s is damaged: %s", build.name, err.message)
            fallback = self._newest_loadable(exclude=build)
            if fallback is None:
                self.reason = err.message
                return False
            engine = fallback
            note = f"serving {fallback.build_dir.name}: the published build is damaged ({err})"
        except PaperscopeError as err:
            log.error("cannot serve build %s: %s", build.name, err.message)
            self.reason = err.message
            return False
        engine.view.row_index.get()  # the filters' index (0.2 s at 75k), not on a request
        unverified = engine.view.unverified
        if unverified:
            log.warning("%s", unverified)
        self._loaded = engine
        self._loaded_note = "; ".join(n for n in (note, unverified) if n) or None
        return True

    def _follow_store(self, engine: Engine) -> None:
        """Mirror the store's deletions and live additions when they changed since last look:
        those made before a restart, and those made through other server processes."""
        if self.db_path is None or not self.db_path.exists():
            return
        with Store(self.db_path) as store:
            if self._store_version is None:  # once per build loaded: is the database sound?
                store.ensure_sound()
            version = store.serving_version()
            if version == self._store_version:
                return
            stored = store.ids()
        served = [*engine.paper_ids, *(p.id for p in engine.live.papers)]
        gone = [paper_id for paper_id in served if paper_id not in stored]
        hidden = engine.hide(gone)
        if hidden:
            log.info("hiding %d papers deleted since build %s", hidden, engine.build_dir.name)
        if self.live is not None:
            try:
                self.live.restore(engine)
            except (DatabaseDamaged, StorageError):
                raise
            except (PaperscopeError, OSError, ValueError) as err:
                log.error("could not restore papers added live: %s", err)
        curation.apply(engine, self.db_path)  # topic edits, made here or by another process
        self._store_version = version

    def _newest_loadable(self, exclude: Path) -> Engine | None:
        candidates = sorted(
            (p for p in self.builds_dir.iterdir() if p.is_dir() and not p.name.startswith(".")),
            reverse=True,
        )
        for folder in candidates:
            if folder == exclude:
                continue
            try:
                return Engine(folder, self.embedder)
            except PaperscopeError as err:
                log.warning("fallback build %s unusable: %s", folder.name, err.message)
        return None

    def start(self) -> None:
        self.refresh()
        one_thread_per_query()  # after loading: the libraries it set off are loaded by then
        if self.reload_seconds > 0:
            self._thread = threading.Thread(target=self._run, name="build-watcher", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.reload_seconds):
            try:
                self.refresh()
            except Exception:
                log.exception("build watcher: refresh failed; still serving the previous build")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
