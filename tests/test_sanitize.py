"""Text and dates on the way in (clean_text, parse_date) and text XML can hold (xml_text)."""

from __future__ import annotations

import re
import unicodedata
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, time, timedelta, timezone
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.sanitize import (
    EARLIEST,
    clean_text,
    latest_date,
    month_index,
    month_text,
    parse_date,
    xml_text,
)

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
any_text = st.text(st.characters(exclude_categories=()))  # every code point, surrogates too
valid_days = st.dates(min_value=EARLIEST, max_value=date.today())


@given(any_text)
def test_clean_text_leaves_no_control_characters_and_is_stable(text: str) -> None:
    cleaned = clean_text(text)
    assert not CONTROL.search(cleaned)
    assert "\r" not in cleaned
    assert unicodedata.is_normalized("NFC", cleaned)
    assert clean_text(cleaned) == cleaned
    cleaned.encode("utf-8")  # storable: no lone surrogates


def test_clean_text_keeps_what_text_means() -> None:
    assert clean_text("a\tb\nc\r\nd\re") == "a\tb\nc\nd\ne"
    assert clean_text("ti\x00tle\x01\x1b[31m\x85") == "title[31m"
    assert clean_text("\u202eevil\u202c <script>") == "\u202eevil\u202c <script>"  # kept
    assert clean_text("e\u0301") == "\u00e9"  # NFC


@given(any_text)
def test_xml_text_always_makes_well_formed_xml(text: str) -> None:
    safe = xml_text(text).replace("&", "&amp;").replace("<", "&lt;")
    element = ET.fromstring(f"<t>{safe}</t>")  # noqa: S314 - our own document
    assert (element.text or "") == xml_text(text).replace("\r\n", "\n").replace("\r", "\n")


@given(valid_days)
def test_every_form_of_a_day_is_stored_as_that_day(day: date) -> None:
    iso = day.isoformat()
    assert parse_date(iso) == iso
    assert parse_date(f" {iso} ") == iso
    assert parse_date(day) == iso
    assert parse_date(datetime.combine(day, time(12))) == iso
    assert parse_date(f"{iso}T23:59:59+14:00") == iso  # the day as written, whatever the zone
    assert parse_date(f"{iso}T00:00:00Z") == iso
    assert parse_date(f"{iso} 08:30:00.123456-05:00") == iso
    when = datetime.combine(day, time(19, 18, 42), tzinfo=UTC)
    assert parse_date(format_datetime(when, usegmt=True)) == iso  # arXiv's versions
    assert parse_date(iso[:7]) == iso[:7] + "-01"
    assert parse_date(iso[:4]) == iso[:4] + "-01-01"
    assert parse_date(day.year) == iso[:4] + "-01-01"


def test_arxiv_and_odd_but_clear_forms() -> None:
    assert parse_date("Mon, 2 Apr 2007 19:18:42 GMT") == "2007-04-02"
    assert parse_date("2 Apr 2007") == "2007-04-02"
    assert parse_date(2024.0) == "2024-01-01"
    assert parse_date(None) is None
    assert parse_date("  ") is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("0000-00-00", "not a real calendar date"),
        ("2025-13-45", "not a real calendar date"),
        ("2025-02-29", "not a real calendar date"),
        ("Mon, 31 Feb 2007 19:18:42 GMT", "not a real calendar date"),
        ("2025-03-04T25:00", "not a real calendar date"),
        ("9999-12-31", "outside 1600-01-01"),
        ("1599-12-31", "outside 1600-01-01"),
        ("31/12/2025", "not a date; use YYYY"),
        ("12/31/2025", "not a date; use YYYY"),
        ("20250304", "not a date; use YYYY"),
        ("yesterday", "not a date; use YYYY"),
        ("2025-03-04Tfoo", "not a date; use YYYY"),
        (True, "must be text"),
        (["2025"], "must be text"),
    ],
)
def test_bad_dates_are_refused_with_the_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        parse_date(value)


def test_a_year_from_today_is_the_latest_date() -> None:
    latest = latest_date()
    assert parse_date(latest.isoformat()) == latest.isoformat()
    with pytest.raises(ValueError, match="outside"):
        parse_date((latest + timedelta(days=1)).isoformat())


@given(st.one_of(any_text, st.integers(), st.dates(), st.datetimes(timezones=st.timezones())))
def test_any_value_is_a_stored_day_in_range_or_a_value_error(value: object) -> None:
    try:
        stored = parse_date(value)
    except ValueError:
        return
    if stored is not None:
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", stored)
        assert EARLIEST <= date.fromisoformat(stored) <= latest_date()


@given(valid_days)
def test_month_index_round_trips_valid_days(day: date) -> None:
    index = month_index(day.isoformat(), latest_date())
    assert index is not None
    assert month_text(index) == day.isoformat()[:7]


@pytest.mark.parametrize(
    "stored", [None, "", "2025", "0000-00-00", "2025-13-45", "9999-12-31", "31/12/2025", "1000-01"]
)
def test_month_index_ignores_what_ingest_would_not_store(stored: str | None) -> None:
    assert month_index(stored, latest_date()) is None


def test_timezones_do_not_move_the_day() -> None:
    east = datetime(2025, 3, 4, 1, 0, tzinfo=timezone(timedelta(hours=14)))
    assert parse_date(east) == "2025-03-04"
