"""Page tests for interactions with Streamlit's AppTest: quick-log and history on a contact, the NHS number
confirmation, the Interactions page's log form, and the "This week" follow-ups for a manager and a regional lead."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
from streamlit.testing.v1 import AppTest

from crm import clock, contacts, dates, interactions
from crm.errors import ValidationError
from crm.ui.widgets import day
from tests.conftest import World, copy_world
from tests.pagehelpers import button, fill, new_app, open_section, rendered_text, run_app_on, sign_in, values

NHS_WARNING = (
    "Notes: contains what looks like an NHS number. Partner records must not hold details of the people you "
    "support: remove it, or confirm that it is not an NHS number."
)
SAVE_ANYWAY = "It is not client data: save anyway"
TIMELINE_COLUMNS = ["Date", "Kind", "Summary", "Follow-up", "Logged by", "Notes"]


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


def interaction_rows(world: World) -> list[dict]:
    return list(world.db["interactions"].rows_where(order_by="id"))


def links(world: World) -> list[tuple[int, int]]:
    return [(r["interaction_id"], r["contact_id"]) for r in world.db["interaction_contacts"].rows]


def open_on(username: str, page: str, **query_params: str) -> AppTest:
    """A new tab, signed in as ``username``, on ``page`` (e.g. "pages/contacts.py") with these query parameters."""
    at = sign_in(new_app(), username)
    at.switch_page(page)
    at.query_params.update(query_params)
    at.run()
    assert not at.exception, at.exception
    return at


def open_contact(username: str, contact_id: int) -> AppTest:
    return open_on(username, "pages/contacts.py", contact=str(contact_id))


def timeline(at: AppTest) -> list[dict]:
    """The rows of the History table, the only table on a contact's page."""
    [table] = at.dataframe
    return table.value.to_dict("records")


def stored(row: dict, *columns: str) -> dict:
    return {column: row[column] for column in columns}


COLUMNS = (
    "branch_id",
    "organisation_id",
    "occurred_on",
    "kind_code",
    "summary",
    "notes",
    "follow_up_on",
    "follow_up_action",
    "follow_up_done_on",
    "created_by",
    "version",
)


# Quick-log on a contact's page.


def test_that_quick_log_on_a_contact_writes_one_row_and_the_history_shows_it(world):
    """Test that saving the quick-log pop-over on a contact's page stores one interaction for that contact (in
    their branch, at their organisation, by the signed-in user), shows it in History, marks the contact as just
    touched and empties the form."""
    contact_id = world.contact(world.leeds, "Quentin Quarry", job_title="Practice Manager")
    at = open_contact("manager.leeds", contact_id)
    assert [p.proto.popover.label for p in at.get("popover")] == ["Log an interaction", "Log a referral"]
    assert values(at.info) == ["Nothing logged yet."]
    assert at.dataframe.len == 0
    key = f"contacts_log_{contact_id}"
    assert (at.selectbox(key=f"{key}_kind").value, at.date_input(key=f"{key}_date").value) == (
        "PHONE_CALL",
        world.today,
    )
    occurred, follow_up = world.today - timedelta(days=3), world.today + timedelta(days=7)

    fill(
        at,
        **{
            f"{key}_kind": "VISIT",
            f"{key}_date": occurred,
            f"{key}_summary": "Dropped in with leaflets",
            f"{key}_notes": "Met at reception",
            f"{key}_follow_up": follow_up,
            f"{key}_follow_up_action": "Send availability",
        },
    )
    button(at, "Save").click().run()

    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    assert values(at.success) == ["Logged: Dropped in with leaflets."]
    [row] = interaction_rows(world)
    assert stored(row, *COLUMNS) == {
        "branch_id": world.leeds,
        "organisation_id": world.gp,
        "occurred_on": occurred.isoformat(),
        "kind_code": "VISIT",
        "summary": "Dropped in with leaflets",
        "notes": "Met at reception",
        "follow_up_on": follow_up.isoformat(),
        "follow_up_action": "Send availability",
        "follow_up_done_on": None,
        "created_by": world.manager_leeds.id,
        "version": 1,
    }
    assert links(world) == [(row["id"], contact_id)]
    assert world.db["contacts"].get(contact_id)["last_touched_on"] == occurred.isoformat()
    assert [s.value for s in at.subheader][:1] == ["History"]
    assert timeline(at) == [
        {
            "Date": dates.day(occurred),
            "Kind": "Visit",
            "Summary": "Dropped in with leaflets",
            "Follow-up": f"{dates.day(follow_up)}: Send availability",
            "Logged by": "Lee Leeds",
            "Notes": "Met at reception",
        }
    ]
    relationship = f"Relationship: **Warm** (last touched {dates.day(occurred)}; keep in touch every 90 days)"
    assert relationship in values(at.markdown)
    assert [at.text_input(key=f"{key}_{name}").value for name in ("summary", "follow_up_action")] == ["", ""]
    assert (at.text_area(key=f"{key}_notes").value, at.date_input(key=f"{key}_follow_up").value) == ("", None)


