"""Named contacts: adding, reading, cleaning, duplicate detection, edits with version checks, leaving, search."""

import sqlite3
from datetime import UTC, date, datetime

import pytest

from crm import audit, clock, contacts, organisations
from crm.access import COMMAND_LINE
from crm.errors import Conflict, DuplicateContact, InvalidFields, NotFound, ValidationError
from tests.conftest import World, copy_world

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
STAMP = "2026-03-02T10:30:00Z"
CONFLICT = (
    "{}'s record was changed by someone else while you were editing. "
    "Reload it to see their changes, then make yours again."
)


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    path, built = template
    target = tmp_path / "crm.db"
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, target)
    yield scene
    scene.db.close()


def _values(world: World, **changes) -> dict:
    values = {"name": "Priya Patel", "organisation_id": world.gp, "branch_id": world.leeds}
    return {**values, **changes}


def _project(record: dict, expected: dict) -> dict:
    return {key: record[key] for key in expected}


def _counts(world: World) -> tuple[int, int]:
    return world.db.table("contacts").count, world.db.table("audit_log").count


def test_add_and_get_whole_record(world):
    """Test that a contact is stored cleaned (trimmed, E.164, extension, normalised email) and read back whole."""
    contact_id = contacts.add(
        world.db,
        world.admin,
        {
            "name": "  Priya Patel ",
            "job_title": " Practice Manager ",
            "organisation_id": str(world.gp),
            "branch_id": world.leeds,
            "phone": "0113 496 0123 ext. 234",
            "mobile": "07400 123456",
            "email": " Priya.Patel@Example.NHS.UK ",
            "notes": "Prefers email.\r\nBest reached before 10am.",
            "is_named_contact": True,
        },
    )

    expected = {
        "id": contact_id,
        "name": "Priya Patel",
        "job_title": "Practice Manager",
        "organisation_id": world.gp,
        "organisation": "Hyde Park Surgery",
        "type_code": "GP_PRACTICE",
        "type_label": "GP practice",
        "branch_id": world.leeds,
        "branch": "Leeds",
        "phone": "+441134960123",
        "phone_ext": "234",
        "mobile": "+447400123456",
        "email": "Priya.Patel@example.nhs.uk",
        "notes": "Prefers email.\nBest reached before 10am.",
        "is_named_contact": 1,
        "status": "active",
        "left_on": None,
        "created_at": STAMP,
        "updated_at": STAMP,
        "version": 1,
        "phone_display": "0113 496 0123 ext. 234",
        "mobile_display": "07400 123456",
        "phone_link": "tel:+441134960123;ext=234",
        "mobile_link": "tel:+447400123456",
    }
    assert _project(contacts.get(world.db, world.admin, contact_id), expected) == expected
    row = world.db.execute_returning_dicts("SELECT created_by, updated_by FROM contacts WHERE id = ?", [contact_id])
    assert row == [{"created_by": world.admin.id, "updated_by": world.admin.id}]


