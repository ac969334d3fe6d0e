"""The current time, in one place so tests can pin it."""

from datetime import UTC, datetime


def now() -> datetime:
    """The current UTC time, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def stamp(moment: datetime | None = None) -> str:
    """An ISO 8601 UTC timestamp as stored in the database (sorts as text)."""
    return (moment or now()).strftime("%Y-%m-%dT%H:%M:%SZ")
