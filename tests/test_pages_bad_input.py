"""Bad input from the address bar and the search boxes gets a plain message, never a traceback. Regression: a record
id past SQLite's integer range (?contact=9223372036854775808), a 50,001-character search and a NUL in the
testimonial search each showed a traceback with server paths and source in the browser."""

import tomllib

import pytest

from crm import contacts, interactions, organisations, testimonials
from crm.errors import ValidationError
from tests.conftest import World, copy_world
from tests.pagehelpers import ROOT, new_app, open_section, page_path, run_app_on, sign_in, values

INVALID_LINK = "That link is not valid."
CONTROL = "Search: contains a line break or control character; use a single line of text."


@pytest.fixture
def world(template, db_path, monkeypatch) -> World:
    run_app_on(monkeypatch, db_path)
    scene = copy_world(*template, db_path)
    yield scene
    scene.db.close()


@pytest.mark.parametrize("parameter", ["contact", "interaction", "organisation", "testimonial"])
def test_a_record_link_that_is_not_a_valid_id_says_so(world, parameter):
    """Test that a record address whose id is not a positive whole number SQLite can hold (too large, zero,
    negative, a fraction, words, spaces) shows "That link is not valid." and nothing else, with no traceback;
    the largest id SQLite holds is looked up as usual (and does not exist)."""
    at = sign_in(new_app(), "ada")
    at.switch_page(page_path(f"{parameter}s"))
    for bad in ["9223372036854775808", "99999999999999999999999", "0", "-1", "1.5", "1e3", "one", " 1", "", "٣"]:
        at.query_params[parameter] = bad
        at.run()
        assert not at.exception, (bad, at.exception)
        assert values(at.error) == [INVALID_LINK], bad
    at.query_params[parameter] = "9223372036854775807"
    at.run()
    assert not at.exception, at.exception
    assert len(at.error) == 1 and "does not exist" in at.error[0].value


@pytest.mark.parametrize(
    ("page", "key"),
    [
        ("contacts", "contacts_filter_text"),
        ("interactions", "interactions_filter_text"),
        ("organisations", "organisations_search"),
        ("testimonials", "testimonials_search"),
    ],
)
def test_an_overlong_or_control_character_search_gets_a_message(world, page, key):
    """Test that a search box stops at 200 characters (Streamlit cuts a longer value sent to the server), so a
    50,001-character search runs as its first 200, and that a search holding a NUL shows one plain message on
    the page; never a traceback."""
    at = sign_in(new_app(), "ada")
    at.switch_page(page_path(page)).run()
    assert at.text_input(key=key).proto.max_chars == 200
    at.text_input(key=key).set_value("a" * 50_001).run()
    assert not at.exception, at.exception
    assert values(at.error) == []
    assert at.text_input(key=key).value == "a" * 200
    at.text_input(key=key).set_value("discharge\x00home").run()
    assert not at.exception, at.exception
    assert values(at.error) == [CONTROL]


def test_a_control_character_in_the_organisation_picker_gets_a_message(world):
    """Test that the organisation picker (on the add-a-contact form) stops at 200 characters and shows the
    message for a search holding a NUL, instead of a traceback."""
    at = sign_in(new_app(), "ada")
    at.switch_page(page_path("contacts")).run()
    open_section(at, "Add a contact")
    assert at.text_input(key="contacts_add_org_search").proto.max_chars == 200
    at.text_input(key="contacts_add_org_search").set_value("Hyde\x00Park").run()
    assert not at.exception, at.exception
    assert values(at.error) == [CONTROL]


@pytest.mark.parametrize(
    "search",
    [
        lambda world, text: contacts.search(world.db, world.admin, text=text),
        lambda world, text: interactions.search(world.db, world.admin, text=text),
        lambda world, text: organisations.search(world.db, text),
        lambda world, text: testimonials.search(world.db, world.admin, text=text),
        lambda world, text: testimonials.search(world.db, world.admin, theme=text),
    ],
    ids=["contacts", "interactions", "organisations", "testimonials", "testimonial themes"],
)
def test_searches_refuse_overlong_text_and_control_characters(world, search):
    """Test that every search function refuses text over 200 characters and text holding a NUL with a
    ValidationError naming the field, and still finds nothing harmful in 200 characters."""
    with pytest.raises(ValidationError) as too_long:
        search(world, "a" * 50_001)
    assert str(too_long.value).endswith("is too long (50001 characters; the limit is 200).")
    with pytest.raises(ValidationError) as nul:
        search(world, "discharge\x00home")
    assert str(nul.value).endswith("contains a line break or control character; use a single line of text.")
    assert search(world, "%" * 200) == []


def test_streamlit_shows_no_error_details_in_the_browser():
    """Test that .streamlit/config.toml tells Streamlit to show no exception text or traceback in the browser
    ("none" is the value Streamlit 1.67 documents for it)."""
    with (ROOT / ".streamlit" / "config.toml").open("rb") as config:
        settings = tomllib.load(config)
    assert settings["client"]["showErrorDetails"] == "none"
