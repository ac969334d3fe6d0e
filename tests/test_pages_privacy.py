"""Page tests for data protection with Streamlit's AppTest: the contact form's "Data protection" fields (lawful
basis, privacy information date, do not contact), erasing a contact from their page, and how an erased contact's
page looks."""

from datetime import timedelta

import pytest
from streamlit.testing.v1 import AppTest

from crm import clock, contacts, interactions, privacy
from crm.ui.widgets import day
from tests.conftest import World, copy_world
from tests.pagehelpers import button, fill, new_app, rendered_text, run_app_on, sign_in, values

ERASED_FLASH = "Erased. The contact's interactions remain, without their details."
DO_NOT_CONTACT = "Do not contact: this person asked not to be contacted."
SAM = {
    "job_title": "Practice Manager",
    "phone": "0113 496 0123 ext. 45",
    "mobile": "07911 123456",
    "email": "sam.lee@nhs.net",
    "notes": "Prefers calls before 10am.",
}


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file, (see pagehelpers.run_app_on for why AppTest's
    cookies and folder-based multipage mode are switched off)."""
    run_app_on(monkeypatch, db_path)


@pytest.fixture
def world(template, db_path) -> World:
    """A copy of the template world at the path the app reads (CRM_DB)."""
    path, built = template
    scene = copy_world(path, built, db_path)
    scene.today = clock.now().date()
    yield scene
    scene.db.close()


def open_contact(username: str, contact_id: int) -> AppTest:
    """A new tab, signed in as ``username``, on the contact's page (the link the list opens)."""
    at = sign_in(new_app(), username)
    at.switch_page("pages/contacts.py")
    at.query_params["contact"] = str(contact_id)
    at.run()
    assert not at.exception, at.exception
    return at


def add_sam(world: World) -> int:
    """Sam Lee at Hyde Park Surgery (Leeds), with a phone call that names him."""
    sam = world.contact(world.leeds, "Sam Lee", **SAM)
    interactions.log(
        world.db,
        world.manager_leeds,
        {
            "branch_id": world.leeds,
            "occurred_on": world.today - timedelta(days=2),
            "kind_code": "PHONE_CALL",
            "summary": "Phone call with Sam Lee",
            "notes": "Sam Lee will send the rota",
            "contact_ids": [sam],
        },
    )
    return sam


DATA_PROTECTION_COLUMNS = ("lawful_basis", "privacy_info_sent_on", "do_not_contact", "erased_at", "version")


def stored(world: World, contact_id: int) -> dict:
    row = world.db["contacts"].get(contact_id)
    return {k: row[k] for k in ("name", "phone", "phone_ext", "mobile", "email", *DATA_PROTECTION_COLUMNS)}


def test_that_the_edit_form_shows_the_data_protection_fields(world):
    """Test that a contact's edit form shows their lawful basis, privacy information date and do-not-contact."""
    sam = add_sam(world)

    at = open_contact("manager.leeds", sam)

    prefix = f"contacts_edit_{sam}"
    lawful_basis = at.selectbox(key=f"{prefix}_lawful_basis")
    assert (lawful_basis.value, lawful_basis.options) == (
        "legitimate interests",
        ["Legitimate interests", "Consent", "Contract", "Legal obligation", "Public task", "Vital interests"],
    )
    assert at.date_input(key=f"{prefix}_privacy_sent").value is None
    assert at.checkbox(key=f"{prefix}_do_not_contact").value is False
    assert DO_NOT_CONTACT not in values(at.warning)


def test_that_a_manager_sets_do_not_contact_and_a_lawful_basis(world):
    """Test that a branch manager who changes the lawful basis, the privacy information date and do-not-contact in
    the edit form and saves updates the database row (nothing else), is told so, and sees the do-not-contact
    warning."""
    sam = add_sam(world)
    before = stored(world, sam)
    at = open_contact("manager.leeds", sam)
    prefix = f"contacts_edit_{sam}"
    sent = world.today - timedelta(days=10)

    fill(at, **{f"{prefix}_lawful_basis": "consent", f"{prefix}_privacy_sent": sent, f"{prefix}_do_not_contact": True})
    button(at, "Save changes").click().run()

    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    assert values(at.success) == ["Saved changes to Sam Lee."]
    assert stored(world, sam) == {
        **before,
        "lawful_basis": "consent",
        "privacy_info_sent_on": sent.isoformat(),
        "do_not_contact": 1,
        "version": before["version"] + 1,
    }
    assert DO_NOT_CONTACT in values(at.warning)
    assert at.selectbox(key=f"{prefix}_lawful_basis").value == "consent"
    assert at.date_input(key=f"{prefix}_privacy_sent").value == sent
    assert at.checkbox(key=f"{prefix}_do_not_contact").value is True


