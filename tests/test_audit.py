"""The audit log: every write leaves one entry; audit.search shows administrators everything and regional leads
the entries about their region (deleted records included, through the branch the entry kept); its filters by user
name, record and dates; no password or password hash in any entry; and the Audit log page."""

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm import audit, clock, contacts, db, interactions, retention, testimonials, users
from crm.errors import CRMError, PermissionDenied, SignInFailed
from tests.conftest import PASSWORD, World, copy_world
from tests.pagehelpers import NOT_FOR_YOUR_ROLE, ROOT, new_app, open_page, run_app_on, submit_sign_in, values

SETUP = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)  # when the template world was built: outside the page's 30 days
SETUP_STAMP = "2026-01-05T09:00:00Z"
FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
STAMP = "2026-03-02T10:30:00Z"
WHEN = "2 Mar 2026, 10:30 GMT"  # STAMP as the Audit log page shows it
NEW_PASSWORD = "purple monkey dishwasher"
ROLE_DENIED = "Your role does not allow this."
PAGE_COLUMNS = ["When", "Who", "Did", "Record", "Changes"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The world (regions, branches, users, organisations), built once at SETUP because hashing is slow."""
    path = tmp_path_factory.mktemp("audit") / "crm.db"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: SETUP)
        database = db.connect(path)
        world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
        database.close()
    return path, world


@pytest.fixture
def world(template, db_path, monkeypatch) -> World:
    """A copy of the template world at ``db_path``, the clock stopped at FROZEN (``world.moment`` moves it)."""
    path, built = template
    scene = copy_world(path, built, db_path)
    scene.moment = {"now": FROZEN}
    monkeypatch.setattr(clock, "now", lambda: scene.moment["now"])
    yield scene
    scene.db.close()


def last_id(world: World) -> int:
    return world.db.execute("SELECT coalesce(max(id), 0) FROM audit_log").fetchone()[0]


def entries_after(world: World, entry_id: int) -> list[dict]:
    """Entries written after ``entry_id``, oldest first, without their ids and with changes parsed."""
    rows = world.db.execute_returning_dicts("SELECT * FROM audit_log WHERE id > ? ORDER BY id", [entry_id])
    return [{k: json.loads(v) if k == "changes" else v for k, v in row.items() if k != "id"} for row in rows]


def entry(
    actor, action: str, table: str, row_id: int | None, changes: dict, at: str = STAMP, branch_id: int | None = None
) -> dict:
    """An audit row as stored; ``branch_id`` is the branch the entry is about (None for users, settings...)."""
    return {
        "at": at,
        "user_id": actor.id,
        "username": actor.username,
        "action": action,
        "table_name": table,
        "row_id": row_id,
        "changes": changes,
        "branch_id": branch_id,
    }


def what(rows: list[dict]) -> list[tuple]:
    """Each entry as (action, record type, record id), in the order given."""
    return [(r["action"], r["table_name"], r["row_id"]) for r in rows]


def log_call(world: World, actor, branch_id: int, contact_id: int, summary: str = "Catch-up call") -> int:
    return interactions.log(
        world.db,
        actor,
        {"branch_id": branch_id, "kind_code": "PHONE_CALL", "summary": summary, "contact_ids": [contact_id]},
    )


def add_testimonial(world: World, actor, branch_id: int, contact_id: int) -> int:
    return testimonials.add(
        world.db,
        actor,
        {"branch_id": branch_id, "quote": "Always reliable.", "contact_id": contact_id, "source": "email"},
    )


# Every write leaves an entry.


def test_each_write_leaves_one_whole_entry(world):
    """Test that adding and editing a contact, logging an interaction, marking someone as left, keeping them after
    a retention review and exporting testimonials each write exactly one entry: who, when, what and the
    changes."""
    start = last_id(world)
    priya = contacts.add(
        world.db,
        world.manager_leeds,
        {
            "name": " Priya Patel ",
            "job_title": "Practice Manager",
            "organisation_id": world.gp,
            "branch_id": world.leeds,
            "email": "priya@EXAMPLE.nhs.uk",
            "phone": "0113 496 0123",
        },
    )
    created = {
        "name": "Priya Patel",
        "job_title": "Practice Manager",
        "organisation_id": world.gp,
        "branch_id": world.leeds,
        "mobile": None,
        "email": "priya@example.nhs.uk",
        "notes": "",
        "keep_in_touch_days": None,
        "lawful_basis": "legitimate interests",
        "privacy_info_sent_on": None,
        "do_not_contact": 0,
        "phone": "+441134960123",
        "phone_ext": None,
        "is_named_contact": 1,
    }
    assert entries_after(world, start) == [
        entry(world.manager_leeds, "create", "contacts", priya, created, branch_id=world.leeds)
    ]

    start = last_id(world)
    contacts.update(world.db, world.lead_north, priya, created | {"job_title": "Practice Business Manager"}, 1)
    assert entries_after(world, start) == [
        entry(
            world.lead_north,
            "update",
            "contacts",
            priya,
            {"job_title": ["Practice Manager", "Practice Business Manager"]},
            branch_id=world.leeds,
        )
    ]

    start = last_id(world)
    call = log_call(world, world.manager_leeds, world.leeds, priya)
    assert entries_after(world, start) == [
        entry(
            world.manager_leeds,
            "create",
            "interactions",
            call,
            {
                "branch_id": world.leeds,
                "occurred_on": "2026-03-02",
                "kind_code": "PHONE_CALL",
                "summary": "Catch-up call",
                "notes": "",
                "follow_up_on": None,
                "follow_up_action": "",
                "organisation_id": world.gp,
                "contact_ids": [priya],
            },
            branch_id=world.leeds,
        )
    ]

    start = last_id(world)
    contacts.mark_left(world.db, world.admin, priya, 2)
    assert entries_after(world, start) == [
        entry(
            world.admin,
            "update",
            "contacts",
            priya,
            {"status": ["active", "left"], "left_on": [None, "2026-03-02"]},
            branch_id=world.leeds,
        )
    ]

    start = last_id(world)
    retention.keep(world.db, world.manager_leeds, priya, "Still chairs the discharge group", "2027-03-01")
    assert what(entries_after(world, start)) == [("retention_keep", "contacts", priya)]

    start = last_id(world)
    testimonials.export(world.db, world.lead_north, "csv", "internal", provider="Brightwater", scope_label="North")
    assert entries_after(world, start) == [
        entry(
            world.lead_north,
            "export_testimonials",
            "testimonials",
            None,
            {"format": "csv", "audience": "internal", "count": 0, "scope": "North"},
        )
    ]


def test_a_refused_write_leaves_no_entry(world):
    """Test that a write refused by validation leaves no entry (the entry is in the same transaction)."""
    start = last_id(world)

    with pytest.raises(PermissionDenied):
        retention.set_months(world.db, world.manager_leeds, 6)
    with pytest.raises(CRMError) as raised:
        contacts.add(world.db, world.admin, {"name": " ", "organisation_id": world.gp, "branch_id": world.leeds})
    assert str(raised.value) == "Name: is required."

    assert entries_after(world, start) == []


# Who sees what.


def test_administrator_sees_every_entry(world):
    """Test that an administrator's search returns every entry, newest first, with the changes parsed."""
    contact_id = world.contact(world.bristol, "Bob Bristol", world.council)

    found = audit.search(world.db, world.admin)

    all_ids = [r[0] for r in world.db.execute("SELECT id FROM audit_log ORDER BY id DESC")]
    assert [e["id"] for e in found] == all_ids
    assert {k: v for k, v in found[0].items() if k not in ("id", "changes")} == {
        k: v
        for k, v in entry(world.admin, "create", "contacts", contact_id, {}).items()
        if k not in ("changes", "branch_id")  # search returns what an entry says; the branch is for scoping
    }
    assert found[0]["changes"]["name"] == "Bob Bristol"


@pytest.mark.parametrize("who", ["manager_leeds", "manager_york", "manager_bristol"])
def test_branch_managers_may_not_search(world, who):
    """Test that a branch manager is refused the audit log."""
    with pytest.raises(PermissionDenied) as raised:
        audit.search(world.db, getattr(world, who))

    assert str(raised.value) == ROLE_DENIED


def test_regional_leads_see_their_regions_entries_and_never_anothers(world):
    """Test that a regional lead sees the entries about their region's branches (and its branch managers'
    accounts), contacts, interactions and testimonials, including deleted interactions and testimonials (through
    the branch the entry kept), and none about another region's."""
    leeds = world.contact(world.leeds, "Lou Leeds")
    york = world.contact(world.york, "Yas York")
    bristol = world.contact(world.bristol, "Bob Bristol", world.council)
    contacts.update(
        world.db,
        world.admin,
        bristol,
        {"name": "Bob Bristol", "organisation_id": world.council, "branch_id": world.bristol, "job_title": "OT"},
        1,
    )
    leeds_call = log_call(world, world.manager_leeds, world.leeds, leeds)
    bristol_call = log_call(world, world.manager_bristol, world.bristol, bristol)
    leeds_quote = add_testimonial(world, world.manager_leeds, world.leeds, leeds)
    bristol_quote = add_testimonial(world, world.manager_bristol, world.bristol, bristol)
    interactions.delete(world.db, world.manager_leeds, leeds_call, 1)
    interactions.delete(world.db, world.manager_bristol, bristol_call, 1)
    testimonials.delete(world.db, world.lead_north, leeds_quote)
    testimonials.delete(world.db, world.lead_south, bristol_quote)

    assert what(audit.search(world.db, world.lead_north)) == [
        ("delete", "testimonials", leeds_quote),
        ("delete", "interactions", leeds_call),
        ("create", "testimonials", leeds_quote),
        ("create", "interactions", leeds_call),
        ("create", "contacts", york),
        ("create", "contacts", leeds),
        ("create", "users", world.manager_york.id),
        ("create", "users", world.manager_leeds.id),
        ("create", "branches", world.york),
        ("create", "branches", world.leeds),
    ]
    assert what(audit.search(world.db, world.lead_south)) == [
        ("delete", "testimonials", bristol_quote),
        ("delete", "interactions", bristol_call),
        ("create", "testimonials", bristol_quote),
        ("create", "interactions", bristol_call),
        ("update", "contacts", bristol),
        ("create", "contacts", bristol),
        ("create", "users", world.manager_bristol.id),
        ("create", "branches", world.bristol),
    ]


@pytest.mark.parametrize("kind", ["interactions", "testimonials"])
def test_a_reused_id_does_not_show_a_deleted_record_to_another_region(world, kind):
    """Test that when a deleted interaction's or testimonial's id is taken by a new one in another region, the
    old record's entries stay with its own region (regression: SQLite reuses the highest deleted id, and the
    entry's branch was looked up from whatever row has that id now, so the North lead saw Bristol's deleted
    record, summary and all, and the South lead lost it)."""
    bob = world.contact(world.bristol, "Bob Bristol", world.council)
    lou = world.contact(world.leeds, "Lou Leeds")
    if kind == "interactions":
        old = log_call(world, world.manager_bristol, world.bristol, bob, summary="Talked about Mrs Smith's discharge")
        interactions.delete(world.db, world.manager_bristol, old, 1)
        new = log_call(world, world.manager_leeds, world.leeds, lou)
    else:
        old = add_testimonial(world, world.manager_bristol, world.bristol, bob)
        testimonials.delete(world.db, world.manager_bristol, old)
        new = add_testimonial(world, world.manager_leeds, world.leeds, lou)
    assert new == old  # the id was reused: the situation this test is about

    assert what(audit.search(world.db, world.lead_north, table=kind)) == [("create", kind, new)]
    assert what(audit.search(world.db, world.lead_south, table=kind)) == [("delete", kind, old), ("create", kind, old)]


def test_regional_lead_sees_the_whole_history_of_a_deleted_interaction(world):
    """Test that after an interaction is deleted its region's lead still sees every entry about it, edits
    included (regression: an edit's entry holds only the changed columns, so once the row was gone its branch
    could not be found and the edit vanished from the lead's log)."""
    lou = world.contact(world.leeds, "Lou Leeds")
    call = log_call(world, world.manager_leeds, world.leeds, lou)
    interactions.update(
        world.db,
        world.manager_leeds,
        call,
        {"branch_id": world.leeds, "kind_code": "VISIT", "summary": "Dropped in", "contact_ids": [lou]},
        1,
    )
    interactions.delete(world.db, world.manager_leeds, call, 2)

    assert what(audit.search(world.db, world.lead_north, table="interactions")) == [
        ("delete", "interactions", call),
        ("update", "interactions", call),
        ("create", "interactions", call),
    ]
    assert audit.search(world.db, world.lead_south, table="interactions") == []


# Filters.


@pytest.fixture
def history(world):
    """Five entries on three days, after the template's set-up entries of 2026-01-05:
    1. 2026-02-27 00:00:00 manager.leeds adds Ann (Leeds)
    2. 2026-03-01 23:59:59 manager.york adds Yas (York)
    3. 2026-03-01 23:59:59 ada edits Ann
    4. 2026-03-02 10:30:00 manager.leeds logs a call with Ann
    5. 2026-03-02 10:30:00 ada marks Yas as left
    """
    world.moment["now"] = datetime(2026, 2, 27, 0, 0, 0, tzinfo=UTC)
    ann_values = {"name": "Ann Able", "organisation_id": world.gp, "branch_id": world.leeds}
    ann = contacts.add(world.db, world.manager_leeds, ann_values)
    world.moment["now"] = datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC)
    yas = contacts.add(
        world.db, world.manager_york, {"name": "Yas York", "organisation_id": world.gp, "branch_id": world.york}
    )
    contacts.update(world.db, world.admin, ann, ann_values | {"job_title": "GP"}, 1)
    world.moment["now"] = FROZEN
    call = log_call(world, world.manager_leeds, world.leeds, ann)
    contacts.mark_left(world.db, world.admin, yas, 1)
    world.ann, world.yas, world.call = ann, yas, call
    return world


