"""Interactions and follow-ups: logging, validation, last-touched dates, relationship status, lapsing contacts,
successors, partner types' keep-in-touch intervals, the 0002 schema step, scope, edit conflicts, NHS numbers."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlite_utils import Database

from crm import audit, clock, contacts, db, fields, interactions, organisations, schema
from crm.access import COMMAND_LINE, Actor
from crm.errors import (
    AlreadyExists,
    Conflict,
    InvalidFields,
    NotFound,
    PermissionDenied,
    PossibleClientData,
    ValidationError,
)
from tests.conftest import World, copy_world

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)  # a Monday
STAMP = "2026-03-02T10:30:00Z"
TODAY = date(2026, 3, 2)
CONFLICT = (
    "This interaction was changed by someone else while you were editing. "
    "Reload it to see their changes, then make yours again."
)
INTERACTION_NOT_FOUND = "That interaction does not exist or is not in one of your branches."
CONTACT_NOT_FOUND = "That contact does not exist or is not in one of your branches."
BRANCH_NOT_FOUND = "That branch does not exist or is not one of yours."
NHS_WARNING = (
    "{}: contains what looks like an NHS number. Partner records must not hold details of the people you "
    "support: remove it, or confirm that it is not an NHS number."
)
VALID_NHS_NUMBER = "943 476 5919"


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    path, built = template
    target = tmp_path / "crm.db"
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, target)
    yield scene
    scene.db.close()


def ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def log(world: World, contact_ids: list[int], actor: Actor | None = None, **values) -> int:
    """Log an interaction in the contacts' branch (Leeds unless ``branch_id`` says otherwise)."""
    row = {
        "branch_id": world.leeds,
        "occurred_on": TODAY,
        "kind_code": "PHONE_CALL",
        "summary": "Catch-up call",
        "contact_ids": contact_ids,
        **values,
    }
    return interactions.log(world.db, actor or world.admin, row)


def counts(world: World) -> dict[str, int]:
    return {t: world.db.table(t).count for t in ("interactions", "interaction_contacts", "audit_log")}


def listed(row: dict) -> dict:
    """What get() returns, as a list row (follow_ups, search): the same columns without contact_ids and
    moved_contact_ids."""
    return {k: v for k, v in row.items() if k not in ("contact_ids", "moved_contact_ids")}


# Logging: the whole record.


def test_log_and_get_whole_record(world):
    """Test that a logged interaction is stored cleaned and read back whole: the organisation taken from its
    contacts, the contacts' names in one string, duplicates dropped, and who logged it."""
    priya = world.contact(world.leeds, "Priya Patel")
    paul = world.contact(world.leeds, "Paul Price")

    interaction_id = interactions.log(
        world.db,
        world.manager_leeds,
        {
            "branch_id": str(world.leeds),
            "occurred_on": "2026-02-27",
            "kind_code": "VISIT",
            "summary": "  Dropped in with leaflets ",
            "notes": "Met both of them.\r\nAsked about capacity.",
            "follow_up_on": date(2026, 3, 6),
            "follow_up_action": " Send availability ",
            "contact_ids": [paul, priya, str(priya)],
        },
    )

    assert interactions.get(world.db, world.manager_leeds, interaction_id) == {
        "id": interaction_id,
        "branch_id": world.leeds,
        "branch": "Leeds",
        "organisation_id": world.gp,
        "organisation": "Hyde Park Surgery",
        "type_label": "GP practice",
        "type_code": "GP_PRACTICE",
        "occurred_on": "2026-02-27",
        "kind_code": "VISIT",
        "kind": "Visit",
        "summary": "Dropped in with leaflets",
        "notes": "Met both of them.\nAsked about capacity.",
        "follow_up_on": "2026-03-06",
        "follow_up_action": "Send availability",
        "follow_up_done_on": None,
        "created_at": STAMP,
        "logged_by": "Lee Leeds",
        "version": 1,
        "contacts": "Priya Patel, Paul Price",
        "contact_ids": [priya, paul],
        "moved_contact_ids": [],
    }
    row = world.db["interactions"].get(interaction_id)
    assert (row["created_by"], row["updated_by"], row["updated_at"]) == (
        world.manager_leeds.id,
        world.manager_leeds.id,
        STAMP,
    )
    [entry] = audit.entries(world.db, "interactions", interaction_id)
    assert (entry["user_id"], entry["username"], entry["action"], entry["at"]) == (
        world.manager_leeds.id,
        "manager.leeds",
        "create",
        STAMP,
    )
    assert entry["changes"] == {
        "branch_id": world.leeds,
        "organisation_id": world.gp,
        "occurred_on": "2026-02-27",
        "kind_code": "VISIT",
        "summary": "Dropped in with leaflets",
        "notes": "Met both of them.\nAsked about capacity.",
        "follow_up_on": "2026-03-06",
        "follow_up_action": "Send availability",
        "contact_ids": [priya, paul],
    }


def test_log_with_an_organisation_only_from_the_command_line(world):
    """Test that an interaction with an organisation and no contact is allowed, dated today by default, and
    shows "command line" as who logged it when it came from the CLI."""
    interaction_id = interactions.log(
        world.db,
        COMMAND_LINE,
        {"branch_id": world.york, "kind_code": "EMAIL", "summary": "Sent the leaflet", "organisation_id": world.ot},
    )

    assert interactions.get(world.db, COMMAND_LINE, interaction_id) == {
        "id": interaction_id,
        "branch_id": world.york,
        "branch": "York",
        "organisation_id": world.ot,
        "organisation": "Leeds Community OT",
        "type_label": "Community therapy (OT, physio, reablement)",
        "type_code": "COMMUNITY_THERAPY",
        "occurred_on": "2026-03-02",
        "kind_code": "EMAIL",
        "kind": "Email",
        "summary": "Sent the leaflet",
        "notes": "",
        "follow_up_on": None,
        "follow_up_action": "",
        "follow_up_done_on": None,
        "created_at": STAMP,
        "logged_by": "command line",
        "version": 1,
        "contacts": None,
        "contact_ids": [],
        "moved_contact_ids": [],
    }


def test_contacts_at_two_organisations_leave_the_organisation_unset(world):
    """Test that when the contacts work at different organisations no single organisation is guessed."""
    priya = world.contact(world.leeds, "Priya Patel")
    omar = world.contact(world.leeds, "Omar Okafor", world.ot)

    record = interactions.get(world.db, world.admin, log(world, [priya, omar], kind_code="MEETING"))

    assert (record["organisation_id"], record["organisation"], record["type_label"], record["contacts"]) == (
        None,
        None,
        None,
        "Priya Patel, Omar Okafor",
    )


