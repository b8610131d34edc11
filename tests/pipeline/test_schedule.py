"""The background schedule (service/pipeline/schedule.py) with a real thread and real jobs."""

from __future__ import annotations

import logging
import threading

import pytest

from service.pipeline.schedule import Every


class _Job:
    """Fails ``failures`` times with the same error, then succeeds; counts its runs."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.runs = 0
        self.succeeded = threading.Event()

    def __call__(self) -> None:
        self.runs += 1
        if self.runs <= self.failures:
            raise RuntimeError("endpoint unreachable")
        self.succeeded.set()


def test_a_failing_job_is_retried_logged_once_and_never_raises(
    caplog: pytest.LogCaptureFixture,
) -> None:
    job = _Job(failures=3)
    schedule = Every("sync", 3600, job, lambda: 0.0, first_retry=0.01, check_seconds=0.05)
    with caplog.at_level(logging.DEBUG, logger="service.pipeline.schedule"):
        schedule.start()
        try:
            assert job.succeeded.wait(60)
        finally:
            schedule.stop()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "endpoint unreachable" in errors[0].getMessage()
    assert job.runs == 4 and schedule.failures == 0


def test_a_job_not_due_does_not_run() -> None:
    job = _Job(failures=0)
    schedule = Every("sync", 3600, job, lambda: 3600.0, check_seconds=0.01).start()
    try:
        assert not job.succeeded.wait(0.3)
    finally:
        schedule.stop()
    assert job.runs == 0


def test_a_job_runs_when_its_record_says_it_is_due() -> None:
    job = _Job(failures=0)
    due = [3600.0]
    schedule = Every("sync", 3600, job, lambda: due[0], check_seconds=0.01).start()
    try:
        due[0] = 0.0  # e.g. the last sync, kept in the database, is now old enough
        assert job.succeeded.wait(60)
    finally:
        schedule.stop()