def test_that_quick_log_with_no_summary_records_a_phone_call_today(world):
    """Test that the two-click quick log (open, Save) records a phone call dated today, summarised for the
    contact, and that a second one adds a second row at the top of the history."""
    contact_id = world.contact(world.leeds, "Quentin Quarry")
    at = open_contact("manager.leeds", contact_id)

    button(at, "Save").click().run()
    button(at, "Save").click().run()

    assert not at.exception, at.exception
    assert values(at.success) == ["Logged: Phone call with Quentin Quarry."]
    rows = interaction_rows(world)
    assert [(r["kind_code"], r["summary"], r["occurred_on"]) for r in rows] == [
        ("PHONE_CALL", "Phone call with Quentin Quarry", world.today.isoformat())
    ] * 2
    assert [(r["Summary"], r["Logged by"]) for r in timeline(at)] == [
        ("Phone call with Quentin Quarry", "Lee Leeds")
    ] * 2


def test_that_quick_log_refusal_shows_the_message_and_writes_nothing(world):
    """Test that a quick log with a follow-up action but no date shows why and writes nothing."""
    contact_id = world.contact(world.leeds, "Quentin Quarry")
    at = open_contact("manager.leeds", contact_id)

    fill(at, **{f"contacts_log_{contact_id}_follow_up_action": "Ring back"})
    button(at, "Save").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == ["Follow-up date: is required when there is a follow-up action."]
    assert interaction_rows(world) == []


# The NHS number question.


def test_that_an_nhs_number_in_quick_log_notes_is_saved_only_after_confirmation(world):
    """Test that notes holding a valid NHS number stop the save with a warning and a "save anyway" button,
    nothing is written until it is pressed (an unrelated rerun keeps the question), and then exactly one row."""
    contact_id = world.contact(world.leeds, "Quentin Quarry")
    at = open_contact("manager.leeds", contact_id)
    notes = "Asked about 943 476 5919"

    fill(at, **{f"contacts_log_{contact_id}_notes": notes})
    button(at, "Save").click().run()

    assert not at.exception, at.exception
    assert values(at.warning) == [NHS_WARNING]
    assert button(at, SAVE_ANYWAY) and button(at, "Cancel")
    assert interaction_rows(world) == []

    at.run()
    assert values(at.warning) == [NHS_WARNING]
    assert interaction_rows(world) == []

    button(at, SAVE_ANYWAY).click().run()

    assert not at.exception, at.exception
    assert values(at.warning) == []
    assert values(at.success) == ["Logged: Phone call with Quentin Quarry."]
    assert [(r["summary"], r["notes"]) for r in interaction_rows(world)] == [("Phone call with Quentin Quarry", notes)]
    assert [r["Notes"] for r in timeline(at)] == [notes]


def test_that_cancelling_the_nhs_number_question_saves_nothing(world):
    """Test that Cancel on the NHS number question drops it, writes nothing, and keeps what was typed."""
    contact_id = world.contact(world.leeds, "Quentin Quarry")
    at = open_contact("manager.leeds", contact_id)
    fill(at, **{f"contacts_log_{contact_id}_notes": "Asked about 9434765919"})
    button(at, "Save").click().run()

    button(at, "Cancel").click().run()

    assert not at.exception, at.exception
    assert values(at.warning) == []
    assert [b.label for b in at.button if b.label == SAVE_ANYWAY] == []
    assert interaction_rows(world) == []
    assert at.text_area(key=f"contacts_log_{contact_id}_notes").value == "Asked about 9434765919"