# Validation: every refused input, with the message the user sees, and nothing written.


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"occurred_on": "2026-03-03"}, ValidationError, "Date: cannot be in the future; log it once it has happened."),
        ({"occurred_on": "1999-12-31"}, ValidationError, "Date: cannot be before 2000-01-01."),
        (
            {"occurred_on": "02/03/2026"},
            ValidationError,
            "Date: “02/03/2026” is not a date (use YYYY-MM-DD, e.g. 2026-03-31).",
        ),
        ({"summary": "   "}, ValidationError, "Summary: is required."),
        ({"summary": "x" * 201}, ValidationError, "Summary: is too long (201 characters; the limit is 200)."),
        (
            {"summary": "Called\nback"},
            ValidationError,
            "Summary: contains a line break or control character; use a single line of text.",
        ),
        ({"notes": "x" * 5001}, ValidationError, "Notes: is too long (5001 characters; the limit is 5000)."),
        (
            {"occurred_on": "2026-03-01", "follow_up_on": "2026-02-28", "follow_up_action": "Call back"},
            ValidationError,
            "Follow-up date: cannot be before the interaction itself.",
        ),
        (
            {"follow_up_action": "Send the leaflet"},
            ValidationError,
            "Follow-up date: is required when there is a follow-up action.",
        ),
        (
            {"follow_up_on": "next week"},
            ValidationError,
            "Follow-up date: “next week” is not a date (use YYYY-MM-DD, e.g. 2026-03-31).",
        ),
        (
            {"contact_ids": [], "organisation_id": None},
            ValidationError,
            "Contacts: choose at least one contact or an organisation.",
        ),
        ({"kind_code": "LUNCH"}, ValidationError, "Kind: “LUNCH” is not a known kind of interaction."),
        ({"kind_code": " "}, ValidationError, "Kind: is required."),
        (
            {"contact_ids": lambda w: [w.contact(w.york, "Yasmin Yates")]},
            ValidationError,
            "Contacts: must all be contacts of the interaction's branch.",
        ),
        (
            {"contact_ids": lambda w: [w.priya, w.contact(w.bristol, "Beth Brown", w.council)]},
            ValidationError,
            "Contacts: must all be contacts of the interaction's branch.",
        ),
        ({"contact_ids": [999]}, ValidationError, "Contacts: must all be contacts of the interaction's branch."),
        ({"contact_ids": ["Priya"]}, ValidationError, "Contacts: is not a valid choice."),
        ({"contact_ids": [], "organisation_id": 999}, ValidationError, "Organisation: does not exist."),
        ({"branch_id": None}, ValidationError, "Branch: is required."),
        (
            {"summary": "", "kind_code": "LUNCH"},
            InvalidFields,
            "Kind: “LUNCH” is not a known kind of interaction. Summary: is required.",
        ),
    ],
)
def test_log_refuses_bad_input(world, changes, error, message):
    """Test that each kind of bad input is refused with the exact message, and nothing is written."""
    world.priya = world.contact(world.leeds, "Priya Patel")
    resolved = {k: v(world) if callable(v) else v for k, v in changes.items()}
    before = counts(world)

    with pytest.raises(error) as caught:
        log(world, resolved.pop("contact_ids", [world.priya]), **resolved)

    assert type(caught.value) is error
    assert str(caught.value) == message
    assert counts(world) == before
    assert world.db["contacts"].get(world.priya)["last_touched_on"] is None


def test_boundary_values_are_accepted(world):
    """Test that a 200-character summary, today's date, 1 January 2000 and a follow-up on the same day pass."""
    priya = world.contact(world.leeds, "Priya Patel")

    first = log(world, [priya], summary="x" * 200, follow_up_on=TODAY, follow_up_action="Ring back this afternoon")
    second = log(world, [priya], occurred_on="2000-01-01")

    assert [
        (r["summary"], r["occurred_on"], r["follow_up_on"])
        for r in (interactions.get(world.db, world.admin, i) for i in (first, second))
    ] == [("x" * 200, "2026-03-02", "2026-03-02"), ("Catch-up call", "2000-01-01", None)]


# Last touched: kept current on every write, without touching the contact's version.


def touched(world: World, *contact_ids: int) -> list[tuple]:
    return [
        (row["last_touched_on"], row["version"], row["updated_at"])
        for row in (world.db["contacts"].get(contact_id) for contact_id in contact_ids)
    ]


def test_last_touched_on_follows_log_update_and_delete_without_bumping_the_contact_version(world):
    """Test that a contact's last_touched_on is always its latest interaction's date, through logging (an older
    one changes nothing), editing (date and contacts) and deleting, and that the contact's version and
    updated_at never move, so logging a call never makes an open edit of the contact conflict."""
    priya = world.contact(world.leeds, "Priya Patel")
    paul = world.contact(world.leeds, "Paul Price")
    created = world.db["contacts"].get(priya)["updated_at"]

    latest = log(world, [priya], occurred_on="2026-02-01")
    assert touched(world, priya, paul) == [("2026-02-01", 1, created), (None, 1, created)]

    older = log(world, [priya, paul], occurred_on="2026-01-15")
    assert touched(world, priya, paul) == [("2026-02-01", 1, created), ("2026-01-15", 1, created)]

    interactions.update(
        world.db,
        world.admin,
        latest,
        {
            "branch_id": world.leeds,
            "occurred_on": "2026-01-10",
            "kind_code": "PHONE_CALL",
            "summary": "Catch-up call",
            "contact_ids": [paul],
        },
        expected_version=1,
    )
    assert touched(world, priya, paul) == [("2026-01-15", 1, created), ("2026-01-15", 1, created)]

    interactions.delete(world.db, world.admin, older, expected_version=1)
    assert touched(world, priya, paul) == [(None, 1, created), ("2026-01-10", 1, created)]

    interactions.delete(world.db, world.admin, latest, expected_version=2)
    assert touched(world, priya, paul) == [(None, 1, created), (None, 1, created)]
    assert [e["action"] for e in audit.entries(world.db, "contacts")] == ["create", "create"]


def test_delete_is_audited_and_removes_the_links(world):
    """Test that deleting an interaction removes it and its contact links, records what it held in the audit
    log, and that a delete from a stale version is refused as a conflict."""
    priya = world.contact(world.leeds, "Priya Patel")
    interaction_id = log(world, [priya], kind_code="VISIT", summary="Dropped in", occurred_on="2026-02-20")
    kept = log(world, [priya], occurred_on="2026-02-10")

    with pytest.raises(Conflict) as caught:
        interactions.delete(world.db, world.manager_leeds, interaction_id, expected_version=0)
    assert str(caught.value) == CONFLICT
    assert world.db["contacts"].get(priya)["last_touched_on"] == "2026-02-20"

    interactions.delete(world.db, world.manager_leeds, interaction_id, expected_version=1)

    with pytest.raises(NotFound) as caught:
        interactions.get(world.db, world.admin, interaction_id)
    assert str(caught.value) == INTERACTION_NOT_FOUND
    assert list(world.db["interaction_contacts"].rows) == [
        {"interaction_id": kept, "contact_id": priya, "occurred_on": "2026-02-10", "branch_id": world.leeds}
    ]
    assert world.db["contacts"].get(priya)["last_touched_on"] == "2026-02-10"
    deleted = [e for e in audit.entries(world.db, "interactions", interaction_id) if e["action"] == "delete"]
    assert [(e["user_id"], e["username"], e["at"], e["changes"]) for e in deleted] == [
        (
            world.manager_leeds.id,
            "manager.leeds",
            STAMP,
            {
                "branch_id": world.leeds,
                "organisation_id": world.gp,
                "occurred_on": "2026-02-20",
                "kind_code": "VISIT",
                "summary": "Dropped in",
                "contact_ids": [priya],
            },
        )
    ]


def test_update_without_changes_writes_nothing(world):
    """Test that saving an interaction unchanged keeps its version and adds no audit entry."""
    priya = world.contact(world.leeds, "Priya Patel")
    interaction_id = log(world, [priya])
    before = interactions.get(world.db, world.admin, interaction_id)
    size = len(audit.entries(world.db))

    interactions.update(
        world.db,
        world.manager_leeds,
        interaction_id,
        {"branch_id": world.leeds, "kind_code": "PHONE_CALL", "summary": "Catch-up call", "contact_ids": [priya]},
        expected_version=1,
    )

    assert interactions.get(world.db, world.admin, interaction_id) == before
    assert len(audit.entries(world.db)) == size


# Follow-ups.


def test_complete_follow_up(world):
    """Test that completing a follow-up dates it today, bumps the version, is audited and drops it from the list
    of follow-ups; an interaction without a follow-up is refused."""
    priya = world.contact(world.leeds, "Priya Patel")
    interaction_id = log(world, [priya], follow_up_on="2026-03-05", follow_up_action="Send availability")
    plain = log(world, [priya])

    interactions.complete_follow_up(world.db, world.manager_leeds, interaction_id)

    record = interactions.get(world.db, world.admin, interaction_id)
    assert (record["follow_up_on"], record["follow_up_done_on"], record["version"]) == ("2026-03-05", STAMP[:10], 2)
    entry = audit.entries(world.db, "interactions", interaction_id)[0]
    assert (entry["username"], entry["action"], entry["changes"]) == (
        "manager.leeds",
        "update",
        {"follow_up_done_on": [None, "2026-03-02"]},
    )
    assert interactions.follow_ups(world.db, world.admin, today=TODAY) == []

    with pytest.raises(ValidationError) as caught:
        interactions.complete_follow_up(world.db, world.admin, plain)
    assert str(caught.value) == "Follow-up: this interaction has no follow-up to complete."
    assert interactions.get(world.db, world.admin, plain)["version"] == 1