def test_that_a_manager_erases_a_contact_by_typing_their_name(world):
    """Test that typing the contact's name and pressing "Erase this person" erases them: the row is blanked and
    marked erased, the interaction stays without their name, and the page shows them as erased."""
    sam = add_sam(world)
    at = open_contact("manager.leeds", sam)
    assert at.button(key="contacts_erase").disabled is True

    fill(at, contacts_erase_confirm="Sam Lee").run()
    assert at.button(key="contacts_erase").disabled is False
    at.button(key="contacts_erase").click().run()

    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    row = world.db["contacts"].get(sam)
    assert row["erased_at"] is not None
    assert stored(world, sam) == {
        "name": "Erased contact",
        "phone": None,
        "phone_ext": None,
        "mobile": None,
        "email": None,
        "lawful_basis": "legitimate interests",
        "privacy_info_sent_on": None,
        "do_not_contact": 1,
        "erased_at": row["erased_at"],
        "version": 2,
    }
    assert [(r["summary"], r["notes"]) for r in world.db["interactions"].rows] == [
        ("Phone call with [erased]", "[erased] will send the rota")
    ]
    assert values(at.success) == [ERASED_FLASH]
    assert [h.value for h in at.header] == ["Erased contact"]
    assert values(at.info) == [f"This person's details were erased on {day(row['erased_at'][:10])} at their request."]
    assert "Sam Lee" not in rendered_text(at)


@pytest.mark.parametrize("typed", ["", "sam lee", "Sam", "Samuel Lee"])
def test_that_erase_stays_disabled_until_the_exact_name_is_typed(world, typed):
    """Test that the erase button stays disabled unless the contact's name is typed exactly, and nothing is
    erased."""
    sam = add_sam(world)
    before = stored(world, sam)
    at = open_contact("manager.leeds", sam)

    fill(at, contacts_erase_confirm=typed).run()

    assert not at.exception, at.exception
    assert at.button(key="contacts_erase").disabled is True
    assert stored(world, sam) == before


def test_that_an_erased_contact_shows_as_erased(world):
    """Test that opening an erased contact's page shows only that they were erased: no details, no history, no
    edit form, no export and no second erase."""
    sam = add_sam(world)
    privacy.erase(world.db, world.manager_leeds, sam)
    erased_on = world.db["contacts"].get(sam)["erased_at"][:10]

    at = open_contact("manager.leeds", sam)

    assert not at.error, values(at.error)
    assert [h.value for h in at.header] == ["Erased contact"]
    assert values(at.info) == [f"This person's details were erased on {day(erased_on)} at their request."]
    assert [b.label for b in at.main.button] == ["← Back to the list"]
    assert at.dataframe.len == 0
    assert at.main.text_input.len == 0  # (the sidebar holds the search box)
    text = rendered_text(at)
    assert [t for t in ("Sam Lee", "sam.lee@nhs.net", "0113 496 0123", "07911 123456") if t in text] == []


def test_that_erasing_a_contact_of_another_branch_is_not_possible(world):
    """Test that a manager of another branch opening the contact's link is told it is not theirs, with no way to
    export or erase it."""
    sam = add_sam(world)

    at = open_contact("manager.york", sam)

    assert values(at.error) == ["That contact does not exist or is not in one of your branches."]
    assert [b.label for b in at.main.button] == ["← Back to the list"]
    assert world.db["contacts"].get(sam)["erased_at"] is None


def test_that_the_export_buttons_offer_both_forms(world):
    """Test that the contact page offers the readable and the JSON export of everything held about them."""
    sam = add_sam(world)

    at = open_contact("manager.leeds", sam)

    assert [b.proto.label for b in at.get("download_button")] == ["Export (readable text)", "Export (JSON)"]


def test_that_the_erase_step_names_the_person(world):
    """Test that the contact page's erase step, once the name is typed, asks "Erase Sam Lee? This cannot be
    undone.", naming the person, before the erase button can be pressed."""
    sam = add_sam(world)
    at = open_contact("manager.leeds", sam)
    assert at.text_input(key="contacts_erase_confirm").label == "Type their name to confirm"
    assert values(at.warning) == []

    fill(at, contacts_erase_confirm="Sam Lee").run()

    assert values(at.warning) == ["Erase Sam Lee? This cannot be undone."]
    assert at.button(key="contacts_erase").disabled is False
    assert world.db["contacts"].get(sam)["erased_at"] is None


def test_that_a_contact_changed_after_the_page_was_opened_is_not_erased(world):
    """Test that erasing from a contact's page opened before a colleague changed the contact is refused with a
    message naming them, and the record keeps the colleague's change (the erasure names the record by id and the
    version the page showed)."""
    sam = add_sam(world)
    at = open_contact("manager.leeds", sam)
    row = contacts.get(world.db, world.lead_north, sam)
    contacts.update(
        world.db, world.lead_north, sam, {**row, "phone": row["phone_display"], "job_title": "Operations"}, 1
    )
    before = stored(world, sam)

    fill(at, contacts_erase_confirm="Sam Lee").run()
    at.button(key="contacts_erase").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == [
        "Sam Lee's record was changed by someone else after you chose it, so nothing was erased. "
        "Look at it again, then decide."
    ]
    assert stored(world, sam) == before
    assert world.db["contacts"].get(sam)["job_title"] == "Operations"