def test_add_minimal_record_defaults(world):
    """Test that a contact with only a name, organisation and branch gets empty, not missing, details."""
    contact_id = contacts.add(world.db, world.manager_leeds, {**_values(world), "is_named_contact": False})

    expected = {
        "name": "Priya Patel",
        "job_title": "",
        "phone": None,
        "phone_ext": None,
        "mobile": None,
        "email": None,
        "notes": "",
        "is_named_contact": 0,
        "status": "active",
        "left_on": None,
        "version": 1,
        "phone_display": "",
        "mobile_display": "",
        "phone_link": "",
        "mobile_link": "",
    }
    assert _project(contacts.get(world.db, world.manager_leeds, contact_id), expected) == expected


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"name": ""}, ValidationError, "Name: is required."),
        ({"name": "   "}, ValidationError, "Name: is required."),
        (
            {"name": "Priya\nPatel"},
            ValidationError,
            "Name: contains a line break or control character; use a single line of text.",
        ),
        ({"name": "P" * 201}, ValidationError, "Name: is too long (201 characters; the limit is 200)."),
        ({"job_title": "J" * 201}, ValidationError, "Job title: is too long (201 characters; the limit is 200)."),
        ({"organisation_id": None}, ValidationError, "Organisation: choose one from the directory."),
        ({"organisation_id": "surgery"}, ValidationError, "Organisation: is not a valid choice."),
        (
            {"organisation_id": 999},
            ValidationError,
            "Organisation: does not exist; pick one from the directory or add it.",
        ),
        ({"branch_id": ""}, ValidationError, "Branch: is required."),
        ({"branch_id": 999}, NotFound, "That branch does not exist or is not one of yours."),
        (
            {"phone": "0113 496"},
            ValidationError,
            "Phone: “0113 496” is not a valid phone number (check the number of digits and the area code).",
        ),
        ({"phone": "call reception"}, ValidationError, "Phone: “call reception” is not a phone number."),
        (
            {"mobile": "07400 123456 ext. 5"},
            ValidationError,
            "Mobile: mobile numbers do not have extensions; put the extension on Phone.",
        ),
        (
            {"mobile": "07700 900"},
            ValidationError,
            "Mobile: “07700 900” is not a valid phone number (check the number of digits and the area code).",
        ),
        (
            {"email": "priya.nhs.net"},
            ValidationError,
            "Email: “priya.nhs.net” is not a valid email address. An email address must have an @-sign.",
        ),
        ({"notes": "x" * 5001}, ValidationError, "Notes: is too long (5001 characters; the limit is 5000)."),
        ({"notes": "bell\x07"}, ValidationError, "Notes: contains a control character that cannot be stored."),
    ],
)
def test_add_refused_field(world, changes, error, message):
    """Test that a refused field gives the exact message and writes nothing."""
    before = _counts(world)

    with pytest.raises(error) as caught:
        contacts.add(world.db, world.admin, _values(world, **changes))

    assert str(caught.value) == message
    assert _counts(world) == before


def test_add_refuses_several_fields_at_once(world):
    """Test that every refused field is reported together as InvalidFields, in form order."""
    with pytest.raises(InvalidFields) as caught:
        contacts.add(
            world.db,
            world.admin,
            {"name": "", "organisation_id": world.gp, "branch_id": None, "phone": "12", "email": "nope"},
        )

    assert [(e.field, str(e)) for e in caught.value.errors] == [
        ("Name", "Name: is required."),
        ("Branch", "Branch: is required."),
        ("Phone", "Phone: “12” is not a valid phone number (check the number of digits and the area code)."),
        ("Email", "Email: “nope” is not a valid email address. An email address must have an @-sign."),
    ]
    assert str(caught.value) == " ".join(str(e) for e in caught.value.errors)
    assert world.db.table("contacts").count == 0


@pytest.mark.parametrize(
    ("existing", "new"),
    [
        ({"email": "priya@example.nhs.uk"}, {"name": "P. Patel", "email": "PRIYA@example.nhs.uk"}),
        ({"phone": "0113 496 0123"}, {"name": "Reception", "phone": "+44 113 496 0123"}),
        ({"mobile": "07400 123456"}, {"name": "Reception", "phone": "07400 123456"}),
        ({"phone": "07400 123456"}, {"name": "Reception", "mobile": "+447400123456"}),
        ({}, {"name": "priya patel"}),
        ({}, {"name": "  PRIYA PATEL  "}),
        ({"name": "Siân Jones"}, {"name": "Sia\u0302n Jones"}),  # typed decomposed, stored composed
    ],
)
def test_duplicate_detected(world, existing, new):
    """Test that the same email, the same phone or mobile, or the same name at the same organisation is caught."""
    first = contacts.add(world.db, world.admin, _values(world, **existing))
    before = _counts(world)

    with pytest.raises(DuplicateContact) as caught:
        contacts.add(world.db, world.manager_leeds, _values(world, **new))

    name = existing.get("name", "Priya Patel")
    assert str(caught.value) == f"This looks like a contact the branch already has: {name}."
    assert [(m["id"], m["name"], m["branch"]) for m in caught.value.matches] == [(first, name, "Leeds")]
    assert _counts(world) == before

    second = contacts.add(world.db, world.manager_leeds, _values(world, **new), allow_duplicate=True)

    assert second == first + 1
    assert _counts(world) == (before[0] + 1, before[1] + 1)