def test_search_entries_are_whole(history):
    """Test that a search returns whole entries: id, time, user, action, record and parsed changes."""
    first = world_entry_id(history, 1)

    assert audit.search(history.db, history.admin, username="manager.york") == [
        {
            "id": first + 1,
            "at": "2026-03-01T23:59:59Z",
            "user_id": history.manager_york.id,
            "username": "manager.york",
            "action": "create",
            "table_name": "contacts",
            "row_id": history.yas,
            "changes": {
                "name": "Yas York",
                "job_title": "",
                "organisation_id": history.gp,
                "branch_id": history.york,
                "mobile": None,
                "email": None,
                "notes": "",
                "keep_in_touch_days": None,
                "lawful_basis": "legitimate interests",
                "privacy_info_sent_on": None,
                "do_not_contact": 0,
                "phone": None,
                "phone_ext": None,
                "is_named_contact": 1,
            },
        }
    ]


def world_entry_id(world: World, n: int) -> int:
    """The id of the n-th entry of the ``history`` fixture."""
    return world.db.execute("SELECT max(id) FROM audit_log WHERE at = ?", [SETUP_STAMP]).fetchone()[0] + n


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"username": "manager.leeds"}, [4, 1]),
        ({"username": "  manager.leeds "}, [4, 1]),
        ({"username": "ada", "since": "2026-02-01"}, [5, 3]),
        ({"username": "nobody"}, []),
        ({"table": "contacts", "since": "2026-02-01"}, [5, 3, 2, 1]),
        ({"table": "interactions"}, [4]),
        ({"table": "contacts", "row_id": "ann"}, [3, 1]),
        ({"table": "contacts", "row_id": "yas"}, [5, 2]),
        ({"since": "2026-02-27"}, [5, 4, 3, 2, 1]),
        ({"since": "2026-02-28"}, [5, 4, 3, 2]),
        ({"since": "2026-03-02"}, [5, 4]),
        ({"since": "2026-02-27", "until": "2026-02-27"}, [1]),
        ({"since": "2026-02-27", "until": "2026-03-01"}, [3, 2, 1]),
        ({"since": "2026-03-01", "until": "2026-03-01"}, [3, 2]),
        ({"since": "2026-03-03"}, []),
        ({"until": "2026-02-26", "table": "contacts"}, []),
        ({"username": "ada", "table": "contacts", "row_id": "ann", "since": "2026-03-01", "until": "2026-03-01"}, [3]),
    ],
)
def test_search_filters(history, filters, expected):
    """Test that the user name, record type and id, and date filters (inclusive days) each pick exactly the
    right entries, alone and together."""
    if "row_id" in filters:
        filters = filters | {"row_id": getattr(history, filters["row_id"])}

    found = audit.search(history.db, history.admin, **filters)

    assert [e["id"] for e in found] == [world_entry_id(history, n) for n in expected]


