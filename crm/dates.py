"""Dates and times as people read them, in one style everywhere: "1 Dec 2026", "1 December 2026", and times in UK
local time with the zone ("14:05 GMT", "14:05 BST"). The database and CSV files keep ISO 8601 for machines."""

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

UK = ZoneInfo("Europe/London")
# English month names whatever the process locale (strftime's %B would follow it).
MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip


def _as_date(value: date | datetime | str | None) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.astimezone(UK).date() if value.tzinfo else value.replace(tzinfo=UTC).astimezone(UK).date()
    if isinstance(value, date):
        return value
    text = str(value)
    if len(text) > 10:  # a stored timestamp: its UK day, not its UTC day
        moment = _as_moment(text)
        return moment.date() if moment else None
    return date.fromisoformat(text)


def _as_moment(value: datetime | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:  # stored timestamps are UTC
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UK)


def day(value: date | datetime | str | None) -> str:
    """A date as "1 Dec 2026" (a timestamp gives its UK day); "" for no date."""
    as_date = _as_date(value)
    return f"{as_date.day} {MONTHS[as_date.month - 1][:3]} {as_date.year}" if as_date else ""


def long_day(value: date | datetime | str | None) -> str:
    """A date as "1 December 2026", for documents; "" for no date."""
    as_date = _as_date(value)
    return f"{as_date.day} {MONTHS[as_date.month - 1]} {as_date.year}" if as_date else ""


def month(value: date | datetime | str | None) -> str:
    """A date's month as "December 2026"; "" for no date."""
    as_date = _as_date(value)
    return f"{MONTHS[as_date.month - 1]} {as_date.year}" if as_date else ""


def short_month(value: date | datetime | str | None) -> str:
    """A date's month as "Dec 2026" (chart axes); "" for no date."""
    as_date = _as_date(value)
    return f"{MONTHS[as_date.month - 1][:3]} {as_date.year}" if as_date else ""


def moment(value: datetime | str | None) -> str:
    """A point in time (a stored UTC timestamp) as "1 Dec 2026, 14:05 GMT" in UK local time; "" for none."""
    local = _as_moment(value)
    return f"{day(local.date())}, {local:%H:%M %Z}" if local else ""


def time_of_day(value: datetime | str | None) -> str:
    """Only the UK local time of a timestamp, "14:05 BST"; "" for none."""
    local = _as_moment(value)
    return f"{local:%H:%M %Z}" if local else ""
