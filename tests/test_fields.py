"""Cleaning and checking what users type: text, notes, emails, postcodes, web addresses, whole forms."""

import unicodedata
from datetime import date, datetime

import pytest

from crm import branches, contacts, fields, organisations
from crm.access import COMMAND_LINE
from crm.errors import InvalidEmail, InvalidFields, ValidationError

SINGLE_LINE = "contains a line break or control character; use a single line of text."
NOT_WEB = "is not a web address (for example https://example.nhs.uk)."


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Jo Bloggs", "Jo Bloggs"),
        ("  Jo Bloggs  ", "Jo Bloggs"),
        (None, ""),
        ("", ""),
        ("   ", ""),
        ("Cafe\u0301 Nero", "Caf\u00e9 Nero"),  # decomposed é is stored composed
        ("Siân O'Brien-Ng", "Siân O'Brien-Ng"),
        ("a" * 200, "a" * 200),
        ("日本語の名前", "日本語の名前"),
    ],
)
def test_text_cleans(typed, stored):
    """Test that single-line text is trimmed and NFC-normalised."""
    assert fields.text(typed, "Name") == stored


@pytest.mark.parametrize(
    ("typed", "kwargs", "message"),
    [
        (None, {"required": True}, "Name: is required."),
        ("", {"required": True}, "Name: is required."),
        (" \t ", {"required": True}, "Name: is required."),
        ("a" * 201, {}, "Name: is too long (201 characters; the limit is 200)."),
        ("abcdef", {"max_length": 5}, "Name: is too long (6 characters; the limit is 5)."),
        ("Jo\nBloggs", {}, f"Name: {SINGLE_LINE}"),
        ("Jo\r\nBloggs", {}, f"Name: {SINGLE_LINE}"),
        ("Jo\tBloggs", {}, f"Name: {SINGLE_LINE}"),
        ("Jo\x00Bloggs", {}, f"Name: {SINGLE_LINE}"),
        ("Jo\x1bBloggs", {}, f"Name: {SINGLE_LINE}"),
        ("Jo\x7fBloggs", {}, f"Name: {SINGLE_LINE}"),
        ("Jo\x85Bloggs", {}, f"Name: {SINGLE_LINE}"),
        ("Jo\u2028Bloggs", {}, f"Name: {SINGLE_LINE}"),
        ("Jo\u2029Bloggs", {}, f"Name: {SINGLE_LINE}"),
    ],
)
def test_text_refuses(typed, kwargs, message):
    """Test that blank required text, over-long text and control characters are refused with the exact message."""
    with pytest.raises(ValidationError) as caught:
        fields.text(typed, "Name", **kwargs)

    assert str(caught.value) == message
    assert caught.value.field == "Name"