@pytest.mark.parametrize(
    ("who", "filters", "expected"),
    [
        ("lead_north", {"since": "2026-02-01"}, [5, 4, 3, 2, 1]),
        ("lead_north", {"username": "manager.york"}, [2]),
        ("lead_north", {"table": "interactions"}, [4]),
        ("lead_north", {"table": "contacts", "since": "2026-03-02"}, [5]),
        ("lead_south", {"since": "2026-02-01"}, []),
        ("lead_south", {"username": "manager.leeds"}, []),
    ],
)
def test_regional_lead_filters_stay_within_the_region(history, who, filters, expected):
    """Test that the filters narrow a regional lead's entries and never reach another region's."""
    found = audit.search(history.db, getattr(history, who), **filters)

    assert [e["id"] for e in found] == [world_entry_id(history, n) for n in expected]


def test_user_name_filter_ignores_letter_case(history):
    """Test that the user name filter finds a user's entries however the name's letters are cased, as user
    names are everywhere else (sign-in, uniqueness)."""
    found = audit.search(history.db, history.admin, username="Manager.Leeds")

    assert [e["id"] for e in found] == [world_entry_id(history, 4), world_entry_id(history, 1)]


# No passwords.


def test_no_password_or_hash_in_any_entry(world):
    """Test that no entry holds a password or a password hash: not when accounts are created, a password is
    changed, or someone signs in (rightly or wrongly, or types their password as the user name)."""
    start = last_id(world)
    users.add_user(world.db, world.admin, "new.lead", "Nat New", "regional_lead", PASSWORD, region_id=world.north)
    users.set_password(world.db, world.admin, "manager.leeds", NEW_PASSWORD)
    users.set_password(world.db, world.manager_york, "manager.york", NEW_PASSWORD)
    for username, password in (("manager.leeds", PASSWORD), (PASSWORD, PASSWORD), (NEW_PASSWORD, "x")):
        with pytest.raises(SignInFailed):
            users.sign_in(world.db, username, password)
    users.sign_in(world.db, "manager.leeds", NEW_PASSWORD)

    rows = world.db.execute_returning_dicts("SELECT * FROM audit_log ORDER BY id")
    text = json.dumps(rows, ensure_ascii=False) + json.dumps(audit.search(world.db, world.admin), ensure_ascii=False)
    hashes = [r[0] for r in world.db.execute("SELECT password_hash FROM users")]
    assert [secret for secret in (PASSWORD, NEW_PASSWORD, "$argon2", "password_hash", *hashes) if secret in text] == []
    assert entries_after(world, start) == [
        entry(
            world.admin,
            "create",
            "users",
            rows[-5]["row_id"],
            {
                "username": "new.lead",
                "display_name": "Nat New",
                "role": "regional_lead",
                "region_id": world.north,
                "branch_id": None,
                "created_at": STAMP,
            },
        ),
        entry(world.admin, "password_changed", "users", world.manager_leeds.id, {}),
        entry(world.manager_york, "password_changed", "users", world.manager_york.id, {}),
        entry(world.manager_leeds, "sign_in_failed", "users", world.manager_leeds.id, {"failed_attempts": 1}),
        entry(world.manager_leeds, "sign_in", "users", world.manager_leeds.id, {}),
    ]


