"""Retention review: the period setting, who is due (cutoff boundaries, never-touched contacts, kept ones coming
back on their review date, erased ones never), keep() validation, scope, the 0008 schema step, and the Retention
review page."""

from datetime import UTC, date, datetime, time, timedelta

import pytest

from crm import audit, clock, contacts, db, interactions, privacy, retention, schema
from crm.errors import Conflict, NotFound, PermissionDenied, ValidationError
from tests.conftest import World, copy_world
from tests.pagehelpers import button, new_app, run_app_on, sign_in, values

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)  # a Monday
STAMP = "2026-03-02T10:30:00Z"
TODAY = date(2026, 3, 2)
CUTOFF = date(2024, 3, 1)  # 24 months of 30.44 days = 731 days before TODAY
LONG_AGO = date(2020, 1, 6)
MONTHS_MESSAGE = "Review contacts untouched for: must be between 1 and 120 months."
ROLE_DENIED = "Your role does not allow this."
CONTACT_NOT_FOUND = "That contact does not exist or is not in one of your branches."
NOTHING_DUE = "Nothing to review: every contact has been in touch within the period, or was reviewed."
DUE_COLUMNS = ["Name", "Job title", "Organisation", "Branch", "Last touched", "Status", "Last kept because"]


@pytest.fixture
def world(template, db_path, monkeypatch) -> World:
    """A copy of the template world at ``db_path``, with the clock stopped at FROZEN (``world.moment`` moves it)."""
    path, built = template
    scene = copy_world(path, built, db_path)
    scene.moment = {"now": FROZEN}
    monkeypatch.setattr(clock, "now", lambda: scene.moment["now"])
    yield scene
    scene.db.close()


def added_on(world: World, day: date, branch_id: int, name: str, **extra) -> int:
    """Add a contact with the clock set to ``day`` (its created_at), then stop the clock at FROZEN again."""
    world.moment["now"] = datetime.combine(day, time(9, 0), tzinfo=UTC)
    try:
        return world.contact(branch_id, name, **extra)
    finally:
        world.moment["now"] = FROZEN


def touched(world: World, contact_id: int, day: date) -> int:
    """Log a phone call with the contact on ``day`` (so their last touch is that day)."""
    branch_id = world.db["contacts"].get(contact_id)["branch_id"]
    return interactions.log(
        world.db,
        world.admin,
        {
            "branch_id": branch_id,
            "occurred_on": day,
            "kind_code": "PHONE_CALL",
            "summary": "Call",
            "contact_ids": [contact_id],
        },
    )


def old_contact(world: World, branch_id: int, name: str, **extra) -> int:
    """A contact last touched long before the cutoff: due for review."""
    contact_id = world.contact(branch_id, name, **extra)
    touched(world, contact_id, LONG_AGO)
    return contact_id


def names(rows: list[dict]) -> list[str]:
    return [r["name"] for r in rows]


def audit_rows(world: World) -> list[dict]:
    return world.db.execute_returning_dicts("SELECT * FROM audit_log ORDER BY id")


# The period and the cutoff.


def test_default_period_is_24_months(world):
    """Test that a new database reviews contacts untouched for 24 months, whose cutoff is 731 days back."""
    assert retention.months(world.db) == 24
    assert retention.cutoff(world.db, TODAY) == CUTOFF == TODAY - timedelta(days=731)


def test_last_touch_on_the_cutoff_day_is_not_due_and_the_day_before_is(world):
    """Test the boundary: a contact last touched exactly on the cutoff day is not due, one last touched the day
    before it is."""
    cutoff = retention.cutoff(world.db, TODAY)
    on_cutoff = world.contact(world.leeds, "Olive On Cutoff")
    touched(world, on_cutoff, cutoff)
    day_before = world.contact(world.leeds, "Dora Day Before")
    touched(world, day_before, cutoff - timedelta(days=1))

    due = retention.due(world.db, world.admin, today=TODAY)

    assert [(r["id"], r["name"], r["last_touched_on"]) for r in due] == [
        (day_before, "Dora Day Before", (cutoff - timedelta(days=1)).isoformat())
    ]