def test_duplicate_lists_every_match(world):
    """Test that all the contacts a new one resembles are listed, a contact who left included."""
    by_email = contacts.add(world.db, world.admin, _values(world, name="Ann Email", email="shared@example.nhs.uk"))
    by_phone = contacts.add(world.db, world.admin, _values(world, name="Bob Phone", phone="0113 496 0500"))
    contacts.mark_left(world.db, world.admin, by_phone, expected_version=1)

    with pytest.raises(DuplicateContact) as caught:
        contacts.add(
            world.db, world.admin, _values(world, name="Cat New", email="shared@example.nhs.uk", phone="0113 496 0500")
        )

    assert [(m["id"], m["status"]) for m in caught.value.matches] == [(by_email, "active"), (by_phone, "left")]
    assert str(caught.value) == "This looks like a contact the branch already has: Ann Email, Bob Phone."


@pytest.mark.parametrize(
    "new",
    [
        {"name": "Priya Patel", "organisation_id": "ot"},  # same name, another organisation
        {"name": "Priya Patel", "branch_id": "york"},  # same name and organisation, another branch
        {"name": "Sam Other", "email": "priya@example.nhs.uk", "branch_id": "york"},
        {"name": "Sam Other", "phone": "0113 496 0123", "branch_id": "bristol"},
    ],
)
def test_not_a_duplicate(world, new):
    """Test that a namesake elsewhere, or a shared detail in another branch, is not taken for a duplicate."""
    contacts.add(world.db, world.admin, _values(world, email="priya@example.nhs.uk", phone="0113 496 0123"))
    resolved = {k: getattr(world, v) if k in ("organisation_id", "branch_id") else v for k, v in new.items()}

    contact_id = contacts.add(world.db, world.admin, _values(world, **resolved))

    assert contacts.get(world.db, world.admin, contact_id)["name"] == new["name"]


def test_same_switchboard_different_extensions_not_duplicates(world):
    """Test that two people behind one switchboard (different extensions) are not flagged as duplicates.

    Regression: similar() compared the E.164 number only, so every colleague on a GP practice's main line
    (the demo gives one number in five an extension) was refused as a duplicate of the first.
    """
    contacts.add(world.db, world.admin, _values(world, name="Ann Reception", phone="0113 496 0000 ext. 201"))

    contact_id = contacts.add(world.db, world.admin, _values(world, name="Bob Manager", phone="0113 496 0000 ext. 202"))

    assert contacts.get(world.db, world.admin, contact_id)["phone_display"] == "0113 496 0000 ext. 202"


