"""Cleaning and checking what users type: lengths, control characters, emails, postcodes."""

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from email_validator import EmailNotValidError, validate_email

from crm.errors import InvalidEmail, InvalidFields, ValidationError

SHORT_TEXT_MAX = 200
LONG_TEXT_MAX = 5000
# Characters that have no business in a single-line field: C0/C1 controls, line and paragraph separators.
_SINGLE_LINE_BAD = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_MULTI_LINE_BAD = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
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
    return cleaned


def long_text(value: str | None, field: str, *, max_length: int = LONG_TEXT_MAX) -> str:
    """A multi-line value such as notes: line breaks and tabs allowed, other control characters refused."""
    cleaned = unicodedata.normalize("NFC", (value or "").strip()).replace("\r\n", "\n")
    if len(cleaned) > max_length:
        raise ValidationError(field, f"is too long ({len(cleaned)} characters; the limit is {max_length}).")
    if _MULTI_LINE_BAD.search(cleaned):
        raise ValidationError(field, "contains a control character that cannot be stored.")
    return cleaned


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
    raw = text(value, field, max_length=500)
    if not raw:
        return ""
    if "://" not in raw:
        raw = "https://" + raw
    if not re.match(r"^https?://[^\s/?#]+\.[^\s/?#]+", raw, re.IGNORECASE):
        raise ValidationError(field, f"“{raw}” is not a web address (for example https://example.nhs.uk).")
    return raw


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
