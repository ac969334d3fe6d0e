"""Cleaning and checking what users type: lengths, control characters, emails, postcodes."""

import re
import unicodedata
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from email_validator import EmailNotValidError, validate_email

from crm import clock
from crm.errors import InvalidEmail, InvalidFields, PossibleClientData, ValidationError

SHORT_TEXT_MAX = 200
# Plausible dates: nothing this app records happened before 1990 (a typed year 1 or 199 is a slip), and nothing is
# planned more than five years ahead (a year 9999 or 2205 is a slip too).
EARLIEST_DATE = date(1990, 1, 1)
YEARS_AHEAD = 5
LONG_TEXT_MAX = 5000
# Characters that have no business in a single-line field: C0/C1 controls, line and paragraph separators.
_SINGLE_LINE_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTI_LINE_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
# Characters no text may hold: Unicode non-characters (U+FDD0-U+FDEF and the last two code points of every
# plane), lone surrogates (not text at all; SQLite cannot even encode them), and the C0 controls XML 1.0 cannot
# hold. Word and Excel files are XML: one such character stored in a quote would break every export holding it.
UNSTORABLE = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufdd0-\ufdef"
    + "".join(f"{chr(plane * 0x10000 + 0xFFFE)}{chr(plane * 0x10000 + 0xFFFF)}" for plane in range(17))
    + "]"
)
# Ten digits, optionally spaced 3-3-4 as NHS numbers are printed, not part of a longer number. NHS numbers
# never start with 0, which keeps UK phone numbers (0113 496 0123) out.
_NHS_NUMBER = re.compile(r"(?<![\d+])([1-9]\d{2})[ -]?(\d{3})[ -]?(\d{4})(?!\d)")
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)
_WEB_ADDRESS = re.compile(r"^https?://[^\s/?#:@]+\.[^\s/?#:@]+(:\d+)?([/?#]\S*)?$", re.IGNORECASE)
_INTERNATIONAL_PHONE = re.compile(r"\+\d[\d ()-]{7,}\d")
_POSTCODE = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?) ?([0-9][A-Z]{2})$")


def text(value: str | None, field: str, *, required: bool = False, max_length: int = SHORT_TEXT_MAX) -> str:
    """A single-line value, trimmed and NFC-normalised.

    :raises ValidationError: when required and blank, too long, or holding control characters.
    """
    cleaned = unicodedata.normalize("NFC", (value or "").strip())
    if required and not cleaned:
        raise ValidationError(field, "is required.")
    if len(cleaned) > max_length:
        raise ValidationError(field, f"is too long ({len(cleaned)} characters; the limit is {max_length}).")
    if _SINGLE_LINE_BAD.search(cleaned):
        raise ValidationError(field, "contains a line break or control character; use a single line of text.")
    refuse_unstorable(cleaned, field)
    return cleaned


def long_text(value: str | None, field: str, *, max_length: int = LONG_TEXT_MAX) -> str:
    """A multi-line value such as notes: line breaks and tabs allowed, other control characters refused."""
    cleaned = unicodedata.normalize("NFC", (value or "").strip()).replace("\r\n", "\n")
    if len(cleaned) > max_length:
        raise ValidationError(field, f"is too long ({len(cleaned)} characters; the limit is {max_length}).")
    if _MULTI_LINE_BAD.search(cleaned):
        raise ValidationError(field, "contains a control character that cannot be stored.")
    refuse_unstorable(cleaned, field)
    return cleaned


def refuse_unstorable(value: str, field: str) -> None:
    """:raises ValidationError: naming the position and code of the first character no text may hold."""
    if match := UNSTORABLE.search(value):
        raise ValidationError(field, f"character {match.start() + 1} (U+{ord(match.group()):04X}) is not allowed.")


def email(value: str | None, field: str = "Email") -> str | None:
    """A syntactically valid email address, normalised (domain lower-cased); None when blank.

    No network look-up: partners' addresses must be accepted even when the app runs offline.
    """
    raw = (value or "").strip()
    if not raw:
        return None
    if len(raw) > 254:
        raise InvalidEmail(field, "is too long to be an email address.")
    try:
        result = validate_email(raw, check_deliverability=False)
    except EmailNotValidError as error:
        raise InvalidEmail(field, f"“{raw}” is not a valid email address. {error}") from None
    return str(result.normalized)


def postcode(value: str | None, field: str = "Postcode") -> str:
    """A UK postcode in its standard form (``LS6 2AB``); blank allowed.

    :raises ValidationError: when it does not have the shape of a UK postcode.
    """
    raw = text(value, field, max_length=10).upper()
    if not raw:
        return ""
    match = _POSTCODE.match(raw)
    if not match:
        raise ValidationError(field, f"“{raw}” is not a UK postcode (for example LS6 2AB).")
    return f"{match.group(1)} {match.group(2)}"