# The Audit log page.


@pytest.fixture
def app_env(monkeypatch, db_path):
    """The app runs on the test's own database file (CRM_DB); see pagehelpers.run_app_on for why AppTest's cookies and
    folder-based multipage mode are switched off."""
    run_app_on(monkeypatch, db_path)


@pytest.fixture
def recent(world):
    """A contact added in Leeds and one in Bristol today; the set-up entries are older than the page's 30 days."""
    world.lou = contacts.add(
        world.db, world.manager_leeds, {"name": "Lou Leeds", "organisation_id": world.gp, "branch_id": world.leeds}
    )
    world.bob = contacts.add(
        world.db,
        world.manager_bristol,
        {"name": "Bob Bristol", "organisation_id": world.council, "branch_id": world.bristol},
    )
    return world


def page_rows(at) -> list[dict]:
    table = at.dataframe[0].value
    assert list(table.columns) == PAGE_COLUMNS
    return [{k: v for k, v in row.items() if k != "Changes"} for row in table.to_dict("records")]


def test_audit_page_for_an_administrator(app_env, recent):
    """Test that an administrator's Audit log page lists the last 30 days' entries of every region, newest first,
    their own sign-in included, and narrows to one user's entries."""
    at = open_page("ada", "audit")

    assert values(at.title) == ["Audit log"]
    assert values(at.error) == []
    assert values(at.main.caption) == ["3 entries"]
    assert page_rows(at) == [
        {"When": WHEN, "Who": "Ada Admin", "Did": "Signed in", "Record": "User: Ada Admin"},
        {"When": WHEN, "Who": "Bea Bristol", "Did": "Added", "Record": "Contact: Bob Bristol (Bristol)"},
        {"When": WHEN, "Who": "Lee Leeds", "Did": "Added", "Record": "Contact: Lou Leeds (Leeds)"},
    ]
    assert at.dataframe[0].value["Changes"][2] == (
        "Name: Lou Leeds; Organisation: Hyde Park Surgery; Branch: Leeds; Lawful basis: legitimate interests; "
        "Do not contact: no; Named contact: yes"
    )
    assert at.checkbox(key="audit_hide_demo").value is True

    at.text_input(key="audit_user").set_value("manager.leeds").run()

    assert not at.exception, at.exception
    assert page_rows(at) == [{"When": WHEN, "Who": "Lee Leeds", "Did": "Added", "Record": "Contact: Lou Leeds (Leeds)"}]