def test_follow_ups_overdue_due_and_the_seven_day_horizon(world):
    """Test that follow_ups lists open follow-ups overdue or due within seven days, soonest first, each with its
    state, leaving out later, completed and other branches' ones."""
    priya = world.contact(world.leeds, "Priya Patel")
    yasmin = world.contact(world.york, "Yasmin Yates")
    overdue = log(world, [priya], occurred_on="2026-02-10", follow_up_on="2026-02-20", follow_up_action="A")
    yesterday = log(world, [priya], occurred_on="2026-02-25", follow_up_on="2026-03-01", follow_up_action="B")
    today = log(world, [priya], follow_up_on="2026-03-02", follow_up_action="C")
    in_a_week = log(world, [priya], follow_up_on="2026-03-09")
    later = log(world, [priya], follow_up_on="2026-03-10", follow_up_action="E")
    done = log(world, [priya], occurred_on="2026-02-01", follow_up_on="2026-02-25", follow_up_action="F")
    interactions.complete_follow_up(world.db, world.admin, done, done_on=date(2026, 2, 25))
    log(world, [priya], summary="No follow-up")
    york = log(
        world, [yasmin], branch_id=world.york, occurred_on="2026-02-27", follow_up_on="2026-02-28", follow_up_action="H"
    )

    found = interactions.follow_ups(world.db, world.manager_leeds, today=TODAY)

    assert [(r["id"], r["follow_up_on"], r["state"]) for r in found] == [
        (overdue, "2026-02-20", "overdue"),
        (yesterday, "2026-03-01", "overdue"),
        (today, "2026-03-02", "due"),
        (in_a_week, "2026-03-09", "due"),
    ]
    assert found[0] == {**listed(interactions.get(world.db, world.admin, overdue)), "state": "overdue"}
    assert [r["id"] for r in interactions.follow_ups(world.db, world.admin, today=TODAY)] == [
        overdue,
        york,
        yesterday,
        today,
        in_a_week,
    ]
    assert [r["id"] for r in interactions.follow_ups(world.db, world.admin, today=TODAY, branch_id=world.york)] == [
        york
    ]
    tomorrow = interactions.follow_ups(world.db, world.manager_leeds, today=TODAY + timedelta(days=1))
    assert [(r["id"], r["state"]) for r in tomorrow] == [
        (overdue, "overdue"),
        (yesterday, "overdue"),
        (today, "overdue"),
        (in_a_week, "due"),
        (later, "due"),
    ]
    assert interactions.follow_ups(world.db, world.manager_leeds) == found  # today defaults to the clock's date


# Search and referrals.


@pytest.fixture
def timeline(world) -> dict:
    """Five interactions in Leeds and York, named by what tells them apart."""
    world.priya = world.contact(world.leeds, "Priya Patel")
    world.omar = world.contact(world.leeds, "Omar Okafor", world.ot)
    world.yasmin = world.contact(world.york, "Yasmin Yates")
    return {
        "call": log(world, [world.priya], occurred_on="2026-01-05", summary="Catch-up call about 100% capacity"),
        "visit": log(
            world,
            [world.omar],
            occurred_on="2026-02-10",
            kind_code="VISIT",
            summary="Visited the OT team",
            notes="Talked about discharge_plans",
        ),
        "meeting": log(
            world, [world.priya, world.omar], occurred_on="2026-02-20", kind_code="MEETING", summary="Joint review"
        ),
        "referral": log(
            world,
            [],
            organisation_id=world.gp,
            occurred_on="2026-03-01",
            kind_code="REFERRAL_RECEIVED",
            summary="Referral received for a new package",
        ),
        "york": log(world, [world.yasmin], branch_id=world.york, occurred_on="2026-02-15", summary="Catch-up CALL"),
    }


@pytest.mark.parametrize(
    ("who", "filters", "expected"),
    [
        ("admin", {}, ["referral", "meeting", "york", "visit", "call"]),
        ("admin", {"branch_id": "york"}, ["york"]),
        ("admin", {"contact_id": "priya"}, ["meeting", "call"]),
        ("admin", {"organisation_id": "gp"}, ["referral", "york", "call"]),
        ("admin", {"kind_code": "PHONE_CALL"}, ["york", "call"]),
        ("admin", {"since": date(2026, 2, 10), "until": date(2026, 2, 20)}, ["meeting", "york", "visit"]),
        ("admin", {"since": date(2026, 2, 21)}, ["referral"]),
        ("admin", {"until": date(2026, 2, 9)}, ["call"]),
        ("admin", {"text": " catch-up "}, ["york", "call"]),
        ("admin", {"text": "100%"}, ["call"]),
        ("admin", {"text": "%"}, ["call"]),
        ("admin", {"text": "_"}, ["visit"]),
        ("admin", {"text": "discharge"}, ["visit"]),
        ("admin", {"contact_id": "priya", "kind_code": "PHONE_CALL"}, ["call"]),
        ("admin", {"limit": 2}, ["referral", "meeting"]),
        ("manager_leeds", {}, ["referral", "meeting", "visit", "call"]),
        ("manager_leeds", {"branch_id": "york"}, []),
        ("manager_york", {}, ["york"]),
        ("manager_york", {"contact_id": "priya"}, []),
        ("lead_south", {}, []),
    ],
)
def test_search_filters(world, timeline, who, filters, expected):
    """Test that search applies every filter given (inclusive dates, search text taken literally), newest first,
    within the actor's scope."""
    resolved = {
        k: getattr(world, v) if k in ("branch_id", "contact_id", "organisation_id") else v for k, v in filters.items()
    }
    names = {interaction_id: name for name, interaction_id in timeline.items()}

    found = interactions.search(world.db, getattr(world, who), **resolved)

    assert [names[r["id"]] for r in found] == expected


def test_search_rows_are_whole_records(world, timeline):
    """Test that a search row carries the same columns and values as get(), bar the contact ids."""
    [row] = interactions.search(world.db, world.admin, kind_code="VISIT")

    assert row == listed(interactions.get(world.db, world.admin, timeline["visit"]))


def test_referrals_by_type(world):
    """Test that referrals received between two dates (inclusive) are counted per branch and partner type, an
    interaction with contacts at two organisations counted as "No organisation", and scoped to the actor."""
    priya = world.contact(world.leeds, "Priya Patel")
    omar = world.contact(world.leeds, "Omar Okafor", world.ot)
    beth = world.contact(world.bristol, "Beth Brown", world.council)
    referral = {"kind_code": "REFERRAL_RECEIVED", "summary": "Referral received"}
    log(world, [priya], occurred_on="2026-02-01", **referral)
    log(world, [], organisation_id=world.gp, occurred_on="2026-02-28", **referral)
    log(world, [omar], occurred_on="2026-02-15", **referral)
    log(world, [priya, omar], occurred_on="2026-02-16", **referral)
    log(world, [priya], occurred_on="2026-01-31", **referral)
    log(world, [priya], occurred_on="2026-03-01", **referral)
    log(world, [priya], occurred_on="2026-02-10", kind_code="VISIT")
    log(world, [beth], branch_id=world.bristol, occurred_on="2026-02-10", **referral)
    february = (date(2026, 2, 1), date(2026, 2, 28))

    assert interactions.referrals_by_type(world.db, world.admin, *february) == [
        {"branch": "Bristol", "partner_type": "Council adult social care", "referrals": 1},
        {"branch": "Leeds", "partner_type": "GP practice", "referrals": 2},
        {"branch": "Leeds", "partner_type": "Community therapy (OT, physio, reablement)", "referrals": 1},
        {"branch": "Leeds", "partner_type": "No organisation", "referrals": 1},
    ]
    assert interactions.referrals_by_type(world.db, world.lead_south, *february) == [
        {"branch": "Bristol", "partner_type": "Council adult social care", "referrals": 1}
    ]
    assert interactions.referrals_by_type(world.db, world.manager_york, *february) == []


# Relationship status.