def test_update_whole_record_and_audit(world):
    """Test that an edit saves every changed field, bumps the version and logs old and new values."""
    contact_id = contacts.add(
        world.db, world.admin, _values(world, phone="0113 496 0123", email="priya@example.nhs.uk")
    )

    contacts.update(
        world.db,
        world.manager_leeds,
        contact_id,
        _values(
            world, name="Priya Shah", job_title="Care Co-ordinator", phone="0113 496 0124 x9", organisation_id=world.ot
        ),
        expected_version=1,
    )

    expected = {
        "name": "Priya Shah",
        "job_title": "Care Co-ordinator",
        "organisation_id": world.ot,
        "organisation": "Leeds Community OT",
        "type_code": "COMMUNITY_THERAPY",
        "branch": "Leeds",
        "phone": "+441134960124",
        "phone_ext": "9",
        "email": None,
        "status": "active",
        "version": 2,
        "updated_at": STAMP,
    }
    assert _project(contacts.get(world.db, world.admin, contact_id), expected) == expected
    [entry] = [e for e in audit.entries(world.db, "contacts", contact_id) if e["action"] == "update"]
    assert (entry["user_id"], entry["username"], entry["at"]) == (world.manager_leeds.id, "manager.leeds", STAMP)
    assert entry["changes"] == {
        "name": ["Priya Patel", "Priya Shah"],
        "job_title": ["", "Care Co-ordinator"],
        "organisation_id": [world.gp, world.ot],
        "phone": ["+441134960123", "+441134960124"],
        "phone_ext": [None, "9"],
        "email": ["priya@example.nhs.uk", None],
    }
    row = world.db.execute_returning_dicts("SELECT updated_by FROM contacts WHERE id = ?", [contact_id])
    assert row == [{"updated_by": world.manager_leeds.id}]


def test_update_without_changes_writes_nothing(world):
    """Test that saving an unchanged form neither bumps the version nor writes an audit entry."""
    contact_id = contacts.add(world.db, world.admin, _values(world, phone="0113 496 0123 ext. 7"))
    before = _counts(world)
    record = contacts.get(world.db, world.admin, contact_id)

    changed = contacts.update(
        world.db, world.admin, contact_id, _values(world, phone=record["phone_display"]), expected_version=1
    )

    assert changed is False  # the page says "No changes to save." (issue 10, defect 6)
    assert contacts.get(world.db, world.admin, contact_id)["version"] == 1
    assert _counts(world) == before


def test_update_conflict(world):
    """Test that saving over someone else's newer edit is refused, and their edit stays."""
    contact_id = contacts.add(world.db, world.admin, _values(world))
    contacts.update(world.db, world.lead_north, contact_id, _values(world, job_title="Practice Manager"), 1)
    saved = contacts.get(world.db, world.admin, contact_id)
    before = _counts(world)

    with pytest.raises(Conflict) as caught:
        contacts.update(world.db, world.manager_leeds, contact_id, _values(world, job_title="GP Partner"), 1)

    assert str(caught.value) == CONFLICT.format("Priya Patel")
    assert contacts.get(world.db, world.admin, contact_id) == saved
    assert saved["job_title"] == "Practice Manager"
    assert _counts(world) == before


def test_update_refused_field_changes_nothing(world):
    """Test that an edit with a refused field leaves the stored record as it was."""
    contact_id = contacts.add(world.db, world.admin, _values(world))
    saved = contacts.get(world.db, world.admin, contact_id)
    before = _counts(world)

    with pytest.raises(ValidationError) as caught:
        contacts.update(world.db, world.admin, contact_id, _values(world, name="", job_title="New"), 1)

    assert str(caught.value) == "Name: is required."
    assert contacts.get(world.db, world.admin, contact_id) == saved
    assert _counts(world) == before


def test_mark_left_and_reinstate(world):
    """Test that a contact who left keeps their record, with the date, and can be made active again."""
    contact_id = contacts.add(world.db, world.admin, _values(world))

    contacts.mark_left(world.db, world.manager_leeds, contact_id, expected_version=1, left_on=date(2026, 2, 27))

    record = contacts.get(world.db, world.admin, contact_id)
    assert (record["status"], record["left_on"], record["version"]) == ("left", "2026-02-27", 2)
    assert contacts.search(world.db, world.admin) == []
    assert [c["id"] for c in contacts.search(world.db, world.admin, status="left")] == [contact_id]

    contacts.reinstate(world.db, world.manager_leeds, contact_id, expected_version=2)

    record = contacts.get(world.db, world.admin, contact_id)
    assert (record["status"], record["left_on"], record["version"]) == ("active", None, 3)
    entries = audit.entries(world.db, "contacts", contact_id)
    assert [e["action"] for e in entries] == ["update", "update", "create"]
    assert [(e["username"], e["changes"]) for e in entries[:2]] == [
        ("manager.leeds", {"status": ["left", "active"], "left_on": ["2026-02-27", None]}),
        ("manager.leeds", {"status": ["active", "left"], "left_on": [None, "2026-02-27"]}),
    ]


