"""The one date style: days as "1 Dec 2026", documents' "1 December 2026", and moments in UK local time with the
zone (GMT in winter, BST in summer), from dates, datetimes and stored ISO strings alike."""

from datetime import UTC, date, datetime

import pytest

from crm import dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (date(2026, 12, 1), "1 Dec 2026"),
        ("2026-09-30", "30 Sep 2026"),
        (datetime(2026, 6, 30, 23, 30, tzinfo=UTC), "1 Jul 2026"),  # 00:30 BST: already the next UK day
        ("2026-06-30T23:30:00Z", "1 Jul 2026"),
        ("2026-12-31T23:30:00Z", "31 Dec 2026"),  # GMT: the same day
        (None, ""),
        ("", ""),
    ],
)
def test_day(value, expected):
    """Test that day() writes dates, datetimes and stored timestamps as the UK day, "1 Dec 2026"."""
    assert dates.day(value) == expected


def test_long_day_and_months():
    """Test that long_day() spells the month out for documents, and month()/short_month() name the month."""
    assert [dates.long_day(date(2026, 12, 1)), dates.long_day("2026-03-02"), dates.long_day(None)] == [
        "1 December 2026",
        "2 March 2026",
        "",
    ]
    assert [dates.month("2026-02-27"), dates.short_month(date(2026, 1, 31))] == ["February 2026", "Jan 2026"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-01T14:05:00Z", "1 Dec 2026, 14:05 GMT"),
        ("2026-07-01T13:05:00Z", "1 Jul 2026, 14:05 BST"),
        (datetime(2026, 3, 29, 0, 59, tzinfo=UTC), "29 Mar 2026, 00:59 GMT"),  # clocks go forward at 01:00 UTC
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), "29 Mar 2026, 02:00 BST"),
        (datetime(2026, 12, 1, 14, 5), "1 Dec 2026, 14:05 GMT"),  # a naive datetime is taken as UTC
        (None, ""),
    ],
)
def test_moment_is_uk_local_time_with_the_zone(value, expected):
    """Test that moment() shows a stored UTC time as UK local time with GMT or BST, across the clock change."""
    assert dates.moment(value) == expected