@pytest.mark.parametrize(
    ("days_ago", "interval", "expected"),
    [
        (None, 90, "never"),
        (0, 90, "warm"),
        (-1, 90, "warm"),  # a date after today (clock skew) is no reason to call
        (75, 90, "warm"),
        (76, 90, "due_soon"),  # the due-soon window is at most 14 days
        (90, 90, "due_soon"),  # exactly on the interval
        (91, 90, "lapsed"),  # one day over
        (20, 28, "warm"),
        (21, 28, "due_soon"),  # a short interval's window is its last quarter (7 days)
        (28, 28, "due_soon"),
        (29, 28, "lapsed"),
        (0, 1, "warm"),
        (1, 1, "due_soon"),
        (2, 1, "lapsed"),
        (350, 365, "warm"),
        (351, 365, "due_soon"),
        (365, 365, "due_soon"),
        (366, 365, "lapsed"),
    ],
)
def test_relationship_boundaries(days_ago, interval, expected):
    """Test that relationship() is warm, due soon, lapsed or never exactly at the interval's boundaries."""
    last = None if days_ago is None else ago(days_ago)

    assert contacts.relationship(last, interval, TODAY) == expected


def test_relationships_cover_every_status():
    """Test that every status relationship() returns has a label to show."""
    assert contacts.RELATIONSHIPS == {
        "warm": "Warm",
        "due_soon": "Due soon",
        "lapsed": "Lapsed",
        "never": "Never contacted",
    }
    assert contacts.MAX_DUE_SOON_DAYS == 14


def test_keep_in_touch_days_overrides_the_partner_types_interval(world):
    """Test that a contact's own keep_in_touch_days replaces the partner type's default in their status."""
    own = world.contact(world.leeds, "Olive Own", keep_in_touch_days=30)
    on_the_day = world.contact(world.leeds, "Dee Day", keep_in_touch_days="30")
    default = world.contact(world.leeds, "Dev Default")
    log(world, [own, default], occurred_on=ago(31))
    log(world, [on_the_day], occurred_on=ago(30))

    assert [
        (c["name"], c["keep_in_touch_days"], c["type_keep_in_touch_days"], c["interval_days"], c["relationship"])
        for c in (contacts.get(world.db, world.admin, i) for i in (own, on_the_day, default))
    ] == [
        ("Olive Own", 30, 90, 30, "lapsed"),
        ("Dee Day", 30, 90, 30, "due_soon"),
        ("Dev Default", None, 90, 90, "warm"),
    ]


@pytest.mark.parametrize("days", [0, 3651, -5])
def test_keep_in_touch_days_out_of_range_is_refused(world, days):
    """Test that a contact's own interval must lie between 1 and 3650 days."""
    with pytest.raises(ValidationError) as caught:
        world.contact(world.leeds, "Olive Own", keep_in_touch_days=days)

    assert str(caught.value) == "Keep in touch every (days): must be between 1 and 3650 days."
    assert world.db["contacts"].count == 0


# Lapsing named contacts.


def test_lapsing_lists_due_soon_lapsed_and_never_contacted_most_urgent_first(world):
    """Test that lapsing lists active named contacts in scope that are lapsed (longest silent first), never
    contacted (by name) or due soon, leaving out warm, unnamed and departed contacts."""
    people = {
        name: world.contact(branch, name, **extra)
        for branch, name, extra in [
            (world.leeds, "Wendy Warm", {}),
            (world.leeds, "Dan Due", {}),
            (world.leeds, "Lara Lapsed", {}),
            (world.leeds, "Luke Later", {}),
            (world.leeds, "Oscar Override", {"keep_in_touch_days": 30}),
            (world.leeds, "Nina Never", {}),
            (world.leeds, "Aaron Never", {}),
            (world.leeds, "Una Unnamed", {"is_named_contact": False}),
            (world.leeds, "Leo Left", {}),
            (world.york, "Yasmin Yates", {}),
        ]
    }
    for name, days in [
        ("Wendy Warm", 10),
        ("Dan Due", 80),
        ("Lara Lapsed", 200),
        ("Luke Later", 100),
        ("Oscar Override", 31),
        ("Una Unnamed", 300),
        ("Leo Left", 300),
    ]:
        log(world, [people[name]], occurred_on=ago(days))
    contacts.mark_left(world.db, world.admin, people["Leo Left"], expected_version=1)

    def summary(actor: Actor, **kwargs) -> list[tuple]:
        found = contacts.lapsing(world.db, actor, today=TODAY, **kwargs)
        return [(r["name"], r["branch"], r["relationship"], r["last_touched_on"], r["interval_days"]) for r in found]

    leeds = [
        ("Lara Lapsed", "Leeds", "lapsed", ago(200), 90),
        ("Luke Later", "Leeds", "lapsed", ago(100), 90),
        ("Oscar Override", "Leeds", "lapsed", ago(31), 30),
        ("Aaron Never", "Leeds", "never", None, 90),
        ("Nina Never", "Leeds", "never", None, 90),
        ("Dan Due", "Leeds", "due_soon", ago(80), 90),
    ]
    assert summary(world.manager_leeds) == leeds
    assert summary(world.admin) == [*leeds[:4], leeds[4], ("Yasmin Yates", "York", "never", None, 90), leeds[5]]
    assert summary(world.lead_north, branch_id=world.york) == [("Yasmin Yates", "York", "never", None, 90)]
    assert summary(world.manager_leeds, branch_id=world.york) == []
    assert summary(world.lead_south) == []
    [lara] = [r for r in contacts.lapsing(world.db, world.admin, today=TODAY) if r["name"] == "Lara Lapsed"]
    assert lara == contacts.get(world.db, world.admin, people["Lara Lapsed"])


# Successors.


def test_set_successor(world):
    """Test that recording who took over from a contact who left stores the link and audits it."""
    lara = world.contact(world.leeds, "Lara Left", job_title="Practice Manager")
    contacts.mark_left(world.db, world.manager_leeds, lara, expected_version=1)
    sam = world.contact(world.leeds, "Sam Successor", job_title="Practice Manager")

    contacts.set_successor(world.db, world.manager_leeds, lara, sam)

    record = contacts.get(world.db, world.manager_leeds, lara)
    assert (record["status"], record["left_on"], record["successor_id"]) == ("left", "2026-03-02", sam)
    entry = audit.entries(world.db, "contacts", lara)[0]
    assert (entry["username"], entry["action"], entry["changes"]) == (
        "manager.leeds",
        "update",
        {"successor_id": [None, sam]},
    )
    assert contacts.get(world.db, world.manager_leeds, sam)["successor_id"] is None


@pytest.mark.parametrize(
    ("contact", "successor", "error", "message"),
    [
        ("leeds", "leeds", ValidationError, "Successor: cannot be the same person."),
        ("leeds", "york", NotFound, CONTACT_NOT_FOUND),
        ("york", "leeds_2", NotFound, CONTACT_NOT_FOUND),
        ("leeds", "missing", NotFound, CONTACT_NOT_FOUND),
    ],
)
def test_set_successor_refusals(world, contact, successor, error, message):
    """Test that a contact cannot succeed themselves, and a branch manager cannot link to or from a contact
    outside their branch (or one that does not exist); nothing is written."""
    ids = {
        "leeds": world.contact(world.leeds, "Lara Left"),
        "leeds_2": world.contact(world.leeds, "Sam Successor"),
        "york": world.contact(world.york, "Yasmin Yates"),
        "missing": 999,
    }
    size = len(audit.entries(world.db))

    with pytest.raises(error) as caught:
        contacts.set_successor(world.db, world.manager_leeds, ids[contact], ids[successor])

    assert str(caught.value) == message
    assert [r["successor_id"] for r in world.db["contacts"].rows] == [None, None, None]
    assert len(audit.entries(world.db)) == size


# Partner types and their keep-in-touch intervals.