def test_audit_page_for_a_regional_lead(app_env, recent):
    """Test that a regional lead's Audit log page lists only their region's entries."""
    at = open_page("lead.north", "audit")

    assert values(at.title) == ["Audit log"]
    assert values(at.error) == []
    assert values(at.main.caption) == ["1 entry"]
    assert page_rows(at) == [{"When": WHEN, "Who": "Lee Leeds", "Did": "Added", "Record": "Contact: Lou Leeds (Leeds)"}]


def retitle(world: World, times: int) -> None:
    """``times`` changes of Lou Leeds' job title, from "Title 0" → "Title 1" up to "Title times": one entry each."""
    for n in range(1, times + 1):
        change = {"job_title": [f"Title {n - 1}", f"Title {n}"]}
        audit.record(world.db, world.manager_leeds, "update", "contacts", world.lou, change)


def test_audit_page_lists_a_hundred_entries_at_a_time_newest_first(app_env, recent):
    """Test that the Audit log page shows the newest 100 entries with the whole count, and Next the following 100,
    so a provider's whole log costs a rerun no more than a region's."""
    retitle(recent, 250)
    at = open_page("ada", "audit")  # 250 changes, the two contacts added and Ada's sign-in: 253 entries

    assert values(at.main.caption) == ["253 entries, 1 to 100 shown"]
    table = at.dataframe[0].value
    assert len(table) == 100
    assert (table["Who"][0], table["Changes"][0]) == ("Ada Admin", "")  # signing in is the newest
    assert list(table["Changes"][1:3]) == ["Job title: Title 249 → Title 250", "Job title: Title 248 → Title 249"]
    assert table["Changes"][99] == "Job title: Title 151 → Title 152"

    at.button(key="audit_next").click().run()

    assert not at.exception, at.exception
    assert values(at.main.caption) == ["253 entries, 101 to 200 shown"]
    table = at.dataframe[0].value
    assert [table["Changes"][0], table["Changes"][99]] == [
        "Job title: Title 150 → Title 151",
        "Job title: Title 51 → Title 52",
    ]