def test_text_length_counts_composed_characters():
    """Test that the length limit counts characters after NFC, so 200 decomposed é's still fit."""
    assert fields.text("e\u0301" * 200, "Name") == "\u00e9" * 200


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("First line\nSecond line", "First line\nSecond line"),
        ("First line\r\nSecond line", "First line\nSecond line"),
        ("Col 1\tCol 2", "Col 1\tCol 2"),
        ("  padded \n", "padded"),
        (None, ""),
        ("Cafe\u0301", "Caf\u00e9"),
        ("x" * 5000, "x" * 5000),
    ],
)
def test_long_text_cleans(typed, stored):
    """Test that notes keep line breaks and tabs, lose CRLFs and outer spaces, and are NFC-normalised."""
    assert fields.long_text(typed, "Notes") == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("x" * 5001, "Notes: is too long (5001 characters; the limit is 5000)."),
        ("a\x00b", "Notes: contains a control character that cannot be stored."),
        ("a\x08b", "Notes: contains a control character that cannot be stored."),
        ("a\x0bb", "Notes: contains a control character that cannot be stored."),
        ("a\x0cb", "Notes: contains a control character that cannot be stored."),
        ("a\x1bb", "Notes: contains a control character that cannot be stored."),
        ("a\x7fb", "Notes: contains a control character that cannot be stored."),
        ("a\x9fb", "Notes: contains a control character that cannot be stored."),
    ],
)
def test_long_text_refuses(typed, message):
    """Test that over-long notes and control characters other than line breaks and tabs are refused."""
    with pytest.raises(ValidationError) as caught:
        fields.long_text(typed, "Notes")

    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("jo@example.nhs.uk", "jo@example.nhs.uk"),
        ("  jo@nhs.net  ", "jo@nhs.net"),
        ("Jo.Bloggs@Example.NHS.UK", "Jo.Bloggs@example.nhs.uk"),
        ("jo+referrals@council.gov.uk", "jo+referrals@council.gov.uk"),
        ("José@exämple.com", "José@exämple.com"),
        (None, None),
        ("", None),
        ("   ", None),
    ],
)
def test_email_cleans(typed, stored):
    """Test that an email address is trimmed, its domain lower-cased, and blank means none."""
    assert fields.email(typed) == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("jo", "Email: “jo” is not a valid email address. An email address must have an @-sign."),
        ("jo@", "Email: “jo@” is not a valid email address. There must be something after the @-sign."),
        ("@x.com", "Email: “@x.com” is not a valid email address. There must be something before the @-sign."),
        (
            "jo@@x.com",
            "Email: “jo@@x.com” is not a valid email address. "
            "The part after the @-sign contains invalid characters: '@'.",
        ),
        (
            "jo@localhost",
            "Email: “jo@localhost” is not a valid email address. "
            "The part after the @-sign is not valid. It should have a period.",
        ),
        (
            "jo @x.com",
            "Email: “jo @x.com” is not a valid email address. "
            "The email address contains invalid characters before the @-sign: SPACE.",
        ),
        (
            "jo.@x.com",
            "Email: “jo.@x.com” is not a valid email address. "
            "An email address cannot have a period immediately before the @-sign.",
        ),
        (
            "jo@x..com",
            "Email: “jo@x..com” is not a valid email address. An email address cannot have two periods in a row.",
        ),
        ("a" * 249 + "@x.com", "Email: is too long to be an email address."),
    ],
)
def test_email_refuses(typed, message):
    """Test that a malformed email address is refused, quoting it and saying what is wrong (no network look-up)."""
    with pytest.raises(InvalidEmail) as caught:
        fields.email(typed)

    assert str(caught.value) == message
    assert caught.value.field == "Email"


def test_email_names_its_field():
    """Test that an email error names the field it was given."""
    with pytest.raises(InvalidEmail) as caught:
        fields.email("nope", "Work email")

    assert str(caught.value) == "Work email: “nope” is not a valid email address. An email address must have an @-sign."


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("LS6 2AB", "LS6 2AB"),
        ("ls6 2ab", "LS6 2AB"),
        ("LS62AB", "LS6 2AB"),
        ("  sw1a 1aa ", "SW1A 1AA"),
        ("M1 1AA", "M1 1AA"),
        ("CH41 1AB", "CH41 1AB"),
        ("EC1A1BB", "EC1A 1BB"),
        ("", ""),
        (None, ""),
    ],
)
def test_postcode_cleans(typed, stored):
    """Test that a UK postcode is upper-cased and given its single space."""
    assert fields.postcode(typed) == stored


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("LS6", "Postcode: “LS6” is not a UK postcode (for example LS6 2AB)."),
        ("12345", "Postcode: “12345” is not a UK postcode (for example LS6 2AB)."),
        ("LS6 2ABC", "Postcode: “LS6 2ABC” is not a UK postcode (for example LS6 2AB)."),
        ("ls6  2ab", "Postcode: “LS6  2AB” is not a UK postcode (for example LS6 2AB)."),
        ("LS6-2AB", "Postcode: “LS6-2AB” is not a UK postcode (for example LS6 2AB)."),
        ("ABCDEFGHIJK", "Postcode: is too long (11 characters; the limit is 10)."),
        ("LS6\n2AB", f"Postcode: {SINGLE_LINE}"),
    ],
)
def test_postcode_refuses(typed, message):
    """Test that something without the shape of a UK postcode is refused with the exact message."""
    with pytest.raises(ValidationError) as caught:
        fields.postcode(typed)

    assert str(caught.value) == message
    assert caught.value.field == "Postcode"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://example.nhs.uk", "https://example.nhs.uk"),
        ("http://example.nhs.uk/page?x=1#top", "http://example.nhs.uk/page?x=1#top"),
        ("HTTPS://EXAMPLE.COM", "HTTPS://EXAMPLE.COM"),
        ("example.nhs.uk", "https://example.nhs.uk"),
        ("www.leeds.gov.uk/adult-social-care", "https://www.leeds.gov.uk/adult-social-care"),
        ("", ""),
        (None, ""),
    ],
)
def test_website_cleans(typed, stored):
    """Test that an http(s) address is kept and a bare domain gets https:// in front."""
    assert fields.website(typed) == stored