@pytest.mark.parametrize("notes", ["Rang 0113496012", "Direct line 01134960123", "Switchboard 0113 496 0123"])
def test_that_phone_numbers_in_notes_save_without_a_question(world, notes):
    """Test that ordinary UK phone numbers in the notes save at once, with no NHS number warning."""
    contact_id = world.contact(world.leeds, "Quentin Quarry")
    at = open_contact("manager.leeds", contact_id)

    fill(at, **{f"contacts_log_{contact_id}_notes": notes})
    button(at, "Save").click().run()

    assert not at.exception, at.exception
    assert values(at.warning) == []
    assert [r["notes"] for r in interaction_rows(world)] == [notes]


# The Interactions page.


def test_that_the_interactions_page_logs_an_interaction_with_the_chosen_contacts(world):
    """Test that the full log form offers only the branch's contacts, and stores the interaction with the chosen
    contacts and every field, which then appears in the list."""
    priya = world.contact(world.leeds, "Priya Patel")
    omar = world.contact(world.leeds, "Omar Okafor", world.ot)
    paul = world.contact(world.leeds, "Paul Price")
    world.contact(world.york, "Yasmin Yates")
    at = open_section(open_on("manager.leeds", "pages/interactions.py"), "Log an interaction")
    picker = at.multiselect(key="interactions_log_contacts")
    assert picker.options == [
        "Omar Okafor (Leeds Community OT)",
        "Paul Price (Hyde Park Surgery)",
        "Priya Patel (Hyde Park Surgery)",
    ]
    occurred, follow_up = world.today - timedelta(days=2), world.today + timedelta(days=5)

    picker.set_value([priya, omar])
    fill(
        at,
        interactions_log_date=occurred,
        interactions_log_kind="MEETING",
        interactions_log_summary="Joint review of discharges",
        interactions_log_notes="Agreed a weekly call",
        interactions_log_follow_up=follow_up,
        interactions_log_follow_up_action="Book the first call",
    )
    button(at, "Log interaction").click().run()

    assert not at.exception, at.exception
    assert not at.error, values(at.error)
    assert values(at.success) == ["Logged: Joint review of discharges."]
    [row] = interaction_rows(world)
    assert stored(row, *COLUMNS) == {
        "branch_id": world.leeds,
        "organisation_id": None,  # two organisations: none guessed
        "occurred_on": occurred.isoformat(),
        "kind_code": "MEETING",
        "summary": "Joint review of discharges",
        "notes": "Agreed a weekly call",
        "follow_up_on": follow_up.isoformat(),
        "follow_up_action": "Book the first call",
        "follow_up_done_on": None,
        "created_by": world.manager_leeds.id,
        "version": 1,
    }
    assert sorted(links(world)) == [(row["id"], priya), (row["id"], omar)]
    assert paul not in [c for _, c in links(world)]
    [table] = at.dataframe
    assert table.value.to_dict("records") == [
        {
            "Date": dates.day(occurred),
            "Kind": "Meeting",
            "Summary": "Joint review of discharges",
            "With": "Priya Patel, Omar Okafor",
            "Follow-up": dates.day(follow_up),
            "Logged by": "Lee Leeds",
        }
    ]
    assert at.multiselect(key="interactions_log_contacts").value == []


def test_that_the_interactions_page_asks_before_saving_an_nhs_number(world):
    """Test that the full log form, too, saves notes holding an NHS number only after "save anyway"."""
    priya = world.contact(world.leeds, "Priya Patel")
    at = open_section(open_on("manager.leeds", "pages/interactions.py"), "Log an interaction")
    at.multiselect(key="interactions_log_contacts").set_value([priya])
    fill(at, interactions_log_summary="Call", interactions_log_notes="NHS 943-476-5919")

    button(at, "Log interaction").click().run()
    assert values(at.warning) == [NHS_WARNING]
    assert interaction_rows(world) == []

    button(at, SAVE_ANYWAY).click().run()
    assert not at.exception, at.exception
    assert values(at.success) == ["Logged: Call."]
    assert [(r["summary"], r["notes"]) for r in interaction_rows(world)] == [("Call", "NHS 943-476-5919")]
    assert links(world) == [(interaction_rows(world)[0]["id"], priya)]