def test_a_recent_touch_makes_an_old_contact_not_due(world):
    """Test that a contact added long ago but touched since the cutoff is not due."""
    contact_id = added_on(world, LONG_AGO, world.leeds, "Rita Recent")
    touched(world, contact_id, TODAY - timedelta(days=10))

    assert retention.due(world.db, world.admin, today=TODAY) == []


def test_never_touched_contact_is_due_once_created_before_the_cutoff(world):
    """Test that a contact never touched counts from the day it was added: added on the cutoff day it is not
    due, added the day before it is."""
    cutoff = retention.cutoff(world.db, TODAY)
    added_on(world, cutoff, world.leeds, "Nora On Cutoff")
    before = added_on(world, cutoff - timedelta(days=1), world.leeds, "Ned Never")
    world.contact(world.leeds, "Fay Fresh")

    due = retention.due(world.db, world.admin, today=TODAY)

    assert [(r["id"], r["name"], r["last_touched_on"], r["created_at"]) for r in due] == [
        (before, "Ned Never", None, f"{(cutoff - timedelta(days=1)).isoformat()}T09:00:00Z")
    ]


def test_due_lists_never_touched_first_then_oldest_touch(world):
    """Test that due contacts come never-touched first, then by oldest last touch, then by name."""
    newer = old_contact(world, world.leeds, "Amy Newer")
    touched(world, newer, date(2023, 5, 1))
    oldest = old_contact(world, world.leeds, "Zed Oldest")
    same_day = old_contact(world, world.leeds, "Bea Same Day")
    never = added_on(world, LONG_AGO, world.leeds, "Xan Never")

    due = retention.due(world.db, world.admin, today=TODAY)

    assert [(r["id"], r["last_touched_on"]) for r in due] == [
        (never, None),
        (same_day, "2020-01-06"),
        (oldest, "2020-01-06"),
        (newer, "2023-05-01"),
    ]


def test_left_contacts_are_still_due(world):
    """Test that a contact marked as left is still listed for review (their data is still held), with their
    status."""
    contact_id = old_contact(world, world.leeds, "Lena Left")
    contacts.mark_left(world.db, world.admin, contact_id, contacts.get(world.db, world.admin, contact_id)["version"])

    due = retention.due(world.db, world.admin, today=TODAY)

    assert [(r["id"], r["status"], r["left_on"]) for r in due] == [(contact_id, "left", TODAY.isoformat())]


def test_erased_contacts_are_never_due(world):
    """Test that an erased contact is not listed, for anyone, however long ago they were touched or added."""
    erased = old_contact(world, world.leeds, "Erin Erased")
    never_touched = added_on(world, LONG_AGO, world.leeds, "Ewan Erased")
    kept = old_contact(world, world.leeds, "Kim Kept")
    privacy.erase(world.db, world.admin, erased)
    privacy.erase(world.db, world.admin, never_touched)

    for actor in (world.admin, world.lead_north, world.manager_leeds):
        assert [r["id"] for r in retention.due(world.db, actor, today=TODAY)] == [kept]


# keep(): hidden until the next review date.


def test_keep_hides_the_contact_until_its_review_date(world):
    """Test that a kept contact leaves the list until the review date and is listed again on that date, with the
    reason and date stored on the record."""
    contact_id = old_contact(world, world.leeds, "Kit Kept")
    review_on = TODAY + timedelta(days=90)

    retention.keep(world.db, world.manager_leeds, contact_id, "  Still our named contact ", review_on)

    row = world.db["contacts"].get(contact_id)
    assert (row["retention_review_on"], row["retention_reason"], row["updated_by"]) == (
        review_on.isoformat(),
        "Still our named contact",
        world.manager_leeds.id,
    )
    assert retention.due(world.db, world.manager_leeds, today=TODAY) == []
    assert retention.due(world.db, world.manager_leeds, today=review_on - timedelta(days=1)) == []
    assert names(retention.due(world.db, world.manager_leeds, today=review_on)) == ["Kit Kept"]
    assert names(retention.due(world.db, world.manager_leeds, today=review_on + timedelta(days=1))) == ["Kit Kept"]