@pytest.mark.parametrize(
    "typed",
    [
        "javascript:alert(1)",
        # Regression: a dot after the scheme made this pass as "https://JavaScript:alert(document.cookie)".
        "JavaScript:alert(document.cookie)",
        "javascript:location.href",
        "javascript://example.com/%0Aalert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "ftp://example.com",
        "file:///etc/passwd",
        "//evil.example",
        "localhost",
        "http://intranet",
        "https://",
    ],
)
def test_website_refuses_other_schemes(typed):
    """Test that javascript:, data: and other non-web addresses are refused, naming the Website field."""
    with pytest.raises(ValidationError) as caught:
        fields.website(typed)

    assert caught.value.field == "Website"
    assert str(caught.value).endswith(NOT_WEB)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("ftp://example.com", f"Website: “ftp://example.com” {NOT_WEB}"),
        ("http://intranet", f"Website: “http://intranet” {NOT_WEB}"),
        ("x" * 501, "Website: is too long (501 characters; the limit is 500)."),
        # Regression: the message quoted "https://javascript:alert(1)", which is not what the user typed.
        ("javascript:alert(1)", f"Website: “javascript:alert(1)” {NOT_WEB}"),
        ("localhost", f"Website: “localhost” {NOT_WEB}"),
    ],
)
def test_website_message_quotes_what_was_typed(typed, message):
    """Test that a refused web address is quoted as the user typed it, with the exact message."""
    with pytest.raises(ValidationError) as caught:
        fields.website(typed)

    assert str(caught.value) == message


@pytest.mark.parametrize(
    "typed",
    ["https://example.nhs.uk javascript:alert(1)", "https://example.nhs.uk/a page", "example.nhs.uk\u00a0/x"],
)
def test_website_refuses_spaces(typed):
    """Test that an address with white space inside is refused (regression: only its start was checked)."""
    with pytest.raises(ValidationError) as caught:
        fields.website(typed)

    assert caught.value.field == "Website"


@pytest.mark.parametrize(
    ("typed", "escaped"),
    [
        ("100%", "100\\%"),
        ("a_b", "a\\_b"),
        ("back\\slash", "back\\\\slash"),
        ("plain", "plain"),
        ("%_\\", "\\%\\_\\\\"),
    ],
)
def test_like_escape(typed, escaped):
    """Test that LIKE wildcards and the escape character are escaped, and like_contains wraps them in %."""
    assert fields.like_escape(typed) == escaped
    assert fields.like_contains(typed) == f"%{escaped}%"