def test_that_log_an_interaction_is_drawn_only_while_open(world):
    """Test that the Interactions page's closed "Log an interaction" section draws none of its form (its contact
    picker reads the branch's contacts), that opening it, as a click does, draws the form, and that it stays open
    after a save, ready for the next."""
    priya = world.contact(world.leeds, "Priya Patel")
    at = open_on("lead.north", "pages/interactions.py")
    form_keys = ["interactions_log_branch", "interactions_log_contacts", "interactions_log_summary"]

    def drawn() -> list[str]:
        return [w.key for w in [*at.selectbox, *at.multiselect, *at.text_input] if w.key in form_keys]

    assert drawn() == []
    assert "Log interaction" not in [b.label for b in at.button]

    open_section(at, "Log an interaction")
    assert not at.exception, at.exception
    assert sorted(drawn()) == sorted(form_keys)
    at.selectbox(key="interactions_log_branch").set_value(world.leeds).run()
    fill(at, interactions_log_contacts=[priya], interactions_log_summary="Called the practice")
    button(at, "Log interaction").click().run()
    assert not at.error, values(at.error)
    assert values(at.success) == ["Logged: Called the practice."]
    assert sorted(drawn()) == sorted(form_keys)
    assert at.text_input(key="interactions_log_summary").value == ""


# This week: follow-ups on the home page.


def overdue_follow_up(world: World, branch_id: int, name: str, action: str) -> int:
    """A follow-up three days overdue, with a new contact of the branch."""
    contact_id = world.contact(branch_id, name)
    return interactions.log(
        world.db,
        world.admin,
        {
            "branch_id": branch_id,
            "occurred_on": world.today - timedelta(days=10),
            "kind_code": "PHONE_CALL",
            "summary": f"Called {name}",
            "contact_ids": [contact_id],
            "follow_up_on": world.today - timedelta(days=3),
            "follow_up_action": action,
        },
    )


def done_buttons(at: AppTest) -> list[str]:
    return [b.key for b in at.button if str(b.key).startswith("home_done_")]


def test_that_a_branch_manager_marks_an_overdue_follow_up_done_on_the_home_page(world):
    """Test that "This week" lists the branch's overdue follow-up (and not another branch's), and that "Done"
    opens the dialog asking for the outcome, writing nothing yet (the save and its Undo are browser-tested in
    tests/test_browser_quick.py: AppTest does not rerun a dialog on its own)."""
    leeds = overdue_follow_up(world, world.leeds, "Priya Patel", "Send availability")
    overdue_follow_up(world, world.york, "Yasmin Yates", "Call York back")
    at = open_on("manager.leeds", "pages/home.py")
    assert values(at.title) == ["This week"]
    assert done_buttons(at) == [f"home_done_{leeds}"]
    assert [
        f":red[**Overdue**] · {day((world.today - timedelta(days=3)).isoformat())} · **Send availability**  \n"
        f"After: Called Priya Patel ({day((world.today - timedelta(days=10)).isoformat())})",
    ] == [m for m in values(at.main.markdown) if "Overdue" in m or "Send availability" in m]
    assert "Call York back" not in rendered_text(at)

    at.button(key=f"home_done_{leeds}").click().run()

    assert not at.exception, at.exception
    assert [t.label for t in at.text_input if str(t.key).startswith(f"home_done_{leeds}_")] == [
        "Outcome",
        "Follow-up action",
    ]
    record = interactions.get(world.db, world.admin, leeds)
    assert (record["follow_up_done_on"], record["version"]) == (None, 1)


def test_that_a_regional_leads_home_page_lists_only_their_regions_branches(world):
    """Test that a regional lead's "This week" shows follow-ups and lapsing contacts of their own region's
    branches, grouped by branch, and nothing at all of another region's."""
    york = overdue_follow_up(world, world.york, "Yasmin Yates", "Call York back")
    leeds = overdue_follow_up(world, world.leeds, "Priya Patel", "Send availability")
    overdue_follow_up(world, world.bristol, "Beth Brown", "Send Bristol the leaflet")
    world.contact(world.bristol, "Bob Bristolian")
    world.contact(world.leeds, "Nina Never")

    at = open_on("lead.north", "pages/home.py")

    assert not at.exception, at.exception
    assert done_buttons(at) == [f"home_done_{leeds}", f"home_done_{york}"]
    # Branch headings over the follow-ups (Leeds, York), then over the lapsing contacts (only Leeds has one).
    assert [m for m in values(at.main.markdown) if m.startswith("**") and m.endswith("**")] == [
        "**Leeds**",
        "**York**",
        "**Leeds**",
    ]
    nina = contacts.search(world.db, world.admin, text="Nina Never")[0]["id"]
    assert [b.key for b in at.button if str(b.key).startswith("home_log_contact_")] == [f"home_log_contact_{nina}"]
    assert "Never contacted  \nHyde Park Surgery" in values(at.main.caption)
    text = rendered_text(at)
    assert [s for s in ("Bristol", "Beth Brown", "Bob Bristolian", "Send Bristol the leaflet") if s in text] == []
    assert "Leeds" in text and "York" in text

    # The data is there: the other region's is only out of sight.
    assert {r["branch"] for r in interactions.follow_ups(world.db, world.admin)} == {"Leeds", "York", "Bristol"}
    assert [r["name"] for r in contacts.lapsing(world.db, world.admin)] == ["Bob Bristolian", "Nina Never"]


