"""Phone numbers: what users type, what is stored (E.164 plus extension), and how it is shown and linked."""

import csv
from pathlib import Path

import phonenumbers
import pytest

from crm import phones
from crm.errors import InvalidPhone, ValidationError

NOT_VALID = "is not a valid phone number (check the number of digits and the area code)."


@pytest.mark.parametrize(
    ("typed", "e164", "extension", "shown", "link"),
    [
        ("0113 496 0123", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("  0113 496 0123  ", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("01134960123", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("(0113) 496-0123", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("0113.496.0123", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("+44 113 496 0123", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("+44 (0)113 496 0123", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("0044 113 496 0123", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("tel:+44-113-496-0123", "+441134960123", None, "0113 496 0123", "tel:+441134960123"),
        ("0113 496 0123 ext. 234", "+441134960123", "234", "0113 496 0123 ext. 234", "tel:+441134960123;ext=234"),
        ("0113 496 0123 x234", "+441134960123", "234", "0113 496 0123 ext. 234", "tel:+441134960123;ext=234"),
        ("0113 496 0123 #234", "+441134960123", "234", "0113 496 0123 ext. 234", "tel:+441134960123;ext=234"),
        ("0113 496 0123 extension 7", "+441134960123", "7", "0113 496 0123 ext. 7", "tel:+441134960123;ext=7"),
        ("020 7946 0123", "+442079460123", None, "020 7946 0123", "tel:+442079460123"),
        ("0207 946 0123", "+442079460123", None, "020 7946 0123", "tel:+442079460123"),
        ("0161 496 0999", "+441614960999", None, "0161 496 0999", "tel:+441614960999"),
        ("0191 498 0001", "+441914980001", None, "0191 498 0001", "tel:+441914980001"),
        ("07400 123456", "+447400123456", None, "07400 123456", "tel:+447400123456"),
        ("0345 300 0000", "+443453000000", None, "0345 300 0000", "tel:+443453000000"),
        ("0800 123 4567", "+448001234567", None, "0800 123 4567", "tel:+448001234567"),
        # Abroad: shown in international form, so nobody dials it as a UK number.
        ("+33 1 42 68 53 00", "+33142685300", None, "+33 1 42 68 53 00", "tel:+33142685300"),
        ("+353 1 234 5678", "+35312345678", None, "+353 1 234 5678", "tel:+35312345678"),
        ("+1 202 555 0199 ext. 5", "+12025550199", "5", "+1 202-555-0199 ext. 5", "tel:+12025550199;ext=5"),
        # Guernsey, Jersey and the Isle of Man share +44 and UK dialling: written 01481 ... in the UK.
        ("01481 822494", "+441481822494", None, "01481 822494", "tel:+441481822494"),
        ("01534 123456", "+441534123456", None, "01534 123456", "tel:+441534123456"),
        ("01624 642647", "+441624642647", None, "01624 642647", "tel:+441624642647"),
        ("07911 123456", "+447911123456", None, "07911 123456", "tel:+447911123456"),
    ],
)
def test_parse_national_and_link(typed, e164, extension, shown, link):
    """Test that a typed number is stored as E.164 plus extension, shown nationally and linked as tel:."""
    phone = phones.parse(typed)

    assert phone == phones.Phone(e164=e164, extension=extension)
    assert phones.national(phone.e164, phone.extension) == shown
    assert phones.tel_uri(phone.e164, phone.extension) == link
    # What the edit form shows is typed back on save: it must parse to the same number.
    assert phones.parse(shown) == phone


@pytest.mark.parametrize("blank", [None, "", "   ", "\t\n"])
def test_blank_is_none(blank):
    """Test that a blank phone field means no number, not an error."""
    assert phones.parse(blank) is None


@pytest.mark.parametrize("stored", [None, ""])
def test_no_number_shows_and_links_nothing(stored):
    """Test that a contact without a number shows an empty string and has no tel: link."""
    assert phones.national(stored) == ""
    assert phones.tel_uri(stored) == ""
    assert phones.national(stored, "234") == ""
    assert phones.tel_uri(stored, "234") == ""


@pytest.mark.parametrize(
    ("typed", "field", "message"),
    [
        ("abc", "Phone", "Phone: “abc” is not a phone number."),
        ("not a number", "Phone", "Phone: “not a number” is not a phone number."),
        ("=1+2", "Phone", "Phone: “=1+2” is not a phone number."),
        ("+44", "Phone", "Phone: “+44” is not a phone number."),
        ("0113 496", "Phone", f"Phone: “0113 496” {NOT_VALID}"),
        ("  0113 496  ", "Phone", f"Phone: “0113 496” {NOT_VALID}"),
        ("12", "Phone", f"Phone: “12” {NOT_VALID}"),
        ("999", "Phone", f"Phone: “999” {NOT_VALID}"),
        ("0113 496 01234 5", "Phone", f"Phone: “0113 496 01234 5” {NOT_VALID}"),
        ("011349601231234", "Phone", f"Phone: “011349601231234” {NOT_VALID}"),
        # Ofcom's drama mobile range is not allocated, so phonenumbers (rightly) calls it invalid.
        ("07700 900123", "Mobile", f"Mobile: “07700 900123” {NOT_VALID}"),
        ("0113 496", "Main phone", f"Main phone: “0113 496” {NOT_VALID}"),
        ("9" * 40, "Phone", f"Phone: “{'9' * 40}” is not a phone number."),
        ("9" * 41, "Phone", f"Phone: “{'9' * 40}…” is too long to be a phone number."),
        (
            "0113 496 0123 " + "x" * 40,
            "Phone",
            f"Phone: “{('0113 496 0123 ' + 'x' * 40)[:40]}…” is too long to be a phone number.",
        ),
    ],
)
def test_bad_numbers_refused(typed, field, message):
    """Test that a number phonenumbers does not accept is refused with a message naming the field and quoting it."""
    with pytest.raises(InvalidPhone) as caught:
        phones.parse(typed, field)

    assert str(caught.value) == message
    assert caught.value.field == field
    assert isinstance(caught.value, ValidationError)


# The NHS directory of GP practices: real-world numbers, including truncated ones.
@pytest.fixture(scope="module")
def epraccur_numbers(epraccur_path: Path) -> list[str]:
    with epraccur_path.open(newline="", encoding="utf-8") as handle:
        return [row[17] for row in csv.reader(handle)]


def _valid(number: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(number, "GB"))


def test_epraccur_counts(epraccur_numbers):
    """Test that the NHS file holds the numbers its README states: 14,019 valid, 70 invalid, 268 empty."""
    empty = [n for n in epraccur_numbers if not n.strip()]
    given = [n for n in epraccur_numbers if n.strip()]
    valid = [n for n in given if _valid(n)]

    assert (len(epraccur_numbers), len(valid), len(given) - len(valid), len(empty)) == (14357, 14019, 70, 268)
    assert all(phones.parse(n) is None for n in empty)


def test_epraccur_valid_numbers_stored_as_e164(epraccur_numbers):
    """Test that every valid number in the NHS file is stored as its E.164 form, with no extension."""
    wrong = []
    for number in epraccur_numbers:
        if number.strip() and _valid(number):
            expected = phonenumbers.format_number(phonenumbers.parse(number, "GB"), phonenumbers.PhoneNumberFormat.E164)
            stored = phones.parse(number, "Main phone")
            if stored != phones.Phone(e164=expected, extension=None):
                wrong.append((number, stored))

    assert wrong == []


def test_epraccur_valid_numbers_shown_nationally(epraccur_numbers):
    """Test that every valid number in the NHS file is shown back in national format (01481 ..., not +44 1481 ...).

    Regression: phones.national showed Guernsey, Jersey and Isle of Man numbers (80 practices) internationally.
    """
    wrong = []
    for number in epraccur_numbers:
        if number.strip() and _valid(number):
            expected = phonenumbers.format_number(
                phonenumbers.parse(number, "GB"), phonenumbers.PhoneNumberFormat.NATIONAL
            )
            stored = phones.parse(number, "Main phone")
            shown = phones.national(stored.e164, stored.extension)
            if shown != expected:
                wrong.append((number, shown, expected))

    assert wrong == []


def test_epraccur_invalid_numbers_refused(epraccur_numbers):
    """Test that every invalid number in the NHS file is refused, the message naming the field and quoting it."""
    refused = 0
    for number in epraccur_numbers:
        if number.strip() and not _valid(number):
            with pytest.raises(InvalidPhone) as caught:
                phones.parse(number, "Main phone")
            assert str(caught.value) == f"Main phone: “{number.strip()}” {NOT_VALID}"
            assert caught.value.field == "Main phone"
            refused += 1

    assert refused == 70


def test_that_a_stored_number_is_parsed_once_per_process_however_often_it_is_shown(monkeypatch):
    """Test that showing the same stored number again (every row of a list, on every rerun) formats it from
    memory: phonenumbers parses it once, and the text is the same each time.

    Regression test: lists parsed every row's numbers with phonenumbers on every rerun, most of the time of an
    administrator's contact lists."""
    phones.national.cache_clear()
    parses = []
    real_parse = phones.phonenumbers.parse
    monkeypatch.setattr(phones.phonenumbers, "parse", lambda *args: parses.append(args) or real_parse(*args))
    shown = [phones.national("+441134960123", "12") for _ in range(3)] + [phones.national("+441134960123")]
    assert shown == ["0113 496 0123 ext. 12"] * 3 + ["0113 496 0123"]
    assert parses == [("+441134960123", "GB"), ("+441134960123", "GB")]