def test_mark_left_defaults_to_today(world):
    """Test that leaving without a date records today."""
    contact_id = contacts.add(world.db, world.admin, _values(world))

    contacts.mark_left(world.db, world.admin, contact_id, expected_version=1)

    assert contacts.get(world.db, world.admin, contact_id)["left_on"] == "2026-03-02"


def test_mark_left_refusals(world):
    """Test that a future leaving date and a stale version are both refused without a change."""
    contact_id = contacts.add(world.db, world.admin, _values(world))
    saved = contacts.get(world.db, world.admin, contact_id)

    with pytest.raises(ValidationError) as caught:
        contacts.mark_left(world.db, world.admin, contact_id, expected_version=1, left_on=date(2026, 3, 3))
    assert str(caught.value) == "Left on: cannot be in the future."
    with pytest.raises(Conflict) as caught:
        contacts.mark_left(world.db, world.admin, contact_id, expected_version=7)
    assert str(caught.value) == CONFLICT.format("Priya Patel")

    assert contacts.get(world.db, world.admin, contact_id) == saved


def test_create_audit_entry(world):
    """Test that adding a contact writes one audit entry with the cleaned values, in the same transaction."""
    contact_id = contacts.add(world.db, world.manager_leeds, _values(world, phone="0113 496 0123", notes="Hi"))

    [entry] = audit.entries(world.db, "contacts", contact_id)
    header = {key: entry[key] for key in ("at", "user_id", "username", "action", "table_name", "row_id")}
    assert header == {
        "at": STAMP,
        "user_id": world.manager_leeds.id,
        "username": "manager.leeds",
        "action": "create",
        "table_name": "contacts",
        "row_id": contact_id,
    }
    expected = {
        "name": "Priya Patel",
        "job_title": "",
        "organisation_id": world.gp,
        "branch_id": world.leeds,
        "phone": "+441134960123",
        "phone_ext": None,
        "mobile": None,
        "email": None,
        "notes": "Hi",
        "is_named_contact": 1,
    }
    assert _project(entry["changes"], expected) == expected


def test_failure_inside_the_write_leaves_nothing(world, monkeypatch):
    """Test that when the audit entry cannot be written the contact is not saved either (one transaction)."""
    before = _counts(world)

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(sqlite3.OperationalError):
        contacts.add(world.db, world.admin, _values(world))

    assert _counts(world) == before
    assert not world.db.conn.in_transaction


def test_failed_update_leaves_row_unchanged(world, monkeypatch):
    """Test that an update whose audit entry fails is rolled back: same version, same values."""
    contact_id = contacts.add(world.db, world.admin, _values(world))
    saved = contacts.get(world.db, world.admin, contact_id)

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(sqlite3.OperationalError):
        contacts.update(world.db, world.admin, contact_id, _values(world, job_title="Changed"), 1)

    assert contacts.get(world.db, world.admin, contact_id) == saved