def test_add_type(world):
    """Test that an administrator adds a partner type: the code upper-cased, the label trimmed, listed last."""
    organisations.add_type(world.db, world.admin, "care_home", " Care home ", 60)
    organisations.add_type(world.db, world.admin, "DAY_CENTRE", "Day centre")

    assert organisations.types(world.db)[-2:] == [
        {"code": "CARE_HOME", "label": "Care home", "keep_in_touch_days": 60, "required": 0},
        {"code": "DAY_CENTRE", "label": "Day centre", "keep_in_touch_days": 90, "required": 0},
    ]
    entry = audit.entries(world.db, "organisation_types")[1]
    assert (entry["username"], entry["action"], entry["changes"]) == (
        "ada",
        "create",
        {"code": "CARE_HOME", "label": "Care home", "keep_in_touch_days": 60, "sort_order": 1000},
    )


@pytest.mark.parametrize(
    ("code", "label", "days", "error", "message"),
    [
        (
            "care home",
            "Care home",
            60,
            ValidationError,
            "Code: “CARE HOME” must be capital letters and underscores, e.g. CARE_HOME.",
        ),
        ("C", "Care home", 60, ValidationError, "Code: “C” must be capital letters and underscores, e.g. CARE_HOME."),
        (
            "CARE_HOME_2",
            "Care home",
            60,
            ValidationError,
            "Code: “CARE_HOME_2” must be capital letters and underscores, e.g. CARE_HOME.",
        ),
        ("CARE_HOME", " ", 60, ValidationError, "Label: is required."),
        ("CARE_HOME", "x" * 101, 60, ValidationError, "Label: is too long (101 characters; the limit is 100)."),
        ("CARE_HOME", "Care home", 0, ValidationError, "Keep in touch every (days): must be between 1 and 3650 days."),
        (
            "CARE_HOME",
            "Care home",
            3651,
            ValidationError,
            "Keep in touch every (days): must be between 1 and 3650 days.",
        ),
        (
            "CARE_HOME",
            "Care home",
            None,
            ValidationError,
            "Keep in touch every (days): must be between 1 and 3650 days.",
        ),
        ("CARE_HOME", "Care home", "often", ValidationError, "Keep in touch every (days): is not a valid choice."),
        (
            "GP_PRACTICE",
            "Surgeries",
            60,
            AlreadyExists,
            "A partner type with code GP_PRACTICE or label “Surgeries” already exists.",
        ),
        (
            "SURGERY",
            "GP practice",
            60,
            AlreadyExists,
            "A partner type with code SURGERY or label “GP practice” already exists.",
        ),
    ],
)
def test_add_type_refusals(world, code, label, days, error, message):
    """Test that a bad code, label or interval, or a taken code or label, is refused and nothing is written."""
    before = organisations.types(world.db)
    size = len(audit.entries(world.db))

    with pytest.raises(error) as caught:
        organisations.add_type(world.db, world.admin, code, label, days)

    assert str(caught.value) == message
    assert organisations.types(world.db) == before
    assert len(audit.entries(world.db)) == size


def test_update_type(world):
    """Test that an administrator renames a partner type and changes its interval, audited as a diff."""
    organisations.update_type(world.db, world.admin, "PHARMACY", "Community pharmacy", 180)

    assert [t for t in organisations.types(world.db) if t["code"] == "PHARMACY"] == [
        {"code": "PHARMACY", "label": "Community pharmacy", "keep_in_touch_days": 180, "required": 0}
    ]
    entry = audit.entries(world.db, "organisation_types")[0]
    assert (entry["action"], entry["changes"]) == (
        "update",
        {"code": "PHARMACY", "label": ["Pharmacy", "Community pharmacy"], "keep_in_touch_days": [90, 180]},
    )


@pytest.mark.parametrize(
    ("code", "label", "days", "error", "message"),
    [
        ("NOPE", "Nope", 60, NotFound, "No partner type NOPE."),
        ("PHARMACY", "GP practice", 60, AlreadyExists, "Another partner type is already called “GP practice”."),
        ("PHARMACY", "", 60, ValidationError, "Label: is required."),
        ("PHARMACY", "Pharmacy", 0, ValidationError, "Keep in touch every (days): must be between 1 and 3650 days."),
    ],
)
def test_update_type_refusals(world, code, label, days, error, message):
    """Test that updating an unknown type, to a taken label or a bad interval, is refused and changes nothing."""
    before = organisations.types(world.db)

    with pytest.raises(error) as caught:
        organisations.update_type(world.db, world.admin, code, label, days)

    assert str(caught.value) == message
    assert organisations.types(world.db) == before


@pytest.mark.parametrize("who", ["lead_north", "manager_leeds"])
def test_only_administrators_manage_partner_types(world, who):
    """Test that regional leads and branch managers may neither add nor change partner types."""
    before = organisations.types(world.db)

    with pytest.raises(PermissionDenied) as added:
        organisations.add_type(world.db, getattr(world, who), "CARE_HOME", "Care home", 60)
    with pytest.raises(PermissionDenied) as updated:
        organisations.update_type(world.db, getattr(world, who), "GP_PRACTICE", "GP practice", 30)

    assert [str(added.value), str(updated.value)] == ["Your role does not allow this."] * 2
    assert organisations.types(world.db) == before


def test_changing_a_types_interval_changes_its_contacts_status(world):
    """Test that shortening a partner type's interval makes its contacts lapse at once (no stored status), while
    a contact with their own interval keeps it."""
    gp_contact = world.contact(world.leeds, "Priya Patel")
    own_interval = world.contact(world.leeds, "Olive Own", keep_in_touch_days=60)
    ot_contact = world.contact(world.leeds, "Omar Okafor", world.ot)
    log(world, [gp_contact, own_interval, ot_contact], occurred_on=ago(40))

    def statuses() -> list[tuple]:
        return [
            (c["name"], c["interval_days"], c["relationship"])
            for c in (contacts.get(world.db, world.admin, i) for i in (gp_contact, own_interval, ot_contact))
        ]

    assert statuses() == [("Priya Patel", 90, "warm"), ("Olive Own", 60, "warm"), ("Omar Okafor", 90, "warm")]

    organisations.update_type(world.db, world.admin, "GP_PRACTICE", "GP practice", 30)

    assert statuses() == [("Priya Patel", 30, "lapsed"), ("Olive Own", 60, "warm"), ("Omar Okafor", 90, "warm")]
    assert [r["name"] for r in contacts.lapsing(world.db, world.admin, today=TODAY)] == ["Priya Patel"]


# The 0002 schema step on a database created before it.

OLD_ROWS = [
    "INSERT INTO regions (id, name, created_at) VALUES (1, 'North', '2025-01-01T09:00:00Z')",
    "INSERT INTO branches (id, name, region_id, created_at) VALUES (1, 'Leeds', 1, '2025-01-01T09:00:00Z')",
    "INSERT INTO organisation_types (code, label, sort_order) VALUES ('CARE_HOME', 'Care home', 1000)",
    "INSERT INTO organisations (id, name, type_code, postcode, created_at, updated_at) "
    "VALUES (1, 'Hyde Park Surgery', 'GP_PRACTICE', 'LS6 1AA', '2025-01-02T09:00:00Z', '2025-01-02T09:00:00Z')",
    "INSERT INTO organisations (id, name, type_code, created_at, updated_at) "
    "VALUES (2, 'Rose Court', 'CARE_HOME', '2025-01-02T09:00:00Z', '2025-01-02T09:00:00Z')",
    "INSERT INTO contacts (id, branch_id, organisation_id, name, job_title, notes, status, left_on, created_at, "
    "updated_at, version) VALUES (1, 1, 1, 'Priya Patel', 'Practice Manager', 'Line one\nLine two', 'active', NULL, "
    "'2025-01-03T09:00:00Z', '2025-01-04T09:00:00Z', 3)",
    "INSERT INTO contacts (id, branch_id, organisation_id, name, status, left_on, created_at, updated_at) "
    "VALUES (2, 1, 2, 'Rita Rose', 'left', '2025-06-01', '2025-01-03T09:00:00Z', '2025-06-01T09:00:00Z')",
    "INSERT INTO audit_log (at, username, action, table_name, row_id, changes) "
    "VALUES ('2025-01-03T09:00:00Z', 'ada', 'create', 'contacts', 1, '{\"name\": \"Priya Patel\"}')",
]
OLD_TABLES = ["regions", "branches", "organisation_types", "organisations", "contacts", "audit_log"]