def test_audit_page_says_when_there_are_more_entries_than_it_counts(app_env, recent):
    """Test that beyond 10,000 entries the Audit log page says "more than 10,000" and its pager "of more than 100"
    pages, not a page count it does not know."""
    retitle(recent, 10_000)
    at = open_page("ada", "audit")

    assert values(at.main.caption) == ["more than 10,000 entries, 1 to 100 shown"]
    assert "Page 1 of more than 100" in values(at.main.markdown)
    assert len(at.dataframe[0].value) == 100


def test_that_the_audit_search_pages_and_counts_in_sql(world, recent):
    """Test that search gives ``limit`` entries after ``offset`` (newest first) and count counts them all, or stops
    just past ``at_most``."""
    retitle(recent, 30)
    lou = {"table": "contacts", "row_id": world.lou}
    newest = audit.search(world.db, world.admin, **lou)

    assert [e["changes"]["job_title"][1] for e in newest[:3]] == ["Title 30", "Title 29", "Title 28"]
    assert newest[-1]["action"] == "create"
    assert audit.search(world.db, world.admin, **lou, limit=10, offset=5) == newest[5:15]
    assert audit.count(world.db, world.admin, **lou) == len(newest) == 31
    assert audit.count(world.db, world.admin, **lou, at_most=10) == 11
    assert audit.count(world.db, world.lead_north, **lou) == 31
    assert audit.count(world.db, world.lead_south, **lou) == 0  # Leeds is not in the south region