# Editing on the Interactions page.

CONFLICT = (
    "This interaction was changed by someone else while you were editing. "
    "Reload it to see their changes, then make yours again."
)


def call_with(world: World, contact_id: int, **values) -> int:
    row = {
        "branch_id": world.leeds,
        "occurred_on": world.today,
        "kind_code": "PHONE_CALL",
        "summary": "Catch-up call",
        "contact_ids": [contact_id],
    }
    return interactions.log(world.db, world.admin, {**row, **values})


def edit_values(world: World, contact_id: int, summary: str) -> dict:
    return {"branch_id": world.leeds, "kind_code": "PHONE_CALL", "summary": summary, "contact_ids": [contact_id]}


def test_that_an_interaction_changed_by_someone_else_while_editing_is_not_overwritten(world):
    """Test that when two users open the same interaction and the other saves first, saving the edit form shows
    the conflict message and the database keeps the other user's change."""
    priya = world.contact(world.leeds, "Priya Patel")
    interaction_id = call_with(world, priya)
    at = open_on("manager.leeds", "pages/interactions.py", interaction=str(interaction_id))
    prefix = f"interactions_edit_{interaction_id}"
    assert at.text_input(key=f"{prefix}_summary").value == "Catch-up call"
    interactions.update(world.db, world.lead_north, interaction_id, edit_values(world, priya, "Lead's summary"), 1)

    fill(at, **{f"{prefix}_summary": "Manager's summary"})
    button(at, "Save changes").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == [CONFLICT]
    [row] = interaction_rows(world)
    assert (row["summary"], row["version"], row["updated_by"]) == ("Lead's summary", 2, world.lead_north.id)


def test_that_a_branch_manager_cannot_open_another_branchs_interaction_by_link(world):
    """Test that a link to another branch's interaction shows "not found" and none of its data, and that the
    list holds only the manager's own branch."""
    york = interactions.log(
        world.db,
        world.admin,
        {
            "branch_id": world.york,
            "kind_code": "VISIT",
            "summary": "Visited York surgery",
            "notes": "Spoke to the York practice manager",
            "contact_ids": [world.contact(world.york, "Yasmin Yates")],
        },
    )
    call_with(world, world.contact(world.leeds, "Priya Patel"))

    at = open_on("manager.leeds", "pages/interactions.py", interaction=str(york))

    assert values(at.error) == ["That interaction does not exist or is not in one of your branches."]
    text = rendered_text(at)
    assert [s for s in ("Visited York surgery", "York practice manager", "Yasmin Yates") if s in text] == []
    button(at, "← Back to the list").click().run()
    [table] = at.dataframe
    assert [(r["Summary"], r["With"]) for r in table.value.to_dict("records")] == [("Catch-up call", "Priya Patel")]


