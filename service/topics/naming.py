"""What makes a topic name one a reader can tell apart from the others (issue #25).

- **Near-duplicates** (:func:`near_duplicate`): two names are near-duplicates when the word
  roots of one are all among the roots of the other. A name's roots are its words (hyphenated
  ones split: ``gravitational-wave`` is two words) stemmed by the Snowball English stemmer, then
  stripped of a derivational ending (``-ari``, ``-ic``, ``-al``, ...) so that ``cosmology`` and
  ``cosmological``, or ``astronomy`` and ``astronomical``, share a root. So ``large language
  models`` / ``language model``, ``generative`` / ``generative ai``, ``gravitational wave`` /
  ``gravitational-wave detectors`` are near-duplicates; ``dark matter halos`` / ``dark matter
  detection`` are not (each has a root the other lacks). No two names of one level are
  near-duplicates; a topic's name may refine its group's (more roots) but never repeat it.
- **Noun phrases** (:func:`is_noun_phrase`): without a tagger (none is installed, and nothing
  can be downloaded at run time) a name whose last word has an adjective's ending (``-al``,
  ``-ic``, ``-ive``, ``-ous``, ``-ary``, ``-ed``, ...) is taken for a lone or dangling adjective
  (``inflationary``, ``deep neural``, ``pre-trained``), unless the word is one of the nouns with
  such an ending that papers use (:data:`NOUNS`: ``retrieval``, ``signal``, ``archive``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

import Stemmer

_STEMMER = Stemmer.Stemmer("english")
_WORDS = re.compile(r"[^\W_]+")
_DERIVED = ("ionari", "ari", "ic", "al", "i")
"""Endings a Snowball stem may still carry that only change the word class (``inflationari``,
``astronomi``, ``cosmic``); stripped while at least :data:`_ROOT` letters remain."""
_ROOT = 4
_CLOSE = 2
"""Two roots match when equal or when one extends the other by at most this many letters
(``financi`` / ``financ``)."""

ADJECTIVE_ENDINGS = (
    "al",
    "ic",
    "iac",
    "ive",
    "ous",
    "ary",
    "ar",
    "ful",
    "less",
    "able",
    "ible",
    "ed",
    "ian",
    "ent",
)
"""Endings of adjectives (``solar``, ``efficient``, ``cardiac``); words of four letters or fewer
are let be (``star``, ``bed``), and so are ``-eed`` and ``-ment`` (``speed``, ``alignment``)."""
NOUNS = frozenset(
    """
    signal signals retrieval proposal interval material potential terminal manual journal
    arrival removal approval survival tutorial trial animal capital hospital portal rival
    logic music topic traffic clinic epidemic rhetoric arithmetic zodiac maniac
    archive objective incentive alternative derivative initiative perspective narrative
    directive primitive representative executive detective motive
    dictionary summary library boundary vocabulary glossary commentary itinerary secretary
    anniversary diary salary radar lidar sonar calendar grammar seminar scholar pillar dollar
    avatar scalar table variable cable speed seed feed need embed
    agent student patient client component event content parent talent tangent percent
    gradient coefficient ingredient opponent respondent resident incident accident exponent
    constituent continent
    """.split()
)
"""Words with an adjective's ending that are nouns in papers (a name may end in one)."""
ADJECTIVES = frozenset("deep large small high low robust fast open multi real new".split())
"""Common adjectives without a telling ending."""


@lru_cache(maxsize=65_536)
def roots(name: str) -> frozenset[str]:
    """The word roots of a name (see the module docstring)."""
    stems = _STEMMER.stemWords(_WORDS.findall(name.lower()))
    return frozenset(_strip_derivation(stem) for stem in stems if stem)


def _strip_derivation(stem: str) -> str:
    for ending in _DERIVED:
        if stem.endswith(ending) and len(stem) - len(ending) >= _ROOT:
            return _strip_derivation(stem[: -len(ending)])
    return stem


def _same_root(a: str, b: str) -> bool:
    short, long_ = sorted((a, b), key=len)
    return a == b or (
        len(short) >= _ROOT and long_.startswith(short) and len(long_) - len(short) <= _CLOSE
    )


def covered(a: str, b: str) -> bool:
    """Whether every root of ``a`` is a root of ``b``: ``a`` says nothing ``b`` does not."""
    first, second = roots(a), roots(b)
    if not first:
        return a.strip().lower() == b.strip().lower()
    return all(any(_same_root(x, y) for y in second) for x in first)


def near_duplicate(a: str, b: str) -> bool:
    """Whether every root of one name is a root of the other (same names included)."""
    return covered(a, b) or covered(b, a)


def clashes(name: str, taken: Iterable[str], parents: Iterable[str] = ()) -> bool:
    """Whether ``name`` is a near-duplicate of a name in ``taken``, or says no more than one of
    ``parents`` (a topic may refine its group's name, ``gravitational-wave detectors`` under
    ``gravitational waves``, never repeat or widen it)."""
    return any(near_duplicate(name, other) for other in taken) or any(
        covered(name, parent) for parent in parents
    )


def is_noun_phrase(name: str) -> bool:
    """Whether a name ends in a noun, by the heuristic of the module docstring."""
    words = _WORDS.findall(name.lower())
    if not words:
        return False
    last = words[-1]
    if last in NOUNS or len(last) <= 4:
        return last not in ADJECTIVES
    if last.endswith(("eed", "ment")):
        return True
    return not last.endswith(ADJECTIVE_ENDINGS)


def named_like_parent(pairs: Iterable[tuple[str, str]]) -> int:
    """How many (topic name, its group's name) pairs have a topic name that says no more than
    its group's."""
    return sum(1 for name, parent in pairs if covered(name, parent))


def duplicate_counts(names: list[str]) -> tuple[int, int, int]:
    """(names that repeat an earlier one exactly, names that are near-duplicates of an earlier
    one but not the same, single-word names) among the names of one level."""
    exact = near = 0
    for i, name in enumerate(names):
        earlier = names[:i]
        if name.strip().lower() in {e.strip().lower() for e in earlier}:
            exact += 1
        elif clashes(name, earlier):
            near += 1
    single = sum(1 for name in names if len(name.split()) == 1)
    return exact, near, single