def test_check_all_returns_every_cleaned_value():
    """Test that check_all runs every check and returns the cleaned values by column."""
    cleaned = fields.check_all(
        {
            "name": lambda: fields.text(" Jo ", "Name", required=True),
            "email": lambda: fields.email("Jo@Example.COM"),
            "postcode": lambda: fields.postcode("ls6 2ab"),
        }
    )

    assert cleaned == {"name": "Jo", "email": "Jo@example.com", "postcode": "LS6 2AB"}


def test_check_all_one_error_raised_alone():
    """Test that a single refused field is raised as that field's own ValidationError, not wrapped."""
    with pytest.raises(ValidationError) as caught:
        fields.check_all(
            {
                "name": lambda: fields.text("Jo", "Name", required=True),
                "postcode": lambda: fields.postcode("nowhere"),
            }
        )

    assert type(caught.value) is ValidationError
    assert str(caught.value) == "Postcode: “NOWHERE” is not a UK postcode (for example LS6 2AB)."


def test_check_all_several_errors_reported_together():
    """Test that several refused fields are reported at once, in form order, as InvalidFields."""
    with pytest.raises(InvalidFields) as caught:
        fields.check_all(
            {
                "name": lambda: fields.text("", "Name", required=True),
                "job_title": lambda: fields.text("Manager", "Job title"),
                "email": lambda: fields.email("jo"),
                "postcode": lambda: fields.postcode("nowhere"),
            }
        )

    assert [(e.field, str(e)) for e in caught.value.errors] == [
        ("Name", "Name: is required."),
        ("Email", "Email: “jo” is not a valid email address. An email address must have an @-sign."),
        ("Postcode", "Postcode: “NOWHERE” is not a UK postcode (for example LS6 2AB)."),
    ]
    assert str(caught.value) == (
        "Name: is required. "
        "Email: “jo” is not a valid email address. An email address must have an @-sign. "
        "Postcode: “NOWHERE” is not a UK postcode (for example LS6 2AB)."
    )


def test_check_all_lets_other_exceptions_through():
    """Test that a programming error inside a check is not mistaken for a user's mistake."""
    with pytest.raises(ZeroDivisionError):
        fields.check_all({"x": lambda: 1 / 0})


def _nfc_stripped(value: str) -> str:
    return unicodedata.normalize("NFC", value.strip())


def test_naughty_strings_as_names(naughty_strings):
    """Test that each naughty string is either kept as its NFC-stripped form or refused with a ValidationError."""
    outcomes = {"kept": 0, "refused": 0}
    for value in naughty_strings:
        try:
            cleaned = fields.text(value, "Name", required=True)
        except ValidationError as error:
            assert error.field == "Name", value
            outcomes["refused"] += 1
        else:
            assert cleaned == _nfc_stripped(value), value
            outcomes["kept"] += 1

    assert outcomes["kept"] > 0
    assert outcomes["refused"] > 0
    assert sum(outcomes.values()) == len(naughty_strings)


def test_naughty_strings_stored_and_read_back(database, naughty_strings):
    """Test that every naughty name a contact form accepts comes back from the database exactly as cleaned."""
    region = branches.add_region(database, COMMAND_LINE, "North")
    branch = branches.add_branch(database, COMMAND_LINE, "Leeds", region)
    organisation = organisations.add(database, COMMAND_LINE, {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE"})
    stored = {}
    for value in naughty_strings:
        values = {"name": value, "organisation_id": organisation, "branch_id": branch, "notes": value}
        try:
            contact_id = contacts.add(database, COMMAND_LINE, values, allow_duplicate=True)
        except (ValidationError, InvalidFields):
            continue  # refused cleanly (name, notes or both): the only other outcome allowed
        stored[contact_id] = _nfc_stripped(value)

    assert stored
    for contact_id, name in stored.items():
        record = contacts.get(database, COMMAND_LINE, contact_id)
        assert (record["name"], record["notes"]) == (name, name)


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("Thank you s\ufffeo much", "character 12 (U+FFFE) is not allowed."),
        ("\uffffThanks", "character 1 (U+FFFF) is not allowed."),
        ("ab\ufdd0", "character 3 (U+FDD0) is not allowed."),
        ("ab\ufdef", "character 3 (U+FDEF) is not allowed."),
        ("ab\U0001fffe", "character 3 (U+1FFFE) is not allowed."),
        ("ab\U0010ffff", "character 3 (U+10FFFF) is not allowed."),
        ("ab\ud800cd", "character 3 (U+D800) is not allowed."),
        ("ab\udfff", "character 3 (U+DFFF) is not allowed."),
    ],
)
@pytest.mark.parametrize("check", [fields.text, fields.long_text])
def test_non_characters_and_lone_surrogates_are_refused_naming_the_position(check, typed, message):
    """Test that Unicode non-characters and lone surrogates are refused by single-line and multi-line fields alike,
    naming the field, the character's position and its code. Regression: a quote holding U+FFFE was accepted and
    then broke every Word and Excel export."""
    with pytest.raises(ValidationError) as caught:
        check(typed, "Quote")

    assert str(caught.value) == f"Quote: {message}"
    assert caught.value.field == "Quote"


