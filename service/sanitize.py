"""Odd and hostile text made harmless: what every way in (ingest files, the API) cleans and
checks, and what outputs whose formats cannot hold every character (XML) strip.

Text in: Unicode NFC, line ends as ``\\n``, no NUL or other control characters (tab and newline
kept), no lone surrogates. Bidirectional controls (U+202E and kin) are kept: they are part of
right-to-left text, and every output quotes or escapes them.

Dates in: one stored form, ``YYYY-MM-DD``, a real day between :data:`EARLIEST` and a year from
today; see :func:`parse_date` for the forms taken.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
"""NUL, C0 controls but tab, newline and carriage return, DEL, C1 controls, lone surrogates
(JSON's ``\\ud800`` escapes make them; UTF-8 cannot) and the noncharacters U+FFFE, U+FFFF."""
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
"""Characters XML 1.0 cannot hold, even escaped."""

EARLIEST = date(1600, 1, 1)
"""The oldest date a paper may have: before the first scientific journals (1665)."""
AHEAD = timedelta(days=366)
"""How far after today a paper may be dated (announced papers, conference dates)."""
DATE_FORMS = "YYYY, YYYY-MM, YYYY-MM-DD, an ISO datetime or an RFC 2822 date"

_ISO_DAY = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")
_ISO_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*")
_RFC_2822 = re.compile(r"(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})(\s+\S.*)?")
_MONTHS = {m: i for i, m in enumerate("jan feb mar apr may jun jul aug sep oct nov dec".split(), 1)}


def clean_text(text: str) -> str:
    """``text`` as stored: NFC, ``\\r\\n`` and ``\\r`` as ``\\n``, control characters removed."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return unicodedata.normalize("NFC", _CONTROL.sub("", text))


def xml_text(text: str) -> str:
    """``text`` without the characters XML 1.0 cannot hold (most control characters, NUL)."""
    return _NOT_XML.sub("", text)


def latest_date() -> date:
    return date.today() + AHEAD


def parse_date(value: object) -> str | None:
    """A paper's date as stored, ``YYYY-MM-DD``; None when none is given (None, blank).

    Takes ``YYYY`` (stored as its 1 January), ``YYYY-MM`` (its first day), ``YYYY-MM-DD``, ISO
    datetimes (the day as written, in whatever zone is given), RFC 2822 dates as in arXiv's
    versions (``Mon, 2 Apr 2007 19:18:42 GMT``), Python dates and integer years. Anything else,
    a day that does not exist, or one outside :data:`EARLIEST` .. a year from today: ValueError
    naming the value. Ambiguous forms (``31/12/2025``, ``12/31/2025``) are refused, not guessed.
    """
    day = _to_date(value)
    if day is None:
        return None
    if not EARLIEST <= day <= latest_date():
        raise ValueError(
            f"date {day.isoformat()} is outside {EARLIEST.isoformat()} .. a year from today"
        )
    return day.isoformat()


def _to_date(value: object) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValueError(f"date must be text, got {type(value).__name__}")
    text = value.strip()
    if not text:
        return None
    shown = repr(text if len(text) <= 40 else text[:40] + "…")
    try:
        if day := _ISO_DAY.fullmatch(text):
            year, month, mday = day.groups()
            return date(int(year), int(month or 1), int(mday or 1))
        if _ISO_TIME.fullmatch(text):
            return datetime.fromisoformat(text).date()
        if rfc := _RFC_2822.fullmatch(text):
            mday, month, year, clock = rfc.groups()
            if clock:  # checked, not used: the day as written, as for ISO datetimes
                parsedate_to_datetime(text)
            return date(int(year), _MONTHS.get(month.lower(), 0), int(mday))
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"date {shown} is not a real calendar date") from None
    raise ValueError(f"date {shown} is not a date; use {DATE_FORMS}")


def month_index(day: str | None, latest: date) -> int | None:
    """A stored date's month counted from year 0 (year * 12 + month - 1); None when undated or
    not a date :func:`parse_date` would store up to ``latest`` (data stored before dates were
    checked), so bad data can never stretch a range of months."""
    if not day or len(day) < 7 or day[4] != "-" or not (day[:4] + day[5:7]).isdigit():
        return None
    year, month = int(day[:4]), int(day[5:7])
    if not (1 <= month <= 12 and EARLIEST.year <= year):
        return None
    index = year * 12 + month - 1
    return index if index <= latest.year * 12 + latest.month - 1 else None


def month_text(index: int) -> str:
    """The ``YYYY-MM`` of a :func:`month_index`."""
    return f"{index // 12:04d}-{index % 12 + 1:02d}"