def website(value: str | None, field: str = "Website") -> str:
    """An http(s) address; a bare domain gets https:// in front. Other schemes (javascript:, data:) refused."""
    typed = text(value, field, max_length=500)
    if not typed:
        return ""
    address = typed if _SCHEME.match(typed) else "https://" + typed
    if not _WEB_ADDRESS.match(address):
        raise ValidationError(field, f"“{typed}” is not a web address (for example https://example.nhs.uk).")
    return address


SEARCH_MAX = 200  # longer search text is a mistake (or an attack: SQLite refuses LIKE patterns over 50,000)


def search_text(value: str | None, field: str = "Search") -> str:
    """Words to search for, trimmed: one line of at most SEARCH_MAX characters.

    :raises ValidationError: for longer text, or a NUL, line break or other control character.
    """
    return text(value, field, max_length=SEARCH_MAX)


def like_escape(value: str) -> str:
    """Escape LIKE wildcards so a user's search text matches literally (use with ESCAPE '\\')."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_contains(value: str) -> str:
    """A LIKE pattern matching ``value`` anywhere, wildcards in it taken literally."""
    return f"%{like_escape(value)}%"


def check_all(checks: dict[str, Callable[[], Any]]) -> dict[str, Any]:
    """Run every field check, so the user hears about all the problems in a form at once.

    :raises ValidationError: when exactly one check failed; InvalidFields when several did.
    """
    out: dict[str, Any] = {}
    errors: list[ValidationError] = []
    for column, check in checks.items():
        try:
            out[column] = check()
        except ValidationError as error:
            errors.append(error)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise InvalidFields(errors)
    return out


def is_nhs_number(digits: str) -> bool:
    """True when ``digits`` (10 of them) pass the NHS number modulus 11 check."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * weight for d, weight in zip(digits[:9], range(10, 1, -1), strict=True))
    check = 11 - total % 11
    check = 0 if check == 11 else check
    return check != 10 and check == int(digits[9])


def nhs_numbers(text: str) -> list[str]:
    """The NHS numbers (valid check digit) written anywhere in ``text``."""
    # International phone numbers (+44 113 496 0123) are taken out first: after "+44" the rest can look like one.
    text = _INTERNATIONAL_PHONE.sub(" ", text or "")
    found = ("".join(match.groups()) for match in _NHS_NUMBER.finditer(text))
    return [digits for digits in found if is_nhs_number(digits)]


def refuse_nhs_numbers(values: dict[str, str], labels: dict[str, str]) -> None:
    """:raises PossibleClientData: naming the first field in ``labels`` whose text holds an NHS number."""
    for column, label in labels.items():
        if nhs_numbers(values.get(column) or ""):
            raise PossibleClientData(
                label,
                "contains what looks like an NHS number. Partner records must not hold details of the people you "
                "support: remove it, or confirm that it is not an NHS number.",
            )


def date_value(
    value: object, field: str, *, required: bool = False, past: bool = False, today: date | None = None
) -> date | None:
    """A date from a date object or an ISO string (YYYY-MM-DD); None when blank and not required.

    Only plausible dates: from EARLIEST_DATE, and at most YEARS_AHEAD years from today, or (``past``, for
    something that has happened: a privacy notice sent, consent given, a testimonial received) at most today.

    :raises ValidationError: naming the field, for text that is not a date or a date out of its range.
    """
    if value in (None, ""):
        if required:
            raise ValidationError(field, "is required.")
        return None
    if isinstance(value, datetime):
        day = value.date()
    elif isinstance(value, date):
        day = value
    else:
        try:
            day = date.fromisoformat(str(value).strip())
        except ValueError:
            raise ValidationError(field, f"“{value}” is not a date (use YYYY-MM-DD, e.g. 2026-03-31).") from None
    return date_in_range(day, field, past=past, today=today)


def date_in_range(day: date, field: str, *, past: bool = False, today: date | None = None) -> date:
    """``day``, if it is plausible (see date_value).

    :raises ValidationError: for a date before EARLIEST_DATE, after today when ``past``, or further ahead than
        YEARS_AHEAD years.
    """
    today = today or clock.now().date()
    if day < EARLIEST_DATE:
        raise ValidationError(
            field,
            f"{day.isoformat()} is before {EARLIEST_DATE.isoformat()}, the earliest date accepted; check the year.",
        )
    if past and day > today:
        raise ValidationError(field, "cannot be in the future.")
    latest = _years_after(today, YEARS_AHEAD)
    if day > latest:
        raise ValidationError(
            field,
            f"{day.isoformat()} is more than {YEARS_AHEAD} years ahead (after {latest.isoformat()}); check the year.",
        )
    return day


def _years_after(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February, in a year that has none
        return day.replace(year=day.year + years, day=28)


def optional_id(value: object, field: str) -> int | None:
    """A record id picked in a form (int or digit string); None when blank."""
    if value in (None, ""):
        return None
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValidationError(field, "is not a valid choice.") from None


def required_id(value: object, field: str) -> int:
    """Like optional_id, but blank is refused."""
    number = optional_id(value, field)
    if number is None:
        raise ValidationError(field, "is required.")
    return number