def test_upgrade_from_0001_keeps_every_row_and_adds_the_interaction_columns(tmp_path, monkeypatch):
    """Test that a database created at 0001_foundation, holding rows, upgrades through 0002_interactions with every
    row and value kept, the new columns present with their defaults, and interactions then loggable."""
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    path = tmp_path / "old.db"
    old = Database(path)
    schema.migrations.apply(old, stop_before="0002_interactions")
    for statement in OLD_ROWS:
        old.execute(statement)
    old.conn.commit()
    assert schema.pending(old)[0] == "0002_interactions"
    assert "interactions" not in old.table_names()
    before = {t: old.execute_returning_dicts(f"SELECT * FROM [{t}] ORDER BY rowid") for t in OLD_TABLES}

    schema.upgrade(old)

    assert schema.pending(old) == []
    after = {t: old.execute_returning_dicts(f"SELECT * FROM [{t}] ORDER BY rowid") for t in OLD_TABLES}
    assert {t: [{k: row[k] for k in before[t][0]} for row in rows] for t, rows in after.items()} == before
    assert [(r["code"], r["keep_in_touch_days"]) for r in after["organisation_types"]][-2:] == [
        ("OTHER", 90),
        ("CARE_HOME", 90),
    ]
    assert [
        (r["name"], r["keep_in_touch_days"], r["last_touched_on"], r["successor_id"]) for r in after["contacts"]
    ] == [("Priya Patel", None, None, None), ("Rita Rose", None, None, None)]
    assert {"interaction_kinds", "interactions", "interaction_contacts"} <= set(old.table_names())
    assert [k["code"] for k in interactions.kinds(old)] == [code for code, _ in schema.INTERACTION_KINDS]
    old.close()

    upgraded = db.connect(path)
    interaction_id = interactions.log(
        upgraded, COMMAND_LINE, {"branch_id": 1, "kind_code": "VISIT", "summary": "First visit", "contact_ids": [1]}
    )
    assert (
        interactions.get(upgraded, COMMAND_LINE, interaction_id)["organisation"],
        upgraded["contacts"].get(1)["last_touched_on"],
    ) == ("Hyde Park Surgery", TODAY.isoformat())
    upgraded.close()


# Scope: the same matrix of roles and branches as for contacts.

ROLES = ["admin", "lead.north", "lead.south", "manager.leeds", "manager.york", "manager.bristol"]
BRANCHES = ["leeds", "york", "bristol"]
SCOPE = {
    "admin": {"leeds", "york", "bristol"},
    "lead.north": {"leeds", "york"},
    "lead.south": {"bristol"},
    "manager.leeds": {"leeds"},
    "manager.york": {"york"},
    "manager.bristol": {"bristol"},
}
CASES = [(role, branch) for role in ROLES for branch in BRANCHES]


def actor(world: World, role: str) -> Actor:
    return world.admin if role == "admin" else getattr(world, role.replace(".", "_"))


@pytest.fixture
def scene(world) -> World:
    """One contact per branch, and one referral per branch with an overdue follow-up, logged by the admin."""
    world.people = {b: world.contact(getattr(world, b), f"{b.title()} Contact") for b in BRANCHES}
    world.logged = {
        b: log(
            world,
            [world.people[b]],
            branch_id=getattr(world, b),
            occurred_on="2026-02-20",
            kind_code="REFERRAL_RECEIVED",
            summary=f"{b.title()} referral",
            follow_up_on="2026-02-27",
            follow_up_action=f"Thank {b.title()}",
        )
        for b in BRANCHES
    }
    return world


def snapshot(world: World, branch: str) -> tuple:
    return (
        interactions.get(world.db, COMMAND_LINE, world.logged[branch]),
        counts(world),
        world.db["contacts"].get(world.people[branch])["last_touched_on"],
    )


def edited(world: World, branch: str) -> dict:
    return {
        "branch_id": getattr(world, branch),
        "occurred_on": "2026-02-21",
        "kind_code": "REFERRAL_RECEIVED",
        "summary": "Edited",
        "contact_ids": [world.people[branch]],
    }


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_log_into(scene, role, branch):
    """Test that an interaction can be logged only into a branch in scope."""
    before = counts(scene)
    values = {**edited(scene, branch), "summary": "New call"}

    if branch in SCOPE[role]:
        interaction_id = interactions.log(scene.db, actor(scene, role), values)
        record = interactions.get(scene.db, COMMAND_LINE, interaction_id)
        assert (record["branch"], record["summary"], record["logged_by"]) == (
            branch.title(),
            "New call",
            actor(scene, role).display_name,
        )
    else:
        with pytest.raises(NotFound) as caught:
            interactions.log(scene.db, actor(scene, role), values)
        assert str(caught.value) == BRANCH_NOT_FOUND
        assert counts(scene) == before


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_read(scene, role, branch):
    """Test that an interaction opens only within scope; outside it is NotFound, as if it did not exist."""
    interaction_id = scene.logged[branch]

    if branch in SCOPE[role]:
        assert interactions.get(scene.db, actor(scene, role), interaction_id) == interactions.get(
            scene.db, COMMAND_LINE, interaction_id
        )
    else:
        with pytest.raises(NotFound) as caught:
            interactions.get(scene.db, actor(scene, role), interaction_id)
        assert str(caught.value) == INTERACTION_NOT_FOUND


@pytest.mark.parametrize("role", ROLES)
def test_missing_interaction_looks_the_same_as_out_of_scope(scene, role):
    """Test that an interaction id that does not exist gets the same message as another branch's."""
    with pytest.raises(NotFound) as caught:
        interactions.get(scene.db, actor(scene, role), 999)

    assert str(caught.value) == INTERACTION_NOT_FOUND


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_edit(scene, role, branch):
    """Test that an interaction can be edited only within scope; an out-of-scope edit changes nothing."""
    before = snapshot(scene, branch)

    if branch in SCOPE[role]:
        interactions.update(scene.db, actor(scene, role), scene.logged[branch], edited(scene, branch), 1)
        record = interactions.get(scene.db, COMMAND_LINE, scene.logged[branch])
        assert (record["summary"], record["occurred_on"], record["version"]) == ("Edited", "2026-02-21", 2)
    else:
        with pytest.raises(NotFound) as caught:
            interactions.update(scene.db, actor(scene, role), scene.logged[branch], edited(scene, branch), 1)
        assert str(caught.value) == INTERACTION_NOT_FOUND
        assert snapshot(scene, branch) == before


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_delete(scene, role, branch):
    """Test that an interaction can be deleted only within scope; an out-of-scope delete changes nothing."""
    before = snapshot(scene, branch)

    if branch in SCOPE[role]:
        interactions.delete(scene.db, actor(scene, role), scene.logged[branch], 1)
        assert [r["id"] for r in interactions.search(scene.db, COMMAND_LINE)] == [
            scene.logged[b] for b in reversed(BRANCHES) if b != branch
        ]
    else:
        with pytest.raises(NotFound) as caught:
            interactions.delete(scene.db, actor(scene, role), scene.logged[branch], 1)
        assert str(caught.value) == INTERACTION_NOT_FOUND
        assert snapshot(scene, branch) == before


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_complete_follow_up_in_scope(scene, role, branch):
    """Test that a follow-up can be marked done only within scope."""
    before = snapshot(scene, branch)

    if branch in SCOPE[role]:
        interactions.complete_follow_up(scene.db, actor(scene, role), scene.logged[branch])
        assert interactions.get(scene.db, COMMAND_LINE, scene.logged[branch])["follow_up_done_on"] == "2026-03-02"
    else:
        with pytest.raises(NotFound) as caught:
            interactions.complete_follow_up(scene.db, actor(scene, role), scene.logged[branch])
        assert str(caught.value) == INTERACTION_NOT_FOUND
        assert snapshot(scene, branch) == before