@pytest.fixture
def people(world) -> dict[str, int]:
    """Contacts to search: several types, organisations, branches, and names holding LIKE wildcards."""
    add = {
        "ann": _values(world, name="Ann Able", job_title="Practice Manager", email="ann@hydepark.example"),
        "ben": _values(world, name="Ben 100% Care", organisation_id=world.ot, job_title="Community OT"),
        "cat": _values(world, name="Cat 100 Care", organisation_id=world.ot),
        "dan": _values(world, name="Dan a_b", branch_id=world.york),
        "eve": _values(world, name="Eve axb", branch_id=world.york),
        "fay": _values(world, name="Fay Field", organisation_id=world.council, branch_id=world.bristol),
        "gus": _values(world, name="Gus Gone"),
        "hal": _values(world, name="Hal back\\slash"),
    }
    ids = {key: contacts.add(world.db, world.admin, values) for key, values in add.items()}
    contacts.mark_left(world.db, world.admin, ids["gus"], expected_version=1)
    return ids


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["Ann Able", "Ben 100% Care", "Cat 100 Care", "Dan a_b", "Eve axb", "Fay Field", "Hal back\\slash"]),
        (
            {"status": None},
            [
                "Ann Able",
                "Ben 100% Care",
                "Cat 100 Care",
                "Dan a_b",
                "Eve axb",
                "Fay Field",
                "Gus Gone",
                "Hal back\\slash",
            ],
        ),
        ({"status": "left"}, ["Gus Gone"]),
        ({"type_code": "COMMUNITY_THERAPY"}, ["Ben 100% Care", "Cat 100 Care"]),
        ({"type_code": "LA_SOCIAL_CARE"}, ["Fay Field"]),
        ({"type_code": "HOSPICE"}, []),
        ({"organisation_id": "gp"}, ["Ann Able", "Dan a_b", "Eve axb", "Hal back\\slash"]),
        ({"organisation_id": "gp", "branch_id": "york"}, ["Dan a_b", "Eve axb"]),
        ({"text": "%"}, ["Ben 100% Care"]),
        ({"text": "100%"}, ["Ben 100% Care"]),
        ({"text": "100"}, ["Ben 100% Care", "Cat 100 Care"]),
        ({"text": "_"}, ["Dan a_b"]),
        ({"text": "a_b"}, ["Dan a_b"]),
        ({"text": "\\"}, ["Hal back\\slash"]),
        ({"text": "  able "}, ["Ann Able"]),
        ({"text": "practice man"}, ["Ann Able"]),
        ({"text": "hydepark.example"}, ["Ann Able"]),
        ({"text": "community ot"}, ["Ben 100% Care", "Cat 100 Care"]),
        ({"text": "Bristol Council"}, ["Fay Field"]),
        ({"text": "nobody"}, []),
        ({"text": "care", "type_code": "COMMUNITY_THERAPY", "limit": 1}, ["Ben 100% Care"]),
    ],
)
def test_search_filters(world, people, filters, expected):
    """Test that search applies every filter given, takes % _ and \\ literally, and sorts by name."""
    resolved = {k: getattr(world, v) if k in ("organisation_id", "branch_id") else v for k, v in filters.items()}

    assert [c["name"] for c in contacts.search(world.db, world.admin, **resolved)] == expected


def test_search_respects_scope(world, people):
    """Test that free-text search never reaches outside the actor's branches."""
    assert [c["name"] for c in contacts.search(world.db, world.manager_york, text="a")] == ["Dan a_b", "Eve axb"]
    assert contacts.search(world.db, world.manager_bristol, text="100") == []


def test_search_rows_match_get(world, people):
    """Test that a search row is the same record get() returns, display fields included."""
    [row] = contacts.search(world.db, world.admin, text="Ann")

    assert row == contacts.get(world.db, world.admin, people["ann"])


def test_get_missing(world):
    """Test that a contact that does not exist is NotFound."""
    with pytest.raises(NotFound) as caught:
        contacts.get(world.db, COMMAND_LINE, 12345)

    assert str(caught.value) == "That contact does not exist or is not in one of your branches."


