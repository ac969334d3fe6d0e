"""Phone numbers: parsed and validated with phonenumbers, stored as E.164 plus extension, shown nationally."""

import functools
from dataclasses import dataclass

import phonenumbers

from crm.errors import InvalidPhone

DEFAULT_REGION = "GB"
MAX_INPUT_LENGTH = 40


@dataclass(frozen=True)
class Phone:
    e164: str
    extension: str | None = None


def parse(raw: str | None, field: str = "Phone") -> Phone | None:
    """Parse what a user typed into a Phone, or None when left blank.

    :raises InvalidPhone: naming ``field`` and quoting the input, when it is not a valid number.
    """
    text = (raw or "").strip()
    if not text:
        return None
    shown = text if len(text) <= MAX_INPUT_LENGTH else text[:MAX_INPUT_LENGTH] + "…"
    if len(text) > MAX_INPUT_LENGTH:
        raise InvalidPhone(field, f"“{shown}” is too long to be a phone number.")
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidPhone(field, f"“{shown}” is not a phone number.") from None
    if not phonenumbers.is_valid_number(number):
        raise InvalidPhone(
            field, f"“{shown}” is not a valid phone number (check the number of digits and the area code)."
        )
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return Phone(e164=e164, extension=number.extension or None)


@functools.lru_cache(maxsize=100_000)
def national(e164: str | None, extension: str | None = None) -> str:
    """Format a stored number the way people in the UK write it: 020 7946 0123 (international if abroad).

    Kept per process (the same stored number always reads the same): lists format every row's numbers on every
    rerun, and parsing with phonenumbers was most of a long contact list's time (BENCHMARKS.md).
    """
    if not e164:
        return ""
    number = phonenumbers.parse(e164, DEFAULT_REGION)
    # +44 covers Guernsey, Jersey and the Isle of Man too: all dialled from the UK like UK numbers.
    style = (
        phonenumbers.PhoneNumberFormat.NATIONAL
        if number.country_code == 44
        else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    )
    text = phonenumbers.format_number(number, style)
    return f"{text} ext. {extension}" if extension else text


def tel_uri(e164: str | None, extension: str | None = None) -> str:
    """An RFC 3966 ``tel:`` link for a stored number; empty when there is none."""
    if not e164:
        return ""
    return f"tel:{e164};ext={extension}" if extension else f"tel:{e164}"