def test_audit_page_refuses_a_branch_manager(app_env, recent):
    """Test that a branch manager who reaches the Audit log page gets only the refusal, and no entries."""
    at = submit_sign_in(new_app(ROOT / "pages" / "audit.py").run(), "manager.leeds")

    assert not at.exception, at.exception
    assert values(at.error) == [NOT_FOR_YOUR_ROLE]
    assert len(at.dataframe) == 0
    assert values(at.title) == []


# The history as people read it (audit.history).


def history_rows(world: World, actor=None, **filters) -> list[dict]:
    return [
        {k: v for k, v in row.items() if k != "at"} for row in audit.history(world.db, actor or world.admin, **filters)
    ]


def test_history_names_people_and_records_and_shows_changes_as_people_write_them(world):
    """Test that the readable history gives the time in UK local time with its zone, the user's name, what they
    did in words, the record by its name (a contact with their branch, an interaction with its branch and date,
    a deleted one by the name it had), and each change as "Label: old → new" with phones in national format,
    organisations by name and dates written out; bookkeeping columns are left out."""
    start = last_id(world)
    olive = contacts.add(
        world.db,
        world.manager_leeds,
        {"name": "Olive Oak", "organisation_id": world.gp, "branch_id": world.leeds, "phone": "0113 496 0001"},
    )
    before = contacts.get(world.db, world.manager_leeds, olive)
    world.moment["now"] = datetime(2026, 7, 1, 13, 5, tzinfo=UTC)  # summer: BST
    contacts.update(
        world.db,
        world.manager_leeds,
        olive,
        {**before, "phone": "0113 496 0002", "job_title": "Practice Manager", "organisation_id": world.ot},
        expected_version=before["version"],
    )
    call = interactions.log(
        world.db,
        world.manager_leeds,
        {
            "branch_id": world.leeds,
            "kind_code": "PHONE_CALL",
            "occurred_on": "2026-06-30",
            "summary": "Rota call",
            "contact_ids": [olive],
        },
    )
    interactions.delete(world.db, world.manager_leeds, call, 1)

    rows = [r for r in audit.history(world.db, world.admin) if r["at"] > SETUP_STAMP]
    assert len(rows) == last_id(world) - start
    assert [{k: v for k, v in r.items() if k != "at"} for r in rows] == [
        {
            "When": "1 Jul 2026, 14:05 BST",
            "Who": "Lee Leeds",
            "Did": "Deleted",
            "Record": "Interaction: Rota call (deleted)",
            "Changes": "Branch: Leeds; Organisation: Leeds Community OT; Date: 30 Jun 2026; Kind: Phone call; "
            "Summary: Rota call; Contacts: Olive Oak",
        },
        {
            "When": "1 Jul 2026, 14:05 BST",
            "Who": "Lee Leeds",
            "Did": "Added",
            "Record": "Interaction: Rota call (deleted)",
            "Changes": "Branch: Leeds; Date: 30 Jun 2026; Kind: Phone call; Summary: Rota call; "
            "Organisation: Leeds Community OT; Contacts: Olive Oak",
        },
        {
            "When": "1 Jul 2026, 14:05 BST",
            "Who": "Lee Leeds",
            "Did": "Changed",
            "Record": "Contact: Olive Oak (Leeds)",
            "Changes": "Job title: (none) → Practice Manager; Organisation: Hyde Park Surgery → Leeds Community OT; "
            "Phone: 0113 496 0001 → 0113 496 0002",
        },
        {
            "When": "2 Mar 2026, 10:30 GMT",
            "Who": "Lee Leeds",
            "Did": "Added",
            "Record": "Contact: Olive Oak (Leeds)",
            "Changes": "Name: Olive Oak; Organisation: Hyde Park Surgery; Branch: Leeds; Lawful basis: legitimate "
            "interests; Do not contact: no; Phone: 0113 496 0001; Named contact: yes",
        },
    ]
    assert rows[0]["at"] == "2026-07-01T13:05:00Z"  # kept for files read by machines