def test_contact_of_deleted_organisation_refused(world):
    """Test that an organisation is required to exist before a contact is attached to it."""
    organisation = organisations.add(world.db, world.admin, {"name": "Temporary", "type_code": "OTHER"})
    world.db.execute("DELETE FROM organisations WHERE id = ?", [organisation])

    with pytest.raises(ValidationError) as caught:
        contacts.add(world.db, world.admin, _values(world, organisation_id=organisation))

    assert str(caught.value) == "Organisation: does not exist; pick one from the directory or add it."


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"privacy_info_sent_on": "0001-01-01"},
            "Privacy information sent on: 0001-01-01 is before 1990-01-01, the earliest date accepted; check the year.",
        ),
        ({"privacy_info_sent_on": "9999-12-31"}, "Privacy information sent on: cannot be in the future."),
        ({"privacy_info_sent_on": "2026-03-03"}, "Privacy information sent on: cannot be in the future."),
    ],
)
def test_an_implausible_privacy_notice_date_is_refused(world, changes, message):
    """Test that the date privacy information was sent must be a plausible past date, on add and on update.
    Regression: year 1 and year 9999 were accepted."""
    with pytest.raises(ValidationError) as caught:
        contacts.add(world.db, world.admin, _values(world, **changes))
    assert str(caught.value) == message
    contact_id = contacts.add(world.db, world.admin, _values(world, privacy_info_sent_on="2026-03-02"))
    before = _counts(world)

    with pytest.raises(ValidationError) as caught:
        contacts.update(world.db, world.admin, contact_id, _values(world, **changes), expected_version=1)

    assert str(caught.value) == message
    assert _counts(world) == before
    assert contacts.get(world.db, world.admin, contact_id)["privacy_info_sent_on"] == "2026-03-02"


def test_a_leaving_date_before_1990_is_refused(world):
    """Test that marking a contact as left in year 1 is refused and changes nothing."""
    contact_id = contacts.add(world.db, world.admin, _values(world))

    with pytest.raises(ValidationError) as caught:
        contacts.mark_left(world.db, world.admin, contact_id, expected_version=1, left_on=date(1, 1, 1))

    assert str(caught.value) == "Left on: 0001-01-01 is before 1990-01-01, the earliest date accepted; check the year."
    assert contacts.get(world.db, world.admin, contact_id)["status"] == "active"


def test_longest_untouched_lists_a_cells_named_contacts_never_touched_first_then_oldest_touch(world):
    """Coverage's "Who to call": the active named contacts of one branch and partner type, never touched first, then
    by oldest touch (ties by name), at most ``limit``, with how many there are; nobody outside the cell or scope."""
    touched = {
        "Cara Cole": "2025-01-10",
        "Abe Adams": "2025-03-01",
        "Bob Brown": "2025-01-10",
        "Dee Dunn": None,
        "Ann Ash": None,
    }
    ids = {name: world.contact(world.leeds, name) for name in touched}
    for name, day in touched.items():
        world.db.execute("UPDATE contacts SET last_touched_on = ? WHERE id = ?", [day, ids[name]])
    world.contact(world.leeds, "Nat Notnamed", is_named_contact=False)
    left = world.contact(world.leeds, "Lou Left")
    contacts.mark_left(world.db, world.admin, left, 1)
    world.contact(world.leeds, "Otto Ot", organisation_id=world.ot)  # another partner type
    world.contact(world.york, "Yara York")  # another branch

    rows, total = contacts.longest_untouched(
        world.db, world.manager_leeds, branch_id=world.leeds, type_code="GP_PRACTICE", limit=4
    )
    assert [(r["name"], r["last_touched_on"]) for r in rows] == [
        ("Ann Ash", None),
        ("Dee Dunn", None),
        ("Bob Brown", "2025-01-10"),
        ("Cara Cole", "2025-01-10"),
    ]
    assert total == 5
    assert rows[0]["phone_display"] == contacts.get(world.db, world.admin, ids["Ann Ash"])["phone_display"]
    # Another branch's manager asking for Leeds' cell sees no one.
    assert contacts.longest_untouched(
        world.db, world.manager_york, branch_id=world.leeds, type_code="GP_PRACTICE", limit=4
    ) == ([], 0)