def test_that_an_interaction_reopened_after_a_conflict_can_be_saved(world):
    """Test that after a conflict, going back to the list and opening the interaction again shows the other
    user's change and lets the user save theirs on top of it.

    Regression: pages/interactions.py keeps the version it first read in session state for the whole session, so
    every later save of that interaction is refused as a conflict, with no Reload button to get out of it."""
    priya = world.contact(world.leeds, "Priya Patel")
    interaction_id = call_with(world, priya)
    at = open_on("manager.leeds", "pages/interactions.py", interaction=str(interaction_id))
    prefix = f"interactions_edit_{interaction_id}"
    interactions.update(world.db, world.lead_north, interaction_id, edit_values(world, priya, "Lead's summary"), 1)
    fill(at, **{f"{prefix}_summary": "Manager's summary"})
    button(at, "Save changes").click().run()
    assert values(at.error) == [CONFLICT]

    button(at, "← Back to the list").click().run()
    at.query_params["interaction"] = str(interaction_id)
    at.run()
    assert at.text_input(key=f"{prefix}_summary").value == "Lead's summary"
    fill(at, **{f"{prefix}_summary": "Manager's summary"})
    button(at, "Save changes").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == []
    assert values(at.success) == ["Saved changes."]
    [row] = interaction_rows(world)
    assert (row["summary"], row["version"], row["updated_by"]) == ("Manager's summary", 3, world.manager_leeds.id)


def test_that_saving_an_interaction_without_changing_anything_says_there_is_nothing_to_save(world):
    """Test that pressing Save changes on an interaction without changing anything says "No changes to save."
    and writes nothing.

    Regression (issue 10, defect 6): "Saved changes." was shown when nothing had changed."""
    priya = world.contact(world.leeds, "Priya Patel")
    interaction_id = call_with(world, priya)
    at = open_on("manager.leeds", "pages/interactions.py", interaction=str(interaction_id))
    button(at, "Save changes").click().run()

    assert not at.exception, at.exception
    assert (values(at.success), values(at.error)) == ([], [])
    assert "No changes to save." in values(at.info)
    [row] = interaction_rows(world)
    assert row["version"] == 1


def test_that_editing_an_interaction_keeps_a_contact_who_has_moved_organisation(world):
    """Test that saving an edit to an interaction's summary keeps its contacts, even one whose contact record
    has since moved to another organisation.

    Regression: the edit form lists only the contacts of the interaction's organisation, so such a contact is
    silently dropped from the interaction (and their last-touched date recomputed) by an unrelated edit."""
    priya = world.contact(world.leeds, "Priya Patel")
    interaction_id = call_with(world, priya)
    contacts.update(
        world.db, world.admin, priya, {"name": "Priya Patel", "organisation_id": world.ot, "branch_id": world.leeds}, 1
    )
    at = open_on("manager.leeds", "pages/interactions.py", interaction=str(interaction_id))
    prefix = f"interactions_edit_{interaction_id}"

    fill(at, **{f"{prefix}_summary": "Catch-up call about capacity"})
    button(at, "Save changes").click().run()

    assert not at.exception, at.exception
    record = interactions.get(world.db, world.admin, interaction_id)
    assert (record["summary"], record["contact_ids"], record["contacts"]) == (
        "Catch-up call about capacity",
        [priya],
        "Priya Patel",
    )
    assert world.db["contacts"].get(priya)["last_touched_on"] == world.today.isoformat()


# Successors and the quick log's date.


def test_that_a_contact_whose_successor_is_in_another_branch_opens_without_an_error(world):
    """Test that a branch manager can open their contact who left when the successor on record is in another
    branch (set_successor now refuses that, but a record moved to another branch later still leads there),
    and sees nothing of that other branch's contact.

    Regression: pages/contacts.py successor_form called contacts.get for the successor outside any try, so the
    NotFound escaped and the page showed a traceback."""
    leeds = world.contact(world.leeds, "Lara Left")
    contacts.mark_left(world.db, world.admin, leeds, 1)
    york = world.contact(world.york, "Yuri Young", email="yuri@york.example")
    world.db.execute("UPDATE contacts SET successor_id = ? WHERE id = ?", [york, leeds])
    with pytest.raises(ValidationError) as refused:
        contacts.set_successor(world.db, world.lead_north, leeds, york)
    assert str(refused.value) == "Successor: must be a contact of the same branch."

    at = open_contact("manager.leeds", leeds)

    assert not at.exception, at.exception
    assert values(at.header) == ["Lara Left"]
    text = rendered_text(at)
    assert [s for s in ("Yuri Young", "yuri@york.example") if s in text] == []