def test_keep_accepts_an_iso_date_and_is_audited(world):
    """Test that keep() takes the review date as YYYY-MM-DD text and writes one retention_keep audit entry with
    the old and new review date and reason (a new contact's reason is blank)."""
    contact_id = old_contact(world, world.leeds, "Kit Kept")
    before = len(audit_rows(world))

    retention.keep(world.db, world.manager_leeds, contact_id, "Still our named contact", "2026-03-03")

    assert len(audit_rows(world)) == before + 1
    assert audit.entries(world.db, limit=1)[0] | {"id": None} == {
        "id": None,
        "at": STAMP,
        "user_id": world.manager_leeds.id,
        "username": "manager.leeds",
        "action": "retention_keep",
        "table_name": "contacts",
        "row_id": contact_id,
        "changes": {"retention_review_on": [None, "2026-03-03"], "retention_reason": ["", "Still our named contact"]},
    }


def test_keeping_again_audits_the_previous_reason_and_date(world):
    """Test that a second keep() records the previous reason and review date as the old values (regression: the
    audit diff read them from contacts.get(), which does not select the retention columns, so the old values
    were always logged as null)."""
    contact_id = old_contact(world, world.leeds, "Kit Kept")
    retention.keep(world.db, world.admin, contact_id, "Still our named contact", "2026-06-01")

    retention.keep(world.db, world.admin, contact_id, "Chairs the discharge group", "2027-03-01")

    assert audit.entries(world.db, "contacts", contact_id, limit=1)[0]["changes"] == {
        "retention_review_on": ["2026-06-01", "2027-03-01"],
        "retention_reason": ["Still our named contact", "Chairs the discharge group"],
    }


@pytest.mark.parametrize(
    ("reason", "review_on", "message"),
    [
        ("", TODAY + timedelta(days=30), "Reason for keeping: is required."),
        ("   ", TODAY + timedelta(days=30), "Reason for keeping: is required."),
        (
            "Line one\nline two",
            TODAY + timedelta(days=30),
            "Reason for keeping: contains a line break or control character; use a single line of text.",
        ),
        ("Still our named contact", TODAY, "Next review: must be in the future."),
        ("Still our named contact", TODAY - timedelta(days=1), "Next review: must be in the future."),
        ("Still our named contact", "2026-03-02", "Next review: must be in the future."),
        ("Still our named contact", None, "Next review: is required."),
        ("Still our named contact", "", "Next review: is required."),
        (
            "Still our named contact",
            "next year",
            "Next review: “next year” is not a date (use YYYY-MM-DD, e.g. 2026-03-31).",
        ),
    ],
)
def test_keep_refuses_bad_input(world, reason, review_on, message):
    """Test that keep() refuses a blank reason and a review date that is missing, not a date, today or in the
    past, with the exact message, and writes nothing."""
    contact_id = old_contact(world, world.leeds, "Kit Kept")
    row_before, entries_before = world.db["contacts"].get(contact_id), audit_rows(world)

    with pytest.raises(ValidationError) as raised:
        retention.keep(world.db, world.manager_leeds, contact_id, reason, review_on)

    assert str(raised.value) == message
    assert world.db["contacts"].get(contact_id) == row_before
    assert audit_rows(world) == entries_before


def test_keep_outside_scope_is_not_found(world):
    """Test that a manager cannot keep another branch's contact (told it does not exist), and nothing changes."""
    contact_id = old_contact(world, world.leeds, "Kit Kept")
    row_before = world.db["contacts"].get(contact_id)

    for actor in (world.manager_york, world.lead_south):
        with pytest.raises(NotFound) as raised:
            retention.keep(world.db, actor, contact_id, "Still our named contact", TODAY + timedelta(days=30))
        assert str(raised.value) == CONTACT_NOT_FOUND

    assert world.db["contacts"].get(contact_id) == row_before


