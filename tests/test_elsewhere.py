"""service.elsewhere: work run in a spawned child gives what it gives in this process."""

from __future__ import annotations

import pytest

from service.elsewhere import start_elsewhere
from service.topics.labels import count_terms

TEXTS = [
    "offline reinforcement learning from logged data",
    "reinforcement learning for robot control",
    "graph neural networks for molecules",
    "molecular property prediction with graph neural networks",
]


def test_terms_counted_elsewhere_equal_terms_counted_here() -> None:
    here = count_terms(TEXTS, 0)
    there = start_elsewhere(count_terms, TEXTS, 0)()
    assert here is not None and there is not None
    assert list(there.vocabulary) == list(here.vocabulary)
    assert (there.per_paper != here.per_paper).nnz == 0


def test_a_childs_error_reaches_the_caller() -> None:
    wait = start_elsewhere(int, "not a number")
    with pytest.raises(ValueError, match="not a number"):
        wait()