def test_history_of_sign_ins_settings_and_exports(world):
    """Test that entries about users, settings and exports read as sentences too: who signed in, the provider's
    name changed, which testimonials were exported for whom."""
    from crm import settings

    start = last_id(world)
    users.sign_in(world.db, "manager.york", PASSWORD)
    settings.put(world.db, world.admin, "provider_name", "Acme Care")
    testimonials.export(world.db, world.lead_north, "docx", "cqc", provider="Acme Care", scope_label="North region")

    rows = [{k: v for k, v in r.items() if k != "at"} for r in audit.history(world.db, world.admin)]
    assert rows[: last_id(world) - start] == [
        {
            "When": "2 Mar 2026, 10:30 GMT",
            "Who": "Nia North",
            "Did": "Exported testimonials",
            "Record": "Testimonials",
            "Changes": "Format: Word; Audience: CQC and commissioners; Count: 0; Covering: North region",
        },
        {
            "When": "2 Mar 2026, 10:30 GMT",
            "Who": "Ada Admin",
            "Did": "Changed",
            "Record": "Settings",
            "Changes": "Provider name: (none) → Acme Care",
        },
        {
            "When": "2 Mar 2026, 10:30 GMT",
            "Who": "Yan York",
            "Did": "Signed in",
            "Record": "User: Yan York",
            "Changes": "",
        },
    ]


def test_history_can_hide_the_demo_set_up(demo_template, tmp_path, monkeypatch):
    """Test that hide_demo leaves out every entry the demo load wrote (thousands), and keeps the entries written
    before it (the first administrator) and after it (a later change)."""
    from tests.conftest import copy_database

    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    copy_database(demo_template, tmp_path / "crm.db")
    database = db.connect(tmp_path / "crm.db")
    admin = users.get(database, 1)
    contact_id = database.execute("SELECT min(id) FROM contacts").fetchone()[0]
    contact = contacts.get(database, admin, contact_id)
    contacts.update(database, admin, contact_id, {**contact, "job_title": "Lead"}, expected_version=contact["version"])

    everything = audit.history(database, admin, limit=100_000)
    shown = audit.history(database, admin, limit=100_000, hide_demo=True)

    assert len(everything) == database.execute("SELECT count(*) FROM audit_log").fetchone()[0] > 1000
    assert [(r["Who"], r["Did"], r["Record"]) for r in shown] == [
        ("Ada Admin", "Changed", f"Contact: {contact['name']} ({contact['branch']})"),
        ("Ada Admin", "Added", "User: Ada Admin"),  # written before anyone was signed in: named by user name
    ]
    database.close()