@pytest.mark.parametrize(
    "typed", ["Thanks \ufffd", "ab\ufdcf\ufdf0", "ab\ufffc", "ab\U0001fffd", "ok 😀 王伟", "\ue000"]
)
def test_characters_next_to_the_refused_ranges_are_kept(typed):
    """Test that the characters just outside the refused ranges (U+FFFD, U+FDCF, U+FDF0, a private-use character,
    emoji) are stored exactly."""
    assert (fields.text(typed, "Name"), fields.long_text(typed, "Notes")) == (typed, typed)


TODAY = date(2026, 3, 2)
BEFORE_1990 = "is before 1990-01-01, the earliest date accepted; check the year."


@pytest.mark.parametrize(
    ("typed", "past", "message"),
    [
        ("0001-01-01", False, f"0001-01-01 {BEFORE_1990}"),
        ("0001-01-01", True, f"0001-01-01 {BEFORE_1990}"),
        ("1989-12-31", True, f"1989-12-31 {BEFORE_1990}"),
        (date(1066, 10, 14), False, f"1066-10-14 {BEFORE_1990}"),
        ("9999-12-31", False, "9999-12-31 is more than 5 years ahead (after 2031-03-02); check the year."),
        ("2031-03-03", False, "2031-03-03 is more than 5 years ahead (after 2031-03-02); check the year."),
        ("9999-12-31", True, "cannot be in the future."),
        ("2026-03-03", True, "cannot be in the future."),
    ],
)
def test_implausible_dates_are_refused_naming_the_field(typed, past, message):
    """Test that dates before 1990, more than five years ahead, or (for something that has happened) after today
    are refused with the field's name and the reason. Regression: year 1 and year 9999 were accepted everywhere."""
    with pytest.raises(ValidationError) as caught:
        fields.date_value(typed, "Consent given on", past=past, today=TODAY)

    assert str(caught.value) == f"Consent given on: {message}"


@pytest.mark.parametrize(
    ("typed", "past", "stored"),
    [
        ("1990-01-01", True, date(1990, 1, 1)),
        ("2026-03-02", True, TODAY),
        ("2031-03-02", False, date(2031, 3, 2)),
        (datetime(2026, 3, 2, 23, 59), True, TODAY),
    ],
)
def test_dates_at_the_edges_of_their_range_are_accepted(typed, past, stored):
    """Test that 1 January 1990, today and exactly five years ahead are accepted."""
    assert fields.date_value(typed, "Date", past=past, today=TODAY) == stored


def test_five_years_after_29_february_is_28_february():
    """Test that five years after a 29 February ends on 28 February, not in an error."""
    assert fields.date_value("2033-02-28", "Date", today=date(2028, 2, 29)) == date(2033, 2, 28)
    with pytest.raises(ValidationError):
        fields.date_value("2033-03-01", "Date", today=date(2028, 2, 29))