def test_that_quick_log_defaults_to_the_same_today_the_app_checks_dates_against(world, monkeypatch):
    """Test that the quick log's default date is the app's own today, so a two-click log is never refused as
    being in the future. The clock is set to 23:30 UTC on the day before the server's local date, as on a UK
    server at 00:30 in summer time.

    Regression: crm/ui/widgets.py quick_log uses st.date_input's "today" (the server's local date) for the
    default and the maximum, while crm.interactions checks dates against crm.clock (UTC)."""
    frozen = datetime.combine(date.today() - timedelta(days=1), time(23, 30), tzinfo=UTC)
    monkeypatch.setattr(clock, "now", lambda: frozen)
    priya = world.contact(world.leeds, "Priya Patel")
    at = open_contact("manager.leeds", priya)

    button(at, "Save").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == []
    assert [(r["summary"], r["occurred_on"]) for r in interaction_rows(world)] == [
        ("Phone call with Priya Patel", frozen.date().isoformat())
    ]


# After a contact moves to another branch (issue 11, item 15).


def moved_away(world: World) -> tuple[int, int, int]:
    """Sam Lee and Tom Tan of Leeds on one Leeds meeting; then the regional lead moves Sam to York, where he is
    renamed Samuel Lee-Smith. Returns (sam, tom, meeting)."""
    sam = world.contact(world.leeds, "Sam Lee", email="sam.lee@nhs.net")
    tom = world.contact(world.leeds, "Tom Tan")
    meeting = interactions.log(
        world.db,
        world.manager_leeds,
        {
            "branch_id": world.leeds,
            "occurred_on": world.today - timedelta(days=3),
            "kind_code": "MEETING",
            "summary": "Practice meeting",
            "contact_ids": [sam, tom],
        },
    )
    for actor, changes in (
        (world.lead_north, {"branch_id": world.york}),
        (world.manager_york, {"name": "Samuel Lee-Smith"}),
    ):
        row = contacts.get(world.db, actor, sam)
        contacts.update(world.db, actor, sam, {**row, "phone": row["phone_display"], **changes}, row["version"])
    return sam, tom, meeting


def test_that_the_old_branch_sees_a_moved_contact_without_their_name(world):
    """Test that the Interactions list of the branch a contact left shows them as "a contact now at another
    branch", never by their current name, while the regional lead, who sees both branches, sees the name."""
    moved_away(world)

    at = open_on("manager.leeds", "pages/interactions.py")

    assert [r["With"] for r in at.dataframe[0].value.to_dict("records")] == ["a contact now at another branch, Tom Tan"]
    assert "Samuel" not in rendered_text(at)
    lead_rows = interactions.search(world.db, world.lead_north)
    assert [r["contacts"] for r in lead_rows] == ["Samuel Lee-Smith, Tom Tan"]


def test_that_the_old_branch_opens_an_interaction_with_a_moved_contact(world):
    """Test that the branch a contact left can open an interaction they took part in (regression: a NotFound
    traceback), sees that a contact now at another branch stays linked, and that saving an edit keeps that link."""
    sam, tom, meeting = moved_away(world)

    at = open_on("manager.leeds", "pages/interactions.py", interaction=str(meeting))

    assert values(at.error) == []
    prefix = f"interactions_edit_{meeting}"
    assert at.multiselect(key=f"{prefix}_contacts").value == [tom]
    assert "Also with 1 contact now at another branch, who stay linked to this interaction." in values(at.main.caption)
    assert "Samuel" not in rendered_text(at)

    fill(at, **{f"{prefix}_summary": "Practice meeting (rescheduled)"})
    button(at, "Save changes").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == []
    assert world.db["interactions"].get(meeting)["summary"] == "Practice meeting (rescheduled)"
    assert sorted(
        (r["contact_id"], r["branch_id"])
        for r in world.db["interaction_contacts"].rows_where("interaction_id = ?", [meeting])
    ) == [(sam, world.york), (tom, world.leeds)]


def test_that_a_regional_lead_edits_an_interaction_with_a_moved_contact(world):
    """Test that a regional lead, who can see the moved contact, can still save an edit of the old branch's
    interaction (the contact is not offered as one of the old branch's contacts, and stays linked)."""
    sam, tom, meeting = moved_away(world)
    before = interactions.get(world.db, world.lead_north, meeting)

    interactions.update(
        world.db,
        world.lead_north,
        meeting,
        {**before, "summary": "Renamed", "contact_ids": [sam, tom]},
        before["version"],
    )

    after = interactions.get(world.db, world.lead_north, meeting)
    assert (after["summary"], after["contact_ids"], after["moved_contact_ids"]) == ("Renamed", [sam, tom], [sam])