@pytest.mark.parametrize(("role", "branch"), CASES)
def test_move_into_branch(scene, role, branch):
    """Test that an interaction in scope can be moved only into a branch that is also in scope."""
    home = next(b for b in BRANCHES if b in SCOPE[role])
    before = snapshot(scene, home)
    values = {**edited(scene, branch), "contact_ids": [scene.people[branch]]}

    if branch in SCOPE[role]:
        interactions.update(scene.db, actor(scene, role), scene.logged[home], values, 1)
        assert interactions.get(scene.db, COMMAND_LINE, scene.logged[home])["branch"] == branch.title()
    else:
        with pytest.raises(NotFound) as caught:
            interactions.update(scene.db, actor(scene, role), scene.logged[home], values, 1)
        assert str(caught.value) == BRANCH_NOT_FOUND
        assert snapshot(scene, home) == before


@pytest.mark.parametrize("role", ROLES)
def test_lists_are_scoped(scene, role):
    """Test that search, follow-ups, referrals and the to-call list hold exactly the branches in scope."""
    who = actor(scene, role)
    expected = sorted(b.title() for b in SCOPE[role])

    assert sorted(r["branch"] for r in interactions.search(scene.db, who)) == expected
    assert sorted(r["branch"] for r in interactions.follow_ups(scene.db, who, today=TODAY)) == expected
    assert (
        sorted(
            r["branch"]
            for r in interactions.referrals_by_type(scene.db, who, TODAY.replace(day=1) - timedelta(days=28), TODAY)
        )
        == expected
    )
    assert sorted(r["branch"] for r in interactions.to_call(scene.db, who, today=TODAY)) == expected


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("branch", BRANCHES)
def test_filtering_to_a_branch_outside_scope_is_empty(scene, role, branch):
    """Test that asking for another branch's interactions or follow-ups gives nothing rather than the rows."""
    who, branch_id = actor(scene, role), getattr(scene, branch)
    expected = [scene.logged[branch]] if branch in SCOPE[role] else []

    assert [r["id"] for r in interactions.search(scene.db, who, branch_id=branch_id)] == expected
    assert [r["id"] for r in interactions.follow_ups(scene.db, who, today=TODAY, branch_id=branch_id)] == expected
    assert [r["id"] for r in interactions.search(scene.db, who, contact_id=scene.people[branch])] == expected


# Edit conflicts.


def test_a_stale_edit_is_refused_and_the_first_change_kept(scene):
    """Test that when two users open the same interaction (version 1) and the first saves, the second's save
    raises Conflict with the exact message and the database keeps the first change."""
    interaction_id = scene.logged["leeds"]
    first = interactions.get(scene.db, scene.manager_leeds, interaction_id)
    second = interactions.get(scene.db, scene.lead_north, interaction_id)
    assert first["version"] == second["version"] == 1

    interactions.update(
        scene.db,
        scene.manager_leeds,
        interaction_id,
        {**edited(scene, "leeds"), "summary": "First user's summary"},
        first["version"],
    )
    with pytest.raises(Conflict) as caught:
        interactions.update(
            scene.db,
            scene.lead_north,
            interaction_id,
            {**edited(scene, "leeds"), "summary": "Second user's summary", "notes": "Mine"},
            second["version"],
        )

    assert str(caught.value) == CONFLICT
    record = interactions.get(scene.db, COMMAND_LINE, interaction_id)
    assert (record["summary"], record["notes"], record["version"]) == ("First user's summary", "", 2)
    updates = [e for e in audit.entries(scene.db, "interactions", interaction_id) if e["action"] == "update"]
    assert [(e["username"], e["changes"]) for e in updates] == [
        (
            "manager.leeds",
            {
                "summary": ["Leeds referral", "First user's summary"],
                "occurred_on": ["2026-02-20", "2026-02-21"],
                "follow_up_on": ["2026-02-27", None],
                "follow_up_action": ["Thank Leeds", ""],
            },
        )
    ]


def test_completing_a_follow_up_makes_an_open_edit_stale(scene):
    """Test that a follow-up marked done (say from the home page) while someone edits the interaction makes their
    save a conflict, so it cannot silently undo or overwrite the completion."""
    interaction_id = scene.logged["leeds"]
    opened = interactions.get(scene.db, scene.manager_leeds, interaction_id)

    interactions.complete_follow_up(scene.db, scene.lead_north, interaction_id)

    with pytest.raises(Conflict) as caught:
        interactions.update(scene.db, scene.manager_leeds, interaction_id, edited(scene, "leeds"), opened["version"])
    assert str(caught.value) == CONFLICT
    assert interactions.get(scene.db, COMMAND_LINE, interaction_id)["summary"] == "Leeds referral"


# NHS numbers in free text.


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("943 476 5919", ["9434765919"]),
        ("9434765919", ["9434765919"]),
        ("NHS no. 943-476-5919.", ["9434765919"]),
        ("Call 0113 496 0123 about 943 476 5919", ["9434765919"]),
        ("943 476 5918", []),  # wrong check digit
        ("0113496012", []),  # ten digits, as a phone number without its last digit
        ("01134960123", []),  # an eleven-digit UK phone number
        ("0113 496 0123", []),
        ("0113-496-0123", []),
        ("+441134960123", []),
        # Regression: the same phone number in international format passes the modulus 11 check as 113 496 0123.
        ("+44 113 496 0123", []),
        ("+44 (0)113 496 0123", []),
        ("19434765919", []),  # part of a longer number
        ("94347659190", []),
        ("", []),
    ],
)
def test_nhs_numbers(text, expected):
    """Test that nhs_numbers finds valid NHS numbers however spaced, and not UK phone numbers nor longer
    digit runs."""
    assert fields.nhs_numbers(text) == expected


@pytest.mark.parametrize(
    ("digits", "expected"),
    [
        ("9434765919", True),
        ("9434765918", False),
        ("1000000010", False),  # the check digit would be 10: never a valid NHS number
        ("943476591", False),
        ("94347659190", False),
        ("943476591X", False),
        ("943 476 5919", False),
    ],
)
def test_is_nhs_number(digits, expected):
    """Test that is_nhs_number applies the modulus 11 check to exactly ten digits."""
    assert fields.is_nhs_number(digits) is expected


@pytest.mark.parametrize(
    ("field", "label"), [("summary", "Summary"), ("notes", "Notes"), ("follow_up_action", "Follow-up action")]
)
def test_log_refuses_an_nhs_number_unless_confirmed(world, field, label):
    """Test that logging text holding an NHS number raises PossibleClientData naming the field and writes
    nothing, and saves as typed once confirmed."""
    priya = world.contact(world.leeds, "Priya Patel")
    text = f"Ref {VALID_NHS_NUMBER}"
    values = {field: text, **({"follow_up_on": TODAY} if field == "follow_up_action" else {})}
    before = counts(world)

    with pytest.raises(PossibleClientData) as caught:
        log(world, [priya], **values)
    assert (str(caught.value), caught.value.field) == (NHS_WARNING.format(label), label)
    assert counts(world) == before

    interaction_id = interactions.log(
        world.db,
        world.admin,
        {"branch_id": world.leeds, "kind_code": "PHONE_CALL", "summary": "Call", "contact_ids": [priya], **values},
        confirmed=True,
    )
    assert interactions.get(world.db, world.admin, interaction_id)[field] == text


def test_phone_numbers_in_notes_need_no_confirmation(world):
    """Test that notes holding ordinary UK phone numbers are saved without asking."""
    priya = world.contact(world.leeds, "Priya Patel")
    notes = "Direct line 0113 496 0123, or 0113496012 / 01134960123 via the switchboard."

    interaction_id = log(world, [priya], notes=notes)

    assert interactions.get(world.db, world.admin, interaction_id)["notes"] == notes