# The review period setting.


@pytest.mark.parametrize("months", [1, 6, 120])
def test_set_months_changes_the_cutoff(world, months):
    """Test that an administrator can set the period from 1 to 120 months; the cutoff moves with it and the
    change is audited."""
    retention.set_months(world.db, world.admin, months)

    assert retention.months(world.db) == months
    assert retention.cutoff(world.db, TODAY) == TODAY - timedelta(days=round(months * 30.44))
    assert audit.entries(world.db, "settings", limit=1)[0] | {"id": None} == {
        "id": None,
        "at": STAMP,
        "user_id": world.admin.id,
        "username": "ada",
        "action": "update",
        "table_name": "settings",
        "row_id": None,
        "changes": {"retention_months": ["24", str(months)]},
    }


def test_a_shorter_period_makes_more_contacts_due(world):
    """Test that shortening the period lists contacts touched since the old cutoff but before the new one."""
    contact_id = world.contact(world.leeds, "Hal Half Year")
    touched(world, contact_id, TODAY - timedelta(days=200))
    assert retention.due(world.db, world.admin, today=TODAY) == []

    retention.set_months(world.db, world.admin, 6)

    assert names(retention.due(world.db, world.admin, today=TODAY)) == ["Hal Half Year"]


@pytest.mark.parametrize("months", [0, -1, 121, 1000])
def test_set_months_refuses_out_of_range(world, months):
    """Test that a period outside 1..120 months is refused with the exact message and the setting is unchanged."""
    with pytest.raises(ValidationError) as raised:
        retention.set_months(world.db, world.admin, months)

    assert str(raised.value) == MONTHS_MESSAGE
    assert retention.months(world.db) == 24


@pytest.mark.parametrize("who", ["lead_north", "manager_leeds"])
def test_set_months_is_for_administrators_only(world, who):
    """Test that a regional lead or branch manager cannot change the period."""
    with pytest.raises(PermissionDenied) as raised:
        retention.set_months(world.db, getattr(world, who), 6)

    assert str(raised.value) == ROLE_DENIED
    assert retention.months(world.db) == 24


# Scope.


@pytest.mark.parametrize(
    ("who", "branch", "expected"),
    [
        ("admin", None, ["Bob Bristol", "Lou Leeds", "Yas York"]),
        ("admin", "york", ["Yas York"]),
        ("lead_north", None, ["Lou Leeds", "Yas York"]),
        ("lead_north", "leeds", ["Lou Leeds"]),
        ("lead_north", "bristol", []),
        ("lead_south", None, ["Bob Bristol"]),
        ("manager_leeds", None, ["Lou Leeds"]),
        ("manager_leeds", "york", []),
        ("manager_york", None, ["Yas York"]),
        ("manager_bristol", None, ["Bob Bristol"]),
    ],
)
def test_due_scope(world, who, branch, expected):
    """Test that a branch manager only sees their branch's due contacts, a regional lead their region's, and an
    administrator everyone's; a branch filter narrows within that scope and never widens it."""
    old_contact(world, world.leeds, "Lou Leeds")
    old_contact(world, world.york, "Yas York")
    old_contact(world, world.bristol, "Bob Bristol", organisation_id=world.council)

    due = retention.due(
        world.db, getattr(world, who), today=TODAY, branch_id=getattr(world, branch) if branch else None
    )

    assert sorted(names(due)) == expected


def test_due_defaults_to_the_clock(world):
    """Test that without ``today`` the review uses the clock's date."""
    cutoff = retention.cutoff(world.db, TODAY)
    contact_id = world.contact(world.leeds, "Dora Day Before")
    touched(world, contact_id, cutoff - timedelta(days=1))

    assert names(retention.due(world.db, world.admin)) == ["Dora Day Before"]
    world.moment["now"] = FROZEN - timedelta(days=1)
    assert retention.due(world.db, world.admin) == []


