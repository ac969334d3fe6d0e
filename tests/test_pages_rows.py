"""Page tests (AppTest) of the rows that list people: This week's follow-ups and lapsing contacts, Coverage's
"Who to call" and the Contacts page's cards. Each row is compared whole: its text, the name's link to the
contact's page (a page link: the app's own navigation, in the same tab), the tel: and mailto: links, and the
buttons, which open their dialogs."""

from datetime import timedelta

import pytest

from crm import clock, dates, interactions
from tests.conftest import World, copy_world
from tests.pagehelpers import ROOT, as_a_phone, new_app, open_page, run_app_on, shown_in, submit_sign_in, values

# Pat's phone and email as every row shows them: tap-to-call and mailto: links, in the caption under the name.
# (In the email's text a word joiner keeps the address from being made a second, automatic link.)
PAT_REACH = (
    "[0113 496 0555 ext. 12](tel:+441134960555;ext=12) · [07400 123456](tel:+447400123456) · "
    "[pat@\u2060hydepark.example](mailto:pat@hydepark.example)"
)
PAT_ABOUT = "Practice Manager, Hyde Park Surgery"


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file (CRM_DB)."""
    run_app_on(monkeypatch, db_path)


@pytest.fixture
def world(template, db_path) -> World:
    """A copy of the template world at the path the app reads, with Pat Phone, a named contact at Leeds' GP
    practice with a phone (and extension), a mobile and an email."""
    path, built = template
    scene = copy_world(path, built, db_path)
    scene.today = clock.now().date()
    scene.pat = scene.contact(
        scene.leeds,
        "Pat Phone",
        job_title="Practice Manager",
        phone="0113 496 0555 ext. 12",
        mobile="07400 123456",
        email="pat@hydepark.example",
    )
    yield scene
    scene.db.close()


def log(world: World, days_ago: int, summary: str, **values) -> int:
    """An interaction at Leeds' GP practice ``days_ago`` days ago, logged by Leeds' manager."""
    return interactions.log(
        world.db,
        world.manager_leeds,
        {
            "branch_id": world.leeds,
            "occurred_on": world.today - timedelta(days=days_ago),
            "kind_code": "PHONE_CALL",
            "summary": summary,
            "organisation_id": world.gp,
            **values,
        },
    )


def dialog_fields(at, key: str) -> list[str]:
    """The labels of the text boxes of the dialog opened by the button ``key`` (its widgets' keys start so)."""
    return [t.label for t in at.text_input if str(t.key).startswith(f"{key}_")]


def test_that_a_follow_up_row_shows_when_what_and_who_with_links_and_its_two_buttons(world):
    """Test that a follow-up on This week shows, in one bordered row: Overdue (or Due) and the date, what to do
    and after what; each person's name as a link to their page on Contacts with their job, organisation, phone
    and mobile as tel: links and email as a mailto: link; a follow-up with no person its organisation; and "Log
    a touch" and "Done", which open their dialogs (Summary, or the Outcome)."""
    overdue = log(
        world,
        10,
        "Called Pat",
        contact_ids=[world.pat],
        follow_up_on=world.today - timedelta(days=2),
        follow_up_action="Send the rota",
    )
    due = log(world, 3, "Visited the surgery", follow_up_on=world.today + timedelta(days=4))
    at = open_page("manager.leeds", "home")

    assert shown_in(at, f"home_follow_up_{overdue}") == [
        (
            "markdown",
            f":red[**Overdue**] · {dates.day(world.today - timedelta(days=2))} · **Send the rota**  \n"
            f"After: Called Pat ({dates.day(world.today - timedelta(days=10))})",
        ),
        ("page_link", "Pat Phone", "contacts", f"contact={world.pat}"),
        ("caption", f"{PAT_ABOUT}  \n{PAT_REACH}"),
        ("button", f"home_log_follow_up_{overdue}", "Log a touch"),
        ("button", f"home_done_{overdue}", "Done"),
    ]
    assert shown_in(at, f"home_follow_up_{due}") == [
        (
            "markdown",
            f"Due · {dates.day(world.today + timedelta(days=4))} · **Follow up**  \n"
            f"After: Visited the surgery ({dates.day(world.today - timedelta(days=3))})",
        ),
        ("caption", "Hyde Park Surgery"),
        ("button", f"home_log_follow_up_{due}", "Log a touch"),
        ("button", f"home_done_{due}", "Done"),
    ]

    at.button(key=f"home_log_follow_up_{overdue}").click().run()
    assert "With **Pat Phone**" in values(at.markdown)
    assert dialog_fields(at, f"home_log_follow_up_{overdue}") == ["Summary", "Follow-up action"]
    at.button(key=f"home_done_{overdue}").click().run()
    assert dialog_fields(at, f"home_done_{overdue}") == ["Outcome", "Follow-up action"]
    assert not at.exception, at.exception


def test_that_a_lapsing_contact_row_shows_their_name_link_relationship_reach_and_log_a_touch(world):
    """Test that a named contact lapsing on This week shows, in one bordered row, their name as a link to their
    page on Contacts, their relationship and last touch, job and organisation, tap-to-call and mailto: links,
    and "Log a touch", which opens its dialog with them."""
    log(world, 200, "Catch-up", contact_ids=[world.pat])
    at = open_page("manager.leeds", "home")

    assert shown_in(at, f"home_contact_{world.pat}") == [
        ("page_link", "Pat Phone", "contacts", f"contact={world.pat}"),
        (
            "caption",
            f"Lapsed, last {dates.day(world.today - timedelta(days=200))}  \n{PAT_ABOUT}  \n{PAT_REACH}",
        ),
        ("button", f"home_log_contact_{world.pat}", "Log a touch"),
    ]
    at.button(key=f"home_log_contact_{world.pat}").click().run()
    assert "With **Pat Phone**" in values(at.markdown)
    assert dialog_fields(at, f"home_log_contact_{world.pat}") == ["Summary", "Follow-up action"]
    assert not at.exception, at.exception


def test_that_who_to_call_shows_each_named_contact_as_a_row_with_links_and_log_a_touch(world):
    """Test that Coverage's "Who to call" shows a never contacted named contact in one bordered row: their name
    as a link to their page on Contacts, "Never contacted", job and organisation, tap-to-call and
    mailto: links, and "Log a touch", which opens its dialog with them."""
    at = open_page("manager.leeds", "coverage")
    at.selectbox(key="coverage_drill_type").set_value("GP_PRACTICE").run()

    assert shown_in(at, f"coverage_person_{world.pat}") == [
        ("page_link", "Pat Phone", "contacts", f"contact={world.pat}"),
        ("caption", f"Never contacted  \n{PAT_ABOUT}  \n{PAT_REACH}"),
        ("button", f"coverage_log_{world.pat}", "Log a touch"),
    ]
    at.button(key=f"coverage_log_{world.pat}").click().run()
    assert "With **Pat Phone**" in values(at.markdown)
    assert not at.exception, at.exception


def test_that_a_page_run_on_its_own_links_names_to_the_same_address(world):
    """Test that Coverage run as a page file on its own (no app.py, so no navigation to link through: the
    benchmark runs pages so) shows each name under "Who to call" as a plain link to the contact's page, the rest
    of the row as in the app."""
    at = submit_sign_in(new_app(ROOT / "pages" / "coverage.py").run(), "manager.leeds")
    at.selectbox(key="coverage_drill_type").set_value("GP_PRACTICE").run()

    assert not at.exception, at.exception
    assert shown_in(at, f"coverage_person_{world.pat}") == [
        ("markdown", f"[Pat Phone](contacts?contact={world.pat})"),
        ("caption", f"Never contacted  \n{PAT_ABOUT}  \n{PAT_REACH}"),
        ("button", f"coverage_log_{world.pat}", "Log a touch"),
    ]


def test_that_a_contacts_card_shows_the_name_link_about_status_and_reach(world, monkeypatch):
    """Test that a card of the Contacts list (the phone's list) shows the name as a link to the contact's page,
    then job and organisation, relationship, and the tel: and mailto: links; for a regional lead, the branch.
    A phone gets the cards and no table."""
    as_a_phone(monkeypatch)
    at = open_page("manager.leeds", "contacts")
    assert not at.dataframe
    assert shown_in(at, f"contacts_card_{world.pat}") == [
        ("page_link", "Pat Phone", "contacts", f"contact={world.pat}"),
        ("caption", f"{PAT_ABOUT}  \nNever contacted  \n{PAT_REACH}"),
    ]
    at = open_page("lead.north", "contacts")
    assert shown_in(at, f"contacts_card_{world.pat}") == [
        ("page_link", "Pat Phone", "contacts", f"contact={world.pat}"),
        ("caption", f"{PAT_ABOUT}  \nNever contacted · Leeds branch  \n{PAT_REACH}"),
    ]


def test_that_a_desktop_gets_the_contacts_list_as_a_table_and_no_cards(world):
    """Test that a browser that is not a phone's gets the Contacts list as a table (its names linking to each
    contact's page) and no card: the cards are not drawn and hidden, they are not drawn at all."""
    at = open_page("manager.leeds", "contacts")
    [table] = at.dataframe
    assert list(table.value["Name"]) == [f"contacts?contact={world.pat}#Pat Phone"]
    with pytest.raises(KeyError):  # no container of that key was drawn
        at.main.get_by_key(f"contacts_card_{world.pat}")