def test_update_refuses_an_nhs_number_unless_confirmed(world):
    """Test that editing an interaction to hold an NHS number is refused until confirmed, changing nothing."""
    priya = world.contact(world.leeds, "Priya Patel")
    interaction_id = log(world, [priya])
    values = {
        "branch_id": world.leeds,
        "kind_code": "PHONE_CALL",
        "summary": "Catch-up call",
        "notes": f"Client {VALID_NHS_NUMBER}",
        "contact_ids": [priya],
    }

    with pytest.raises(PossibleClientData) as caught:
        interactions.update(world.db, world.manager_leeds, interaction_id, values, 1)
    assert str(caught.value) == NHS_WARNING.format("Notes")
    assert interactions.get(world.db, world.admin, interaction_id)["notes"] == ""

    interactions.update(world.db, world.manager_leeds, interaction_id, values, 1, confirmed=True)
    record = interactions.get(world.db, world.admin, interaction_id)
    assert (record["notes"], record["version"]) == (f"Client {VALID_NHS_NUMBER}", 2)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"follow_up_on": "9999-12-31", "follow_up_action": "Call back"},
            "Follow-up date: 9999-12-31 is more than 5 years ahead (after 2031-03-02); check the year.",
        ),
        (
            {"follow_up_on": "2031-03-03"},
            "Follow-up date: 2031-03-03 is more than 5 years ahead (after 2031-03-02); check the year.",
        ),
        (
            {"occurred_on": "0001-01-01"},
            "Date: 0001-01-01 is before 1990-01-01, the earliest date accepted; check the year.",
        ),
    ],
)
def test_implausible_interaction_dates_are_refused(world, changes, message):
    """Test that a follow-up more than five years ahead and an interaction in year 1 are refused, writing nothing.
    Regression: a follow-up in year 9999 was accepted."""
    priya = world.contact(world.leeds, "Priya Patel")
    before = counts(world)

    with pytest.raises(ValidationError) as caught:
        log(world, [priya], **changes)

    assert str(caught.value) == message
    assert counts(world) == before


def test_a_follow_up_five_years_ahead_is_accepted(world):
    """Test that a follow-up exactly five years from today is accepted."""
    priya = world.contact(world.leeds, "Priya Patel")

    interaction_id = log(world, [priya], follow_up_on="2031-03-02", follow_up_action="Renew the agreement")

    assert interactions.get(world.db, world.admin, interaction_id)["follow_up_on"] == "2031-03-02"


# Quick entry (issue 12): the kind a user logs most, Done with an outcome, and its undo.


def test_most_used_kind_is_the_users_own_most_logged_kind(world):
    """Test that most_used_kind is the kind this user logged most (ties to the kind listed first), counting only
    their own interactions, and a phone call for someone who has logged nothing."""
    priya = world.contact(world.leeds, "Priya Patel")
    assert interactions.most_used_kind(world.db, world.manager_leeds) == "PHONE_CALL"
    for kind in ("EMAIL", "EMAIL", "VISIT"):
        log(world, [priya], world.manager_leeds, kind_code=kind)
    for _ in range(3):
        log(world, [priya], world.admin, kind_code="VISIT")

    assert interactions.most_used_kind(world.db, world.manager_leeds) == "EMAIL"
    assert interactions.most_used_kind(world.db, world.admin) == "VISIT"
    assert interactions.most_used_kind(world.db, world.manager_york) == "PHONE_CALL"


def test_complete_with_touch_logs_the_outcome_and_completes_the_follow_up(world):
    """Test that Done with an outcome logs a touch with the follow-up's branch, contacts and organisation (the
    contact's last-touched date moves), and dates the follow-up done on the touch's day, both audited."""
    priya = world.contact(world.leeds, "Priya Patel")
    follow_up = log(world, [priya], occurred_on=ago(20), follow_up_on=ago(5), follow_up_action="Send availability")

    touch = interactions.complete_with_touch(
        world.db,
        world.manager_leeds,
        follow_up,
        {"kind_code": "EMAIL", "occurred_on": ago(1), "summary": "Sent the rota"},
    )

    row = interactions.get(world.db, world.admin, touch)
    assert {k: row[k] for k in ("branch_id", "organisation_id", "occurred_on", "kind_code", "summary")} == {
        "branch_id": world.leeds,
        "organisation_id": world.gp,
        "occurred_on": ago(1),
        "kind_code": "EMAIL",
        "summary": "Sent the rota",
    }
    assert (row["contact_ids"], row["logged_by"], row["follow_up_on"]) == ([priya], "Lee Leeds", None)
    done = interactions.get(world.db, world.admin, follow_up)
    assert (done["follow_up_done_on"], done["version"]) == (ago(1), 2)
    assert contacts.get(world.db, world.admin, priya)["last_touched_on"] == ago(1)
    assert audit.entries(world.db, "interactions", follow_up)[0]["changes"] == {"follow_up_done_on": [None, ago(1)]}
    assert audit.entries(world.db, "interactions", touch)[0]["action"] == "create"


def test_complete_with_touch_writes_nothing_when_refused(world):
    """Test that an outcome holding an NHS number, or a follow-up already done, leaves no touch and no change."""
    priya = world.contact(world.leeds, "Priya Patel")
    follow_up = log(world, [priya], occurred_on=ago(20), follow_up_on=ago(5), follow_up_action="Call back")
    before = counts(world)

    with pytest.raises(PossibleClientData):
        interactions.complete_with_touch(
            world.db, world.manager_leeds, follow_up, {"kind_code": "PHONE_CALL", "summary": f"Re {VALID_NHS_NUMBER}"}
        )
    assert counts(world) == before
    assert interactions.get(world.db, world.admin, follow_up)["follow_up_done_on"] is None

    interactions.complete_follow_up(world.db, world.admin, follow_up)
    before = counts(world)
    with pytest.raises(Conflict) as caught:
        interactions.complete_with_touch(
            world.db, world.manager_leeds, follow_up, {"kind_code": "PHONE_CALL", "summary": "Called"}
        )
    assert str(caught.value) == "This follow-up has already been marked done."
    assert counts(world) == before


def test_undo_complete_with_touch_restores_both(world):
    """Test that undo deletes the logged touch, reopens the follow-up (back on the list of follow-ups) and puts
    the contact's last-touched date back, audited; only the person who logged the touch may undo it."""
    priya = world.contact(world.leeds, "Priya Patel")
    follow_up = log(world, [priya], occurred_on=ago(20), follow_up_on=ago(5), follow_up_action="Call back")
    touch = interactions.complete_with_touch(
        world.db, world.manager_leeds, follow_up, {"kind_code": "PHONE_CALL", "summary": "Called"}
    )

    with pytest.raises(PermissionDenied) as caught:
        interactions.undo_complete_with_touch(world.db, world.lead_north, follow_up, touch)
    assert str(caught.value) == "Only the person who logged that touch can undo it."

    interactions.undo_complete_with_touch(world.db, world.manager_leeds, follow_up, touch)

    assert world.db.execute("SELECT count(*) FROM interactions WHERE id = ?", [touch]).fetchone()[0] == 0
    assert [r["id"] for r in interactions.follow_ups(world.db, world.manager_leeds, today=TODAY)] == [follow_up]
    assert contacts.get(world.db, world.admin, priya)["last_touched_on"] == ago(20)
    reopened = audit.entries(world.db, "interactions", follow_up)[0]
    assert (reopened["username"], reopened["changes"]) == ("manager.leeds", {"follow_up_done_on": [STAMP[:10], None]})
    assert audit.entries(world.db, "interactions", touch)[0]["action"] == "delete"


def test_people_of_interactions_are_those_the_actor_may_see(world):
    """Test that people() gives each interaction's contacts with their tel: links, sorted by name, leaving out
    erased people and those of branches outside the actor's scope; an interaction without contacts gets []."""
    from crm import privacy

    priya = world.contact(world.leeds, "Priya Patel", phone="0113 496 0001")
    adam = world.contact(world.leeds, "Adam Ash")
    gone = world.contact(world.leeds, "Gina Gone")
    with_people = log(world, [priya, adam, gone])
    privacy.erase(world.db, world.admin, gone)
    organisation_only = interactions.log(
        world.db,
        world.admin,
        {"branch_id": world.leeds, "kind_code": "VISIT", "summary": "Drop-in", "organisation_id": world.gp},
    )

    found = interactions.people(world.db, world.manager_leeds, [with_people, organisation_only])

    assert [(p["id"], p["name"], p["phone_link"]) for p in found[with_people]] == [
        (adam, "Adam Ash", ""),
        (priya, "Priya Patel", "tel:+441134960001"),
    ]
    assert found[organisation_only] == []
    assert interactions.people(world.db, world.manager_york, [with_people]) == {with_people: []}
    assert interactions.people(world.db, world.manager_york, []) == {}