# The 0008 schema step.


def test_retention_step_keeps_contacts_and_sets_the_default(db_path):
    """Test that upgrading a database from before 0008_retention keeps every contact unchanged, gives them no
    review date and a blank reason, and stores the 24-month default."""
    old = db.connect(db_path, migrate=False)
    schema.migrations.apply(old, stop_before="0008_retention")
    for statement in (
        "INSERT INTO regions (id, name, created_at) VALUES (1, 'North', '2025-01-01T09:00:00Z')",
        "INSERT INTO branches (id, name, region_id, created_at) VALUES (1, 'Leeds', 1, '2025-01-01T09:00:00Z')",
        "INSERT INTO organisations (id, name, type_code, created_at, updated_at) "
        "VALUES (1, 'Hyde Park Surgery', 'GP_PRACTICE', '2025-01-02T09:00:00Z', '2025-01-02T09:00:00Z')",
        "INSERT INTO contacts (id, branch_id, organisation_id, name, job_title, created_at, updated_at, "
        "last_touched_on, do_not_contact) VALUES (1, 1, 1, 'Priya Patel', 'Practice Manager', "
        "'2025-01-03T09:00:00Z', '2025-01-04T09:00:00Z', '2025-02-01', 1)",
    ):
        old.execute(statement)
    before = old.execute_returning_dicts("SELECT * FROM contacts")
    old.close()

    upgraded = db.connect(db_path)

    after = upgraded.execute_returning_dicts("SELECT * FROM contacts")
    assert [{k: row[k] for k in before[0]} for row in after] == before
    assert [(row["retention_review_on"], row["retention_reason"]) for row in after] == [(None, "")]
    assert retention.months(upgraded) == 24
    assert upgraded.execute("SELECT value FROM settings WHERE key = 'retention_months'").fetchone() == ("24",)
    upgraded.close()


# The Retention review page.


@pytest.fixture
def app_env(monkeypatch, db_path):
    """The app runs on the test's own database file (CRM_DB); see pagehelpers.run_app_on for why AppTest's cookies and
    folder-based multipage mode are switched off."""
    run_app_on(monkeypatch, db_path)


def open_retention(username: str):
    at = sign_in(new_app(), username)
    at.switch_page("pages/retention.py").run()
    assert not at.exception, at.exception
    assert values(at.title) == ["Retention review"]
    return at


def test_page_says_so_when_nothing_is_due(app_env, world):
    """Test that the page shows its success message, and no table, when nothing in the user's scope is due."""
    old_contact(world, world.york, "Yas York")
    world.contact(world.leeds, "Fay Fresh")

    at = open_retention("manager.leeds")

    assert values(at.success) == [NOTHING_DUE]
    assert len(at.dataframe) == 0


def test_page_lists_a_due_contact_for_its_branch_manager(app_env, world):
    """Test that a branch manager sees their branch's due contacts (and not another branch's), each with its
    last touch, status and last reason for keeping (regression: the page read ``retention_reason``, which
    retention.due() did not return, and failed with a KeyError)."""
    old_contact(world, world.leeds, "Olive Old", job_title="Practice Manager")
    added_on(world, LONG_AGO, world.leeds, "Ned Never")
    old_contact(world, world.york, "Yas York")

    at = open_retention("manager.leeds")

    assert values(at.success) == []
    assert len(at.dataframe) == 1
    table = at.dataframe[0].value
    assert list(table.columns) == DUE_COLUMNS
    assert table.to_dict("records") == [
        {
            "Name": "Ned Never",
            "Job title": "",
            "Organisation": "Hyde Park Surgery",
            "Branch": "Leeds",
            "Last touched": "Never",
            "Status": "Active",
            "Last kept because": "",
        },
        {
            "Name": "Olive Old",
            "Job title": "Practice Manager",
            "Organisation": "Hyde Park Surgery",
            "Branch": "Leeds",
            "Last touched": "6 Jan 2020",
            "Status": "Active",
            "Last kept because": "",
        },
    ]
    assert values(at.main.caption) == ["2 to review. Select one to decide."]


