"""Work a server does by itself now and then (``paperscope serve --sync-every 24h``).

:class:`Every` runs one job in a background thread whenever it is due. When it is due is asked
of the job's own record (the time of the last successful sync, kept in the papers database), not
of this process's memory, so a restart does not run it again early, and several server processes
(``--workers``) or a cron job beside them agree; the job itself takes a lock so only one runs. A
failure never reaches the server: it is logged (each distinct failure once in a row) and the job
is tried again after a doubling wait, at most the period.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

CHECK_SECONDS = 60.0
"""How often a waiting schedule looks again whether its job became due (another process may
have run it meanwhile)."""


class Every:
    """Run ``job`` when ``due()`` (seconds until the next run; <= 0: now) says so."""

    def __init__(
        self,
        name: str,
        period: float,
        job: Callable[[], None],
        due: Callable[[], float],
        first_retry: float = 60.0,
        check_seconds: float = CHECK_SECONDS,
    ) -> None:
        self.name = name
        self.period = period
        self._job = job
        self._due = due
        self._first_retry = first_retry
        self._check = check_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"schedule-{name}", daemon=True)
        self.failures = 0
        """Failed runs in a row (0 after a success)."""
        self._last_error: str | None = None

    def start(self) -> Every:
        self._thread.start()
        log.info("%s every %.0f s", self.name, self.period)
        return self

    def stop(self, wait: float = 1.0) -> None:
        """Stop waiting; a run in progress finishes on its own (the thread is a daemon)."""
        self._stop.set()
        self._thread.join(wait)

    def _loop(self) -> None:
        retry_at = 0.0
        while not self._stop.is_set():
            try:
                wait = max(self._due(), retry_at - time.monotonic())
            except Exception as err:  # noqa: BLE001 - an unreadable record: try later
                self._failed(err)
                wait = self._check
            if wait > 0:
                self._stop.wait(min(wait, self._check))
                continue
            try:
                self._job()
            except Exception as err:  # noqa: BLE001 - the server stays up whatever failed
                retry_at = time.monotonic() + self._failed(err)
            else:  # due again after the period, or (another process at it) at the next check
                self.failures, self._last_error = 0, None
                retry_at = time.monotonic() + self._check

    def _failed(self, err: Exception) -> float:
        """Log a failure (once while it repeats); the wait before trying again."""
        self.failures += 1
        retry = min(self._first_retry * 2.0 ** (self.failures - 1), self.period)
        message = str(err) or type(err).__name__
        if message != self._last_error:
            log.error("%s failed: %s (trying again in %.0f s)", self.name, message, retry)
            self._last_error = message
        else:
            log.debug("%s failed again: %s", self.name, message)
        return retry