def test_page_keeps_the_selected_contact(app_env, world):
    """Test that selecting a due contact and keeping it with a reason stores the reason and next review date,
    confirms it, and leaves nothing to review."""
    contact_id = old_contact(world, world.leeds, "Olive Old")
    at = open_retention("manager.leeds")

    at.session_state["retention_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    assert values(at.subheader) == ["Olive Old"]
    at.text_input(key="retention_reason").set_value("Chairs the discharge group")
    at.date_input(key="retention_review_on").set_value(date(2026, 9, 1))
    button(at, "Keep").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == []
    assert values(at.success) == ["Kept Olive Old until 1 Sep 2026.", NOTHING_DUE]
    row = world.db["contacts"].get(contact_id)
    assert (row["retention_reason"], row["retention_review_on"]) == ("Chairs the discharge group", "2026-09-01")


def test_page_refuses_keeping_without_a_reason(app_env, world):
    """Test that keeping with no reason shows the exact error and stores nothing."""
    contact_id = old_contact(world, world.leeds, "Olive Old")
    at = open_retention("manager.leeds")

    at.session_state["retention_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    button(at, "Keep").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == ["Reason for keeping: is required."]
    row = world.db["contacts"].get(contact_id)
    assert (row["retention_reason"], row["retention_review_on"]) == ("", None)


def test_page_marks_the_selected_contact_as_left(app_env, world):
    """Test that marking the selected contact as left records it, confirms it, and keeps them listed as Left."""
    contact_id = old_contact(world, world.leeds, "Olive Old")
    at = open_retention("manager.leeds")

    at.session_state["retention_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    button(at, "Mark as left").click().run()

    assert not at.exception, at.exception
    assert values(at.success) == ["Olive Old is marked as left."]
    row = world.db["contacts"].get(contact_id)
    assert (row["status"], row["left_on"]) == ("left", TODAY.isoformat())
    assert at.dataframe[0].value["Status"].tolist() == ["Left"]


def test_page_erases_the_selected_contact(app_env, world):
    """Test that erasing the selected contact removes their details and leaves nothing to review."""
    contact_id = old_contact(world, world.leeds, "Olive Old", email="olive@example.org")
    at = open_retention("manager.leeds")

    at.session_state["retention_table"] = {"selection": {"rows": [0], "columns": []}}
    at.run()
    button(at, "Erase").click().run()
    assert values(at.warning)[-1] == "Erase Olive Old? This cannot be undone."
    assert world.db["contacts"].get(contact_id)["erased_at"] is None
    button(at, "Yes, erase").click().run()

    assert not at.exception, at.exception
    assert values(at.success) == ["Erased.", NOTHING_DUE]
    row = world.db["contacts"].get(contact_id)
    assert (row["name"], row["email"], row["erased_at"]) == (privacy.ERASED_NAME, None, STAMP)


# The page names the record by id and version, never by its row number (issue 11, item 1).


def three_due(world: World) -> tuple[int, int, int]:
    """Ann, Bob and Cat of Leeds, due for review and listed in that order (same last touch, then by name)."""
    ids = [
        old_contact(world, world.leeds, name, email=f"{name.split()[0].lower()}@example.org")
        for name in ("Ann Above", "Bob Chosen", "Cat Below")
    ]
    return ids[0], ids[1], ids[2]


def select_row(at, row: int):
    """Select a row of the table as a click in the browser does, and run."""
    at.session_state["retention_table"] = {"selection": {"rows": [row], "columns": []}}
    at.run()
    assert not at.exception, at.exception
    return at


def colleague_acts_on(world: World, how: str, contact_id: int) -> None:
    """Another user (the regional lead) deals with a contact through crm, as their own page would."""
    if how == "keeps":
        retention.keep(world.db, world.lead_north, contact_id, "Chairs the discharge group", "2027-03-01")
    elif how == "erases":
        privacy.erase(world.db, world.lead_north, contact_id)
    else:
        version = world.db["contacts"].get(contact_id)["version"]
        contacts.mark_left(world.db, world.lead_north, contact_id, version)


@pytest.mark.parametrize("colleague", ["keeps", "erases"])
def test_page_erases_the_chosen_contact_when_a_colleague_acted_above_it(app_env, world, colleague):
    """Test that a user who chose Bob (row 2) erases Bob, after being asked "Erase Bob Chosen?", even when a
    colleague dealt with Ann above him in between, so that Cat now sits in Bob's row (regression: the row number
    was applied to the list read afresh, and Cat was erased with one click)."""
    ann, bob, cat = three_due(world)
    at = select_row(open_retention("manager.leeds"), 1)
    assert values(at.subheader) == ["Bob Chosen"]
    colleague_acts_on(world, colleague, ann)
    cat_before = world.db["contacts"].get(cat)

    button(at, "Erase").click().run()
    assert values(at.warning)[-1] == "Erase Bob Chosen? This cannot be undone."
    button(at, "Yes, erase").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == []
    assert values(at.success) == ["Erased."]
    bob_row = world.db["contacts"].get(bob)
    assert (bob_row["name"], bob_row["email"], bob_row["erased_at"]) == (privacy.ERASED_NAME, None, STAMP)
    assert world.db["contacts"].get(cat) == cat_before
    assert at.dataframe[0].value["Name"].tolist() == ["Cat Below"]


def test_page_keeps_the_chosen_contact_when_a_colleague_acted_above_it(app_env, world):
    """Test that keeping after a colleague kept the contact above keeps the contact the user chose, not the one now
    in its row, and says so by name."""
    ann, bob, cat = three_due(world)
    at = select_row(open_retention("manager.leeds"), 1)
    colleague_acts_on(world, "keeps", ann)
    cat_before = world.db["contacts"].get(cat)

    at.text_input(key="retention_reason").set_value("Still our named contact")
    at.date_input(key="retention_review_on").set_value(date(2026, 9, 1))
    button(at, "Keep").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == []
    assert values(at.success) == ["Kept Bob Chosen until 1 Sep 2026."]
    bob_row = world.db["contacts"].get(bob)
    assert (bob_row["retention_reason"], bob_row["retention_review_on"]) == ("Still our named contact", "2026-09-01")
    assert world.db["contacts"].get(cat) == cat_before
    assert at.dataframe[0].value["Name"].tolist() == ["Cat Below"]


def test_page_marks_the_chosen_contact_as_left_when_a_colleague_acted_above_it(app_env, world):
    """Test that marking as left after a colleague erased the contact above marks the contact the user chose."""
    ann, bob, cat = three_due(world)
    at = select_row(open_retention("manager.leeds"), 1)
    colleague_acts_on(world, "erases", ann)
    cat_before = world.db["contacts"].get(cat)

    button(at, "Mark as left").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == []
    assert values(at.success) == ["Bob Chosen is marked as left."]
    assert (world.db["contacts"].get(bob)["status"], world.db["contacts"].get(bob)["left_on"]) == ("left", "2026-03-02")
    assert world.db["contacts"].get(cat) == cat_before


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("erase", "Bob Chosen's record was changed by someone else after you chose it, so nothing was erased."),
        ("keep", "Bob Chosen's record was changed by someone else after you chose it, so they were not kept."),
    ],
)
def test_page_refuses_to_act_on_a_contact_changed_since_it_was_chosen(app_env, world, action, message):
    """Test that when a colleague changed the chosen contact itself (marked them as left) after the user chose them,
    erasing or keeping is refused with a message naming them, and their record is left as the colleague left it."""
    ann, bob, cat = three_due(world)
    at = select_row(open_retention("manager.leeds"), 1)
    colleague_acts_on(world, "marks as left", bob)
    bob_before = world.db["contacts"].get(bob)

    if action == "erase":
        button(at, "Erase").click().run()
        button(at, "Yes, erase").click().run()
    else:
        at.text_input(key="retention_reason").set_value("Still our named contact")
        button(at, "Keep").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == [message + " Look at it again, then decide."]
    assert world.db["contacts"].get(bob) == bob_before
    assert "Someone has changed this contact since you chose them: select them again to act on their record." in (
        values(at.info)
    )


def test_page_erases_nothing_when_the_user_cancels(app_env, world):
    """Test that pressing Cancel at "Erase Bob Chosen?" erases nobody and stops asking."""
    ann, bob, cat = three_due(world)
    before = world.db.execute_returning_dicts("SELECT * FROM contacts ORDER BY id")
    at = select_row(open_retention("manager.leeds"), 1)

    button(at, "Erase").click().run()
    button(at, "Cancel").click().run()

    assert not at.exception, at.exception
    assert "Erase Bob Chosen? This cannot be undone." not in values(at.warning)
    assert [b.label for b in at.button if b.label == "Yes, erase"] == []
    assert world.db.execute_returning_dicts("SELECT * FROM contacts ORDER BY id") == before


def test_page_says_when_the_chosen_contact_was_dealt_with_by_someone_else(app_env, world):
    """Test that when a colleague kept the very contact the user chose, the page says so and offers no action on
    whoever now sits in that row."""
    ann, bob, cat = three_due(world)
    at = select_row(open_retention("manager.leeds"), 1)
    colleague_acts_on(world, "keeps", bob)

    at.run()

    assert not at.exception, at.exception
    assert values(at.info) == [
        "Bob Chosen is no longer due for review: someone has dealt with them since you chose them."
    ]
    assert [b.label for b in at.main.button] == []
    assert values(at.subheader) == []


def test_keep_refuses_a_stale_version(world):
    """Test that keep() with the version the contact was chosen at is refused once the contact has changed, and
    writes nothing."""
    contact_id = old_contact(world, world.leeds, "Olive Old")
    chosen = world.db["contacts"].get(contact_id)["version"]
    contacts.mark_left(world.db, world.admin, contact_id, chosen)
    before = (world.db["contacts"].get(contact_id), world.db["audit_log"].count)

    with pytest.raises(Conflict) as refused:
        retention.keep(world.db, world.manager_leeds, contact_id, "Still ours", "2027-01-01", expected_version=chosen)

    assert str(refused.value) == (
        "Olive Old's record was changed by someone else after you chose it, so they were not kept. "
        "Look at it again, then decide."
    )
    assert (world.db["contacts"].get(contact_id), world.db["audit_log"].count) == before


def test_an_administrators_review_reads_only_the_contacts_before_the_cutoff_from_its_index(world):
    """Test that the contacts due for review are found through idx_contacts_review (0023_retention_review_index),
    reading from it alone only those untouched since the cutoff: an administrator's page read all 75,000 contacts
    on every rerun."""
    due = old_contact(world, world.leeds, "Olive Old")
    old_contact(world, world.york, "Yasmin Yore")
    touched(world, old_contact(world, world.leeds, "Rita Recent"), FROZEN.date())
    plans: list[list[str]] = []
    execute = world.db.execute

    def explained(sql, params=()):
        if "count(*) OVER ()" in sql:
            plans.append([row[-1] for row in execute(f"EXPLAIN QUERY PLAN {sql}", params)])
        return execute(sql, params)

    world.db.execute = explained  # type: ignore[method-assign]
    try:
        shown, count = retention.due_first(world.db, world.admin, 1)
    finally:
        world.db.execute = execute  # type: ignore[method-assign]

    assert ([row["id"] for row in shown], count) == ([due], 2)
    [plan] = plans
    reads = [step for step in plan if step.startswith(("SCAN c", "SEARCH c"))]
    assert reads == ["SEARCH c USING COVERING INDEX idx_contacts_review (<expr><?)"], plan
