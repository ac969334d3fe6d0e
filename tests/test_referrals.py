"""Referrals: logging (a touch with the referrer), outcome rules, response times across GMT and BST, measures per
branch, partner type and organisation, scope of every query, the 0010 migration from old referral interactions,
and ``python -m crm referrals``."""

import csv
import io
import json
import sqlite3
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from crm import __main__ as cli
from crm import clock, contacts, db, interactions, referrals, schema, users
from crm.errors import Conflict, NotFound, PossibleClientData, ValidationError
from tests.conftest import PASSWORD, World, copy_world

FROZEN = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)  # 11:00 in the UK (BST)
VALID_NHS_NUMBER = "943 476 5919"
NOT_FOUND = "That referral does not exist or is not in one of your branches."
REASON_COLUMNS = [
    "declined_no_capacity",
    "declined_outside_area",
    "declined_needs_beyond_service",
    "declined_chose_other_provider",
    "declined_funding_not_agreed",
    "declined_other",
]


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world, with the clock stopped at FROZEN."""
    path, built = template
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, tmp_path / "crm.db")
    yield scene
    scene.db.close()


def local(text: str) -> datetime:
    """A UK wall-clock time, as typed in the form (naive)."""
    return datetime.fromisoformat(text)


def refer(world: World, branch_id: int, *, contact_id=None, organisation_id=None, at="2026-04-01 08:00", **extra):
    values = {
        "branch_id": branch_id,
        "received_at": local(at),
        "contact_id": contact_id,
        "organisation_id": organisation_id,
        "channel": "phone",
        "urgency": "routine",
        **extra,
    }
    return referrals.log(world.db, world.admin, values)


def decide(world: World, referral_id: int, outcome: str, at: str | None, **extra) -> None:
    version = referrals.get(world.db, world.admin, referral_id)["version"]
    values = {"outcome": outcome, "decided_at": local(at) if at else None, **extra}
    referrals.record_outcome(world.db, world.admin, referral_id, values, version)


# Logging.


def test_log_stores_the_referral_and_a_referral_interaction_that_counts_as_a_touch(world):
    """Test that logging a referral stores every field (time in UTC), and logs a "Referral received" interaction
    with the contact on the UK date of receipt, which resets their last-touched date."""
    priya = world.contact(world.leeds, "Priya Patel")
    referral_id = refer(
        world,
        world.leeds,
        contact_id=priya,
        at="2026-04-15 00:30",  # BST: 23:30 UTC the day before
        channel="e_referral",
        urgency="hospital_discharge",
        hours_per_week="10.5",
        start_wanted_on="2026-04-16",
        area=" LS6 ",
        provider_reference="CM-00123",
    )

    row = world.db.execute_returning_dicts("SELECT * FROM referrals WHERE id = ?", [referral_id])[0]
    interaction_id = row.pop("interaction_id")
    assert row == {
        "id": referral_id,
        "branch_id": world.leeds,
        "received_at": "2026-04-14T23:30:00Z",
        "contact_id": priya,
        "organisation_id": world.gp,
        "channel": "e_referral",
        "urgency": "hospital_discharge",
        "hours_per_week": 10.5,
        "start_wanted_on": "2026-04-16",
        "area": "LS6",
        "provider_reference": "CM-00123",
        "outcome": "open",
        "decline_reason": None,
        "care_started_on": None,
        "decided_at": None,
        "outcome_note": "",
        "created_at": "2026-04-15T10:00:00Z",
        "created_by": world.admin.id,
        "updated_at": "2026-04-15T10:00:00Z",
        "updated_by": world.admin.id,
        "version": 1,
    }
    interaction = interactions.get(world.db, world.admin, interaction_id)
    assert (
        interaction["kind_code"],
        interaction["occurred_on"],
        interaction["summary"],
        interaction["contact_ids"],
    ) == (
        "REFERRAL_RECEIVED",
        "2026-04-15",
        "Referral received from Priya Patel, Hyde Park Surgery (hospital discharge)",
        [priya],
    )
    assert contacts.get(world.db, world.admin, priya)["last_touched_on"] == "2026-04-15"
    shown = referrals.get(world.db, world.admin, referral_id)
    assert (shown["received"], shown["contact"], shown["organisation"], shown["partner_type"]) == (
        "15 Apr 2026 00:30",
        "Priya Patel",
        "Hyde Park Surgery",
        "GP practice",
    )
    entry = world.db.execute_returning_dicts(
        "SELECT action, branch_id FROM audit_log WHERE table_name = 'referrals' AND row_id = ?", [referral_id]
    )
    assert entry == [{"action": "create", "branch_id": world.leeds}]


def test_log_from_an_organisation_only(world):
    """Test that a referral from an organisation with no named contact is logged against the organisation."""
    referral_id = refer(world, world.leeds, organisation_id=world.ot)

    shown = referrals.get(world.db, world.admin, referral_id)
    assert (shown["contact"], shown["organisation"], shown["outcome_label"]) == (None, "Leeds Community OT", "Open")
    interaction = interactions.get(world.db, world.admin, shown["interaction_id"])
    assert (interaction["summary"], interaction["organisation_id"], interaction["contact_ids"]) == (
        "Referral received from Leeds Community OT",
        world.ot,
        [],
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"contact_id": None, "organisation_id": None},
            "Referred by: choose the contact or the organisation that sent the referral.",
        ),
        ({"channel": "fax"}, "How it came: choose one of: Phone, Email, Council portal, E-referral."),
        ({"channel": ""}, "How it came: is required."),
        ({"urgency": "soon"}, "Urgency: choose one of: Routine, Urgent, Hospital discharge."),
        ({"received_at": local("2026-04-15 11:01")}, "Received: cannot be in the future."),
        ({"received_at": None}, "Received: is required."),
        ({"received_at": "yesterday"}, "Received: “yesterday” is not a date and time (YYYY-MM-DD HH:MM)."),
        ({"hours_per_week": "0"}, "Hours of care per week: must be more than 0 and at most 168."),
        ({"hours_per_week": "ten"}, "Hours of care per week: “ten” is not a number."),
        ({"provider_reference": "x" * 41}, "Your reference: is too long (41 characters; the limit is 40)."),
        ({"contact_id": "other branch"}, "Contact: must be a contact of the referral's branch."),
    ],
)
def test_log_refuses_bad_input_and_writes_nothing(world, changes, message):
    """Test that each bad field is refused with its message, and no referral or interaction is written."""
    priya = world.contact(world.leeds, "Priya Patel")
    if changes.get("contact_id") == "other branch":
        changes = {"contact_id": world.contact(world.york, "Yusuf York")}
    values = {
        "branch_id": world.leeds,
        "received_at": local("2026-04-15 11:00"),  # exactly now is fine
        "contact_id": priya,
        "channel": "phone",
        "urgency": "routine",
        **changes,
    }
    with pytest.raises(ValidationError) as refused:
        referrals.log(world.db, world.admin, values)

    assert str(refused.value) == message
    assert (world.db.table("referrals").count, world.db.table("interactions").count) == (0, 0)


def test_reference_that_looks_like_an_nhs_number_needs_confirming(world):
    """Test that an NHS number in the provider's reference is refused unless the user confirms it is not one."""
    priya = world.contact(world.leeds, "Priya Patel")
    values = {
        "branch_id": world.leeds,
        "received_at": local("2026-04-14 09:00"),
        "contact_id": priya,
        "channel": "email",
        "urgency": "urgent",
        "provider_reference": VALID_NHS_NUMBER,
    }
    with pytest.raises(PossibleClientData) as refused:
        referrals.log(world.db, world.admin, values)
    assert str(refused.value).startswith("Your reference: contains what looks like an NHS number.")
    assert world.db.table("referrals").count == 0

    referral_id = referrals.log(world.db, world.admin, values, confirmed=True)
    assert referrals.get(world.db, world.admin, referral_id)["provider_reference"] == VALID_NHS_NUMBER


def test_managers_log_only_in_their_own_branch(world):
    """Test that a branch manager cannot log a referral in another branch, nor see or decide one there."""
    york_id = refer(world, world.york, organisation_id=world.gp)
    values = {"branch_id": world.york, "received_at": local("2026-04-14 09:00"), "organisation_id": world.gp}
    values.update(channel="phone", urgency="routine")

    with pytest.raises(NotFound):
        referrals.log(world.db, world.manager_leeds, values)
    with pytest.raises(NotFound) as hidden:
        referrals.get(world.db, world.manager_leeds, york_id)
    assert str(hidden.value) == NOT_FOUND
    with pytest.raises(NotFound):
        referrals.record_outcome(world.db, world.manager_leeds, york_id, {"outcome": "withdrawn"}, 1)
    assert referrals.get(world.db, world.admin, york_id)["outcome"] == "open"


# Outcomes.


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"outcome": "unknown"}, "Outcome: choose open, accepted, declined or withdrawn."),
        ({"outcome": ""}, "Outcome: choose open, accepted, declined or withdrawn."),
        ({"outcome": "accepted"}, "Decided: is required for an outcome other than open."),
        (
            {"outcome": "withdrawn", "decided_at": local("2026-04-01 07:59")},
            "Decided: cannot be before the referral was received (1 Apr 2026 08:00).",
        ),
        ({"outcome": "accepted", "decided_at": local("2026-04-15 11:01")}, "Decided: cannot be in the future."),
        ({"outcome": "declined", "decided_at": local("2026-04-02 09:00")}, "Reason declined: choose a reason."),
        (
            {"outcome": "declined", "decided_at": local("2026-04-02 09:00"), "decline_reason": "MOON"},
            "Reason declined: “MOON” is not on the list of reasons.",
        ),
        (
            {"outcome": "declined", "decided_at": local("2026-04-02 09:00"), "decline_reason": "OTHER"},
            "Note: say why, when the reason is Other.",
        ),
        (
            {"outcome": "accepted", "decided_at": local("2026-04-02 09:00"), "care_started_on": "2026-03-31"},
            "Care started on: cannot be before the referral was received.",
        ),
        (
            {"outcome": "accepted", "decided_at": local("2026-04-02 09:00"), "outcome_note": VALID_NHS_NUMBER},
            "Note: contains what looks like an NHS number. Partner records must not hold details of the people you "
            "support: remove it, or confirm that it is not an NHS number.",
        ),
    ],
)
def test_outcome_rules_refuse(world, values, message):
    """Test that each outcome breaking a rule is refused with its message and the referral stays open."""
    referral_id = refer(world, world.leeds, organisation_id=world.gp)

    with pytest.raises(ValidationError) as refused:
        referrals.record_outcome(world.db, world.admin, referral_id, values, 1)

    assert str(refused.value) == message
    after = referrals.get(world.db, world.admin, referral_id)
    assert (after["outcome"], after["decided_at"], after["version"]) == ("open", None, 1)


@pytest.mark.parametrize(
    ("values", "stored"),
    [
        (
            {"outcome": "accepted", "decided_at": local("2026-04-01 14:30"), "care_started_on": "2026-04-03"},
            ("accepted", "2026-04-01T13:30:00Z", None, "2026-04-03", "", 6.5),
        ),
        (
            {"outcome": "accepted", "decided_at": local("2026-04-01 08:00")},
            ("accepted", "2026-04-01T07:00:00Z", None, None, "", 0.0),
        ),
        (
            {
                "outcome": "declined",
                "decided_at": local("2026-04-02 08:00"),
                "decline_reason": "NO_CAPACITY",
                "care_started_on": "2026-04-03",
            },
            ("declined", "2026-04-02T07:00:00Z", "NO_CAPACITY", None, "", 24.0),
        ),
        (
            {
                "outcome": "declined",
                "decided_at": local("2026-04-01 09:00"),
                "decline_reason": "OTHER",
                "outcome_note": "Family moving away",
            },
            ("declined", "2026-04-01T08:00:00Z", "OTHER", None, "Family moving away", 1.0),
        ),
        (
            {"outcome": "withdrawn", "decided_at": local("2026-04-01 10:00"), "decline_reason": "NO_CAPACITY"},
            ("withdrawn", "2026-04-01T09:00:00Z", None, None, "", None),
        ),
        (
            {
                "outcome": "open",
                "decided_at": local("2026-04-01 10:00"),
                "decline_reason": "NO_CAPACITY",
                "care_started_on": "2026-04-03",
            },
            ("open", None, None, None, "", None),
        ),
    ],
)
def test_outcome_rules_store(world, values, stored):
    """Test what each allowed outcome stores: a reason only when declined, a start date only when accepted,
    nothing decided while open; and the response time (answered ones only, withdrawn has none)."""
    referral_id = refer(world, world.leeds, organisation_id=world.gp)

    referrals.record_outcome(world.db, world.admin, referral_id, values, 1)

    after = referrals.get(world.db, world.admin, referral_id)
    keys = ("outcome", "decided_at", "decline_reason", "care_started_on", "outcome_note", "response_hours")
    assert tuple(after[k] for k in keys) == stored


def test_outcome_edit_conflict_and_audit(world):
    """Test that recording an outcome over someone else's newer save is refused, and that a change is audited
    with old and new values."""
    referral_id = refer(world, world.leeds, organisation_id=world.gp)
    decide(world, referral_id, "withdrawn", "2026-04-01 09:00")

    with pytest.raises(Conflict):
        referrals.record_outcome(world.db, world.admin, referral_id, {"outcome": "open"}, 1)

    changes = world.db.execute(
        "SELECT changes FROM audit_log WHERE table_name = 'referrals' AND action = 'update'"
    ).fetchall()
    assert [json.loads(c[0]) for c in changes] == [
        {"outcome": ["open", "withdrawn"], "decided_at": [None, "2026-04-01T08:00:00Z"]}
    ]


# Response times across GMT and BST.


@pytest.mark.parametrize(
    ("received", "decided", "stamps", "hours"),
    [
        ("2026-01-05 09:00", "2026-01-05 15:30", ("2026-01-05T09:00:00Z", "2026-01-05T15:30:00Z"), 6.5),  # GMT
        ("2026-04-01 08:00", "2026-04-03 08:00", ("2026-04-01T07:00:00Z", "2026-04-03T07:00:00Z"), 48.0),  # BST
        # Clocks go forward at 01:00 on 29 March 2026: the night is an hour shorter.
        ("2026-03-28 22:00", "2026-03-29 10:00", ("2026-03-28T22:00:00Z", "2026-03-29T09:00:00Z"), 11.0),
        # Clocks go back at 02:00 on 25 October 2025: the night is an hour longer.
        ("2025-10-25 22:00", "2025-10-26 10:00", ("2025-10-25T21:00:00Z", "2025-10-26T10:00:00Z"), 13.0),
        ("2026-04-14 23:59", "2026-04-15 00:01", ("2026-04-14T22:59:00Z", "2026-04-14T23:01:00Z"), 0.0),
    ],
)
def test_response_hours_across_time_zones(world, received, decided, stamps, hours):
    """Test that times typed in UK local time are stored in UTC and the response time is real elapsed hours,
    also across the changes between GMT and BST."""
    referral_id = refer(world, world.leeds, organisation_id=world.gp, at=received)
    decide(world, referral_id, "accepted", decided)

    after = referrals.get(world.db, world.admin, referral_id)
    assert (after["received_at"], after["decided_at"], after["response_hours"]) == (*stamps, hours)
    assert (after["received"], after["decided"]) == (
        datetime.fromisoformat(received).strftime("%-d %b %Y %H:%M"),
        datetime.fromisoformat(decided).strftime("%-d %b %Y %H:%M"),
    )
    assert referrals.measures(world.db, world.admin)[0]["median_response_hours"] == hours


def stored_response(world: World, referral_id: int) -> tuple | None:
    return world.db.execute(
        "SELECT branch_id, organisation_id, received_at, hours FROM referral_responses WHERE referral_id = ?",
        [referral_id],
    ).fetchone()


def test_stored_response_time_matches_the_computed_one_after_recording_and_editing_the_outcome(world):
    """Test that the response time stored when an outcome is saved (schema step 0019) is the elapsed hours from
    receipt to decision, the one the referral shows, after record_outcome, after an edit of the decision time,
    after a merge moves the referrer, and that it goes when the referral is no longer answered."""
    from crm import merge, organisations

    referral_id = refer(world, world.leeds, organisation_id=world.gp, at="2026-04-01 08:00")
    assert stored_response(world, referral_id) is None  # open: not answered

    decide(world, referral_id, "accepted", "2026-04-03 09:20")
    shown = referrals.get(world.db, world.admin, referral_id)["response_hours"]
    assert (shown, stored_response(world, referral_id)) == (
        49.3,
        (world.leeds, world.gp, "2026-04-01T07:00:00Z", (49 * 3600 + 20 * 60) / 3600),
    )

    decide(world, referral_id, "declined", "2026-04-01 08:45:30", decline_reason="NO_CAPACITY")
    after = referrals.get(world.db, world.admin, referral_id)
    hours = stored_response(world, referral_id)[3]
    assert (after["response_hours"], round(hours, 1), hours) == (0.8, 0.8, round(45.5 * 60) / 3600)
    assert referrals.measures(world.db, world.admin)[0]["median_response_hours"] == 0.8

    surgery = organisations.add(world.db, world.admin, {"name": "Moorside Surgery", "type_code": "GP_PRACTICE"})
    merge.merge_organisations(world.db, world.admin, surgery, world.gp)
    assert stored_response(world, referral_id)[:2] == (world.leeds, surgery)

    decide(world, referral_id, "withdrawn", "2026-04-02 10:00")
    assert stored_response(world, referral_id) is None
    assert referrals.get(world.db, world.admin, referral_id)["response_hours"] is None


# Measures.


@pytest.fixture
def figures(world):
    """Leeds: five referrals (two accepted, one declined, one withdrawn, one open; answered in 6.5, 11 and 13
    hours); York: two, answered in 2 and 5 hours; Bristol (the other region): one declined, out of area."""
    priya = world.contact(world.leeds, "Priya Patel")
    omar = world.contact(world.leeds, "Omar Okafor", world.ot)
    yan = world.contact(world.york, "Yan Yates", world.ot)
    cara = world.contact(world.bristol, "Cara Council", world.council)
    plan = [
        (world.leeds, priya, "2026-04-01 08:00", "accepted", "2026-04-01 14:30", {}),
        (world.leeds, priya, "2026-03-28 22:00", "declined", "2026-03-29 10:00", {"decline_reason": "NO_CAPACITY"}),
        (world.leeds, omar, "2026-04-02 09:00", "accepted", "2026-04-02 22:00", {}),
        (world.leeds, omar, "2026-04-03 09:00", "withdrawn", "2026-04-05 09:00", {}),
        (world.leeds, priya, "2026-04-14 09:00", "open", None, {}),
        (world.york, yan, "2026-04-01 09:00", "accepted", "2026-04-01 11:00", {}),
        (world.york, yan, "2026-04-02 09:00", "declined", "2026-04-02 14:00", {"decline_reason": "NO_CAPACITY"}),
        (world.bristol, cara, "2026-02-10 09:00", "declined", "2026-02-10 10:00", {"decline_reason": "OUTSIDE_AREA"}),
    ]
    for branch, contact, received, outcome, decided, extra in plan:
        referral_id = refer(world, branch, contact_id=contact, at=received)
        if outcome != "open":
            decide(world, referral_id, outcome, decided, **extra)
    return world


def reasons(**counts: int) -> dict:
    return {column: counts.get(column.removeprefix("declined_"), 0) for column in REASON_COLUMNS}


def test_measures_per_branch(figures):
    """Test the figures per branch: received, each outcome, acceptance rate of answered referrals, median
    response time (odd and even counts), declines by reason."""
    assert referrals.measures(figures.db, figures.admin) == [
        {
            "region": "North",
            "branch": "Leeds",
            "received": 5,
            "open": 1,
            "accepted": 2,
            "declined": 1,
            "withdrawn": 1,
            "unknown": 0,
            "acceptance_rate": 0.667,
            "median_response_hours": 11.0,
            **reasons(no_capacity=1),
        },
        {
            "region": "North",
            "branch": "York",
            "received": 2,
            "open": 0,
            "accepted": 1,
            "declined": 1,
            "withdrawn": 0,
            "unknown": 0,
            "acceptance_rate": 0.5,
            "median_response_hours": 3.5,
            **reasons(no_capacity=1),
        },
        {
            "region": "South",
            "branch": "Bristol",
            "received": 1,
            "open": 0,
            "accepted": 0,
            "declined": 1,
            "withdrawn": 0,
            "unknown": 0,
            "acceptance_rate": 0.0,
            "median_response_hours": 1.0,
            **reasons(outside_area=1),
        },
    ]
    assert referrals.measure_columns(figures.db) == [
        "region",
        "branch",
        "received",
        "open",
        "accepted",
        "declined",
        "withdrawn",
        "unknown",
        "acceptance_rate",
        "median_response_hours",
        *REASON_COLUMNS,
    ]


def test_measures_per_partner_type_and_organisation(figures):
    """Test the same figures grouped by the referrer's partner type and by referring organisation."""
    by_type = referrals.measures(figures.db, figures.admin, by="partner_type")
    assert [(r["partner_type"], r["received"], r["accepted"], r["median_response_hours"]) for r in by_type] == [
        ("Community therapy (OT, physio, reablement)", 4, 2, 5.0),
        ("Council adult social care", 1, 0, 1.0),
        ("GP practice", 3, 1, 8.8),
    ]
    by_org = referrals.measures(figures.db, figures.lead_north, by="organisation")
    assert [(r["organisation"], r["partner_type"], r["received"], r["acceptance_rate"]) for r in by_org] == [
        ("Leeds Community OT", "Community therapy (OT, physio, reablement)", 4, 0.667),
        ("Hyde Park Surgery", "GP practice", 3, 0.5),
    ]
    with pytest.raises(ValidationError):
        referrals.measures(figures.db, figures.admin, by="colour")


def test_measures_between_uk_dates(figures):
    """Test that --since and --until are whole UK days: 22:00 GMT on 28 March is on the 28th."""
    rows = referrals.measures(figures.db, figures.admin, since=date(2026, 3, 28), until=date(2026, 3, 28))
    assert [(r["branch"], r["received"], r["declined"]) for r in rows] == [("Leeds", 1, 1)]
    rows = referrals.measures(figures.db, figures.admin, since=date(2026, 4, 14))
    assert [(r["branch"], r["received"], r["open"], r["acceptance_rate"]) for r in rows] == [("Leeds", 1, 1, None)]


def test_declines_and_months(figures):
    """Test declines by reason (every reason listed) and referrals per month and outcome."""
    assert referrals.declines(figures.db, figures.admin) == [
        {"reason": "No capacity", "declined": 2},
        {"reason": "Outside our area", "declined": 1},
        {"reason": "Needs beyond our service", "declined": 0},
        {"reason": "Person chose another provider", "declined": 0},
        {"reason": "Funding not agreed", "declined": 0},
        {"reason": "Other", "declined": 0},
    ]
    assert referrals.by_month(figures.db, figures.lead_north) == [
        {"month": "2026-03", "outcome": "Declined", "referrals": 1},
        {"month": "2026-04", "outcome": "Accepted", "referrals": 3},
        {"month": "2026-04", "outcome": "Declined", "referrals": 1},
        {"month": "2026-04", "outcome": "Open", "referrals": 1},
        {"month": "2026-04", "outcome": "Withdrawn by the referrer", "referrals": 1},
    ]


@pytest.mark.parametrize(
    ("who", "branches"),
    [
        ("admin", {"Leeds", "York", "Bristol"}),
        ("lead_north", {"Leeds", "York"}),
        ("lead_south", {"Bristol"}),
        ("manager_leeds", {"Leeds"}),
        ("manager_york", {"York"}),
        ("manager_bristol", {"Bristol"}),
    ],
)
def test_every_query_is_scoped_by_the_acting_user(figures, who, branches):
    """Test that every referral query (list, measures by each grouping, declines, months, last 90 days per branch,
    a contact's and an organisation's referrals) shows only the acting user's branches."""
    actor = getattr(figures, who)
    ids = {r["branch"]: r["branch_id"] for r in referrals.search(figures.db, figures.admin)}
    in_scope = {ids[name] for name in branches}

    assert {r["branch"] for r in referrals.search(figures.db, actor)} == branches
    assert {r["branch"] for r in referrals.measures(figures.db, actor)} == branches
    received = sum(r["received"] for r in referrals.measures(figures.db, actor))
    for by in ("partner_type", "organisation"):
        assert sum(r["received"] for r in referrals.measures(figures.db, actor, by=by)) == received
    assert sum(r["declined"] for r in referrals.declines(figures.db, actor)) == sum(
        r["declined"] for r in referrals.measures(figures.db, actor)
    )
    assert sum(r["referrals"] for r in referrals.by_month(figures.db, actor)) == received
    assert set(referrals.received_by_branch(figures.db, actor)) == in_scope
    assert {r["branch"] for r in referrals.search(figures.db, actor, organisation_id=figures.gp)} <= branches
    for referral in referrals.search(figures.db, figures.admin):
        if referral["branch"] not in branches:
            with pytest.raises(NotFound):
                referrals.get(figures.db, actor, referral["id"])


def test_a_lead_cannot_widen_their_scope_with_filters(figures):
    """Test that a regional lead asking for a branch of another region gets nothing, not that branch."""
    assert referrals.search(figures.db, figures.lead_north, branch_id=figures.bristol) == []
    assert referrals.measures(figures.db, figures.lead_north, region_id=figures.south) == []
    assert referrals.received_by_branch(figures.db, figures.lead_north, branch_id=figures.bristol) == {}


def test_received_in_the_last_90_days_per_branch(figures):
    """Test the count beside each branch's coverage score: referrals received in the last 90 days."""
    assert referrals.received_by_branch(figures.db, figures.admin) == {
        figures.leeds: 5,
        figures.york: 2,
        figures.bristol: 1,
    }
    assert referrals.received_by_branch(figures.db, figures.admin, days=20) == {figures.leeds: 5, figures.york: 2}


def test_contact_and_organisation_referrals(figures):
    """Test the referrals a contact sent and an organisation sent, newest first, with their outcomes."""
    priya = figures.db.execute("SELECT id FROM contacts WHERE name = 'Priya Patel'").fetchone()[0]
    rows = referrals.search(figures.db, figures.manager_leeds, contact_id=priya)
    assert [(r["received"], r["outcome_label"], r["decline_reason_label"]) for r in rows] == [
        ("14 Apr 2026 09:00", "Open", ""),
        ("1 Apr 2026 08:00", "Accepted", ""),
        ("28 Mar 2026 22:00", "Declined", "No capacity"),
    ]
    rows = referrals.search(figures.db, figures.admin, organisation_id=figures.ot)
    assert [(r["branch"], r["contact"], r["outcome"]) for r in rows] == [
        ("Leeds", "Omar Okafor", "withdrawn"),
        ("York", "Yan Yates", "declined"),  # received at the same moment as the next: newest id first
        ("Leeds", "Omar Okafor", "accepted"),
        ("York", "Yan Yates", "accepted"),
    ]


# The Referrals page's list, one page at a time, and its count (issue 13).

# The figures fixture's referrals, by their place in its plan (1 = the first logged), newest first: received
# 14 Apr, 3 Apr, 2 Apr (York's then Leeds's, received at the same moment: the newest id first), 1 Apr 09:00 and
# 08:00, 28 Mar, 10 Feb.
NEWEST_FIRST = {
    "admin": [5, 4, 7, 3, 6, 1, 2, 8],
    "lead_north": [5, 4, 7, 3, 6, 1, 2],
    "lead_south": [8],
    "manager_leeds": [5, 4, 3, 1, 2],
    "manager_york": [7, 6],
}


def logged(world: World, places: list[int]) -> list[dict]:
    """The whole records of the referrals at these places in the figures fixture's plan."""
    ids = [row[0] for row in world.db.execute("SELECT id FROM referrals ORDER BY id")]
    return [referrals.get(world.db, world.admin, ids[place - 1]) for place in places]


@pytest.mark.parametrize("who", list(NEWEST_FIRST))
def test_pages_of_the_list_are_newest_first_with_none_repeated_or_skipped(figures, who):
    """Test that search with a limit and an offset gives the acting user's referrals (whole records) newest
    first, page after page with none repeated or skipped, and that count says how many there are in all."""
    actor = getattr(figures, who)
    expected = logged(figures, NEWEST_FIRST[who])
    pages = [referrals.search(figures.db, actor, limit=3, offset=offset) for offset in (0, 3, 6, 9)]
    assert pages == [expected[0:3], expected[3:6], expected[6:9], []]
    assert referrals.search(figures.db, actor) == expected
    assert referrals.count(figures.db, actor) == len(expected)


@pytest.mark.parametrize(
    ("who", "filters", "places"),
    [
        ("admin", {"region_id": "north"}, [5, 4, 7, 3, 6, 1, 2]),
        ("admin", {"organisation_id": "ot"}, [4, 7, 3, 6]),
        ("admin", {"since": date(2026, 3, 28), "until": date(2026, 4, 2)}, [7, 3, 6, 1, 2]),
        ("lead_north", {"branch_id": "york"}, [7, 6]),
        ("lead_north", {"branch_id": "bristol"}, []),  # another region's branch: nothing, not that branch
        ("lead_north", {"region_id": "south"}, []),
        ("manager_leeds", {"outcome": "accepted"}, [3, 1]),
        ("manager_leeds", {"branch_id": "york"}, []),
        ("manager_york", {"since": date(2026, 4, 2)}, [7]),
    ],
)
def test_count_is_how_many_search_finds_with_the_same_filters(figures, who, filters, places):
    """Test that count and search agree, filter by filter, within the acting user's scope."""
    actor = getattr(figures, who)
    filters = {
        name: getattr(figures, value) if name in ("region_id", "branch_id", "organisation_id") else value
        for name, value in filters.items()
    }
    assert referrals.search(figures.db, actor, **filters) == logged(figures, places)
    assert referrals.count(figures.db, actor, **filters) == len(places)
    assert referrals.search(figures.db, actor, **filters, limit=1, offset=1) == logged(figures, places[1:2])


DECLINE_REASONS = [
    "No capacity",
    "Outside our area",
    "Needs beyond our service",
    "Person chose another provider",
    "Funding not agreed",
    "Other",
]


@pytest.mark.parametrize(
    ("who", "since", "until", "no_capacity", "outside_area"),
    [
        ("admin", date(2026, 3, 1), None, 2, 0),  # Bristol's decline was received in February
        ("admin", date(2026, 3, 29), date(2026, 4, 30), 1, 0),  # Leeds's decline was received on 28 March
        ("admin", None, date(2026, 3, 28), 1, 1),
        ("lead_north", date(2026, 2, 1), date(2026, 4, 30), 2, 0),
        ("lead_south", date(2026, 2, 1), date(2026, 4, 30), 0, 1),
        ("manager_leeds", date(2026, 3, 28), date(2026, 3, 28), 1, 0),
        ("manager_york", date(2026, 3, 28), date(2026, 3, 28), 0, 0),
    ],
)
def test_declines_per_reason_within_scope_and_dates(figures, who, since, until, no_capacity, outside_area):
    """Test that declines counts only the declined referrals of the acting user's branches received between the
    UK dates, and lists every reason, zero included, in the list's order."""
    counts = {"No capacity": no_capacity, "Outside our area": outside_area}
    assert referrals.declines(figures.db, getattr(figures, who), since=since, until=until) == [
        {"reason": reason, "declined": counts.get(reason, 0)} for reason in DECLINE_REASONS
    ]


def test_the_figures_read_the_covering_index_on_receipt_time(figures):
    """Test that an administrator's declines, months and count over a period read only the index on receipt time
    (schema step 0020), never the wide referral rows. Regression: declines joined the reason list to the
    referrals with the scope and dates in the join, reading the period's rows once per reason."""
    statements: list[str] = []
    figures.db.conn.set_trace_callback(statements.append)
    try:
        period = {"since": date(2026, 3, 1), "until": date(2026, 4, 30)}
        referrals.declines(figures.db, figures.admin, **period)
        referrals.by_month(figures.db, figures.admin, **period)
        referrals.count(figures.db, figures.admin, **period)
    finally:
        figures.db.conn.set_trace_callback(None)
    for sql in [s for s in statements if "FROM referrals r" in s]:
        reads = [
            row[3]
            for row in figures.db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()
            if row[3].startswith(("SCAN r", "SEARCH r"))
        ]
        assert reads == [
            "SEARCH r USING COVERING INDEX idx_referrals_received_covering (received_at>? AND received_at<?)"
        ]


def measures_plan(figures, actor, by: str) -> list[str]:
    """The query plan, step by step, of the measures' one query for ``actor`` grouped ``by``."""
    statements: list[str] = []
    figures.db.conn.set_trace_callback(statements.append)
    try:
        referrals.measures(figures.db, actor, by=by)
    finally:
        figures.db.conn.set_trace_callback(None)
    [sql] = [s for s in statements if "WITH picked" in s]
    return [row[3] for row in figures.db.execute(f"EXPLAIN QUERY PLAN {sql}").fetchall()]


@pytest.mark.parametrize("by", ["partner_type", "organisation"])
def test_an_administrators_measures_per_referrer_count_from_one_pass_of_an_index_in_their_order(figures, by):
    """Test that an administrator's measures per referring organisation or partner type count the referrals from
    the index on referrer, outcome and reason (schema step 0026) in its order: no referral row read and no sort of
    them. Regression: the index on the referrer alone read each of a large provider's 50,000 referral rows."""
    plan = measures_plan(figures, figures.admin, by)
    counted = plan[: plan.index("SCAN g")]
    assert counted == ["CO-ROUTINE picked", "SCAN r USING COVERING INDEX idx_referrals_by_referrer"]


def referral_indexes(database) -> dict[str, list[str]]:
    names = [row[1] for row in database.execute("PRAGMA index_list(referrals)") if row[1].startswith("idx_")]
    return {name: [row[2] for row in database.execute(f"PRAGMA index_info({name})")] for name in sorted(names)}


def test_step_0020_replaces_the_index_on_receipt_time_and_keeps_every_referral(figures, tmp_path):
    """Test that a database left at step 0019 (its index on received_at and branch_id) upgrades to the covering
    index on receipt time, with every referral as it was."""
    path = tmp_path / "at-0019.db"
    figures.db.execute("VACUUM INTO ?", [str(path)])
    old = sqlite3.connect(path)
    with old:
        old.execute("DROP INDEX idx_referrals_received_covering")
        old.execute("CREATE INDEX idx_referrals_received ON referrals(received_at, branch_id)")
        old.execute("DELETE FROM _sqlite_migrations WHERE name = '0020_referral_received_covering'")
        before = old.execute("SELECT * FROM referrals ORDER BY id").fetchall()
    old.close()

    upgraded = db.connect(path)
    try:
        assert schema.pending(upgraded) == []
        assert upgraded.execute("SELECT * FROM referrals ORDER BY id").fetchall() == before
        assert len(before) == 8
        indexes = referral_indexes(upgraded)
        assert "idx_referrals_received" not in indexes
        assert indexes["idx_referrals_received_covering"] == [
            "received_at",
            "branch_id",
            "organisation_id",
            "outcome",
            "decline_reason",
        ]
    finally:
        upgraded.close()


# The command line.


def run_cli(capsys, path: Path, *args: str) -> tuple[int, str, str]:
    code = cli.main(["--db", str(path), "referrals", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_formats_and_scope(figures, capsys):
    """Test `python -m crm referrals` as CSV, JSON and a table, narrowed by --branch, --region and dates."""
    path = Path(figures.db.execute("PRAGMA database_list").fetchone()[2])

    code, out, _ = run_cli(capsys, path, "--format", "csv", "--region", "North")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["branch"], r["received"], r["acceptance_rate"], r["median_response_hours"]) for r in rows] == [
        ("Leeds", "5", "0.667", "11.0"),
        ("York", "2", "0.5", "3.5"),
    ]
    code, out, _ = run_cli(capsys, path, "--format", "json", "--branch", "Bristol", "--by", "organisation")
    assert json.loads(out) == [
        {
            "organisation": "Bristol Council Adult Social Care",
            "partner_type": "Council adult social care",
            "received": 1,
            "open": 0,
            "accepted": 0,
            "declined": 1,
            "withdrawn": 0,
            "unknown": 0,
            "acceptance_rate": 0.0,
            "median_response_hours": 1.0,
            **reasons(outside_area=1),
        }
    ]
    code, out, _ = run_cli(capsys, path, "--since", "2026-04-14", "--until", "2026-04-15")
    assert out.splitlines()[0].split() == referrals.measure_columns(figures.db)
    assert out.splitlines()[1].split() == ["North", "Leeds", "1", "1", "0", "0", "0", "0", *["0"] * 6]
    code, out, _ = run_cli(capsys, path, "--since", "2027-01-01")
    assert (code, out) == (0, "nothing to show\n")
    code, _, err = run_cli(capsys, path, "--since", "2026-04-02", "--until", "2026-04-01")
    assert (code, err) == (2, "error: --since is after --until\n")
    code, _, err = run_cli(capsys, path, "--branch", "Atlantis")
    assert code == 1 and err.startswith("error: ")


# The migration from referral interactions.


def test_migration_turns_old_referral_interactions_into_referrals(tmp_path):
    """Test that a database from before step 0010 keeps every interaction and gains one referral (outcome
    unknown, received at midday UTC of its date) per old "Referral received" interaction."""
    path = tmp_path / "old.db"
    old = db.connect(path, migrate=False)
    schema.migrations.apply(old, stop_before="0013_referrals")
    statements = """
    INSERT INTO regions (id, name, created_at) VALUES (1, 'North', '2025-01-01T09:00:00Z');
    INSERT INTO branches (id, name, region_id, created_at) VALUES (1, 'Leeds', 1, '2025-01-01T09:00:00Z');
    INSERT INTO organisations (id, name, type_code, created_at, updated_at)
        VALUES (1, 'Hyde Park Surgery', 'GP_PRACTICE', '2025-01-01T09:00:00Z', '2025-01-01T09:00:00Z');
    INSERT INTO organisations (id, name, type_code, created_at, updated_at)
        VALUES (2, 'Leeds OT', 'COMMUNITY_THERAPY', '2025-01-01T09:00:00Z', '2025-01-01T09:00:00Z');
    INSERT INTO contacts (id, branch_id, organisation_id, name, created_at, updated_at)
        VALUES (1, 1, 1, 'Priya Patel', '2025-01-01T09:00:00Z', '2025-01-01T09:00:00Z');
    INSERT INTO contacts (id, branch_id, organisation_id, name, created_at, updated_at)
        VALUES (2, 1, 1, 'Pat Partner', '2025-01-01T09:00:00Z', '2025-01-01T09:00:00Z');
    INSERT INTO interactions (id, branch_id, organisation_id, occurred_on, kind_code, summary, created_at, updated_at)
        VALUES (1, 1, 1, '2025-06-30', 'REFERRAL_RECEIVED', 'Referral from Priya', '2025-06-30T15:00:00Z',
                '2025-06-30T15:00:00Z');
    INSERT INTO interactions (id, branch_id, organisation_id, occurred_on, kind_code, summary, created_at, updated_at)
        VALUES (2, 1, 1, '2025-07-01', 'PHONE_CALL', 'Catch-up', '2025-07-01T15:00:00Z', '2025-07-01T15:00:00Z');
    INSERT INTO interactions (id, branch_id, organisation_id, occurred_on, kind_code, summary, created_at, updated_at)
        VALUES (3, 1, 2, '2025-12-01', 'REFERRAL_RECEIVED', 'Referral from the OT team', '2025-12-01T15:00:00Z',
                '2025-12-01T16:00:00Z');
    INSERT INTO interaction_contacts (interaction_id, contact_id, occurred_on, branch_id)
        VALUES (1, 2, '2025-06-30', 1);
    INSERT INTO interaction_contacts (interaction_id, contact_id, occurred_on, branch_id)
        VALUES (1, 1, '2025-06-30', 1);
    INSERT INTO interaction_contacts (interaction_id, contact_id, occurred_on, branch_id) VALUES (2, 1, '2025-07-01', 1)
    """
    for statement in statements.split(";"):
        old.execute(statement)
    before = {t: old.execute_returning_dicts(f"SELECT * FROM {t}") for t in ("interactions", "interaction_contacts")}
    old.close()

    upgraded = db.connect(path)

    assert schema.pending(upgraded) == []
    after = {
        t: upgraded.execute_returning_dicts(f"SELECT * FROM {t}") for t in ("interactions", "interaction_contacts")
    }
    assert after == before
    rows = upgraded.execute_returning_dicts(
        "SELECT id, branch_id, received_at, contact_id, organisation_id, channel, urgency, outcome, decided_at, "
        "interaction_id, created_at, updated_at, version FROM referrals ORDER BY id"
    )
    assert rows == [
        {
            "id": 1,
            "branch_id": 1,
            "received_at": "2025-06-30T12:00:00Z",
            "contact_id": 1,
            "organisation_id": 1,
            "channel": None,
            "urgency": None,
            "outcome": "unknown",
            "decided_at": None,
            "interaction_id": 1,
            "created_at": "2025-06-30T15:00:00Z",
            "updated_at": "2025-06-30T15:00:00Z",
            "version": 1,
        },
        {
            "id": 2,
            "branch_id": 1,
            "received_at": "2025-12-01T12:00:00Z",
            "contact_id": None,
            "organisation_id": 2,
            "channel": None,
            "urgency": None,
            "outcome": "unknown",
            "decided_at": None,
            "interaction_id": 3,
            "created_at": "2025-12-01T15:00:00Z",
            "updated_at": "2025-12-01T16:00:00Z",
            "version": 1,
        },
    ]
    admin = users.create_first_admin(upgraded, "ada", "Ada Admin", PASSWORD)
    measured = referrals.measures(upgraded, admin)
    assert [(r["received"], r["unknown"], r["acceptance_rate"], r["median_response_hours"]) for r in measured] == [
        (2, 2, None, None)
    ]
    shown = referrals.get(upgraded, admin, 1)
    assert (shown["received"], shown["outcome_label"], shown["response_hours"]) == (
        "30 Jun 2025 13:00",
        "Unknown (logged before outcomes were kept)",
        None,
    )
    upgraded.close()


def test_for_interaction_records_the_referral_behind_a_referral_interaction(world):
    """Test that a "Referral received" interaction logged on the Interactions page can get its referral (its
    branch, contact and organisation taken over), once only, and that other kinds of interaction cannot."""
    priya = world.contact(world.leeds, "Priya Patel")
    logged = {"branch_id": world.leeds, "occurred_on": date(2026, 4, 10), "contact_ids": [priya]}
    referral = interactions.log(world.db, world.admin, {**logged, "kind_code": "REFERRAL_RECEIVED", "summary": "R"})
    call = interactions.log(world.db, world.admin, {**logged, "kind_code": "PHONE_CALL", "summary": "Call"})

    referral_id = referrals.for_interaction(world.db, world.admin, referral, {"channel": "email", "urgency": "urgent"})

    shown = referrals.get(world.db, world.admin, referral_id)
    assert (shown["branch_id"], shown["contact_id"], shown["organisation_id"], shown["received_at"]) == (
        world.leeds,
        priya,
        world.gp,
        "2026-04-10T12:00:00Z",
    )
    with pytest.raises(ValidationError, match="^Interaction: already has its referral.$"):
        referrals.for_interaction(world.db, world.admin, referral, {"channel": "email", "urgency": "urgent"})
    with pytest.raises(ValidationError, match="^Interaction: is not a referral received.$"):
        referrals.for_interaction(world.db, world.admin, call, {"channel": "email", "urgency": "urgent"})
    with pytest.raises(NotFound):
        referrals.for_interaction(world.db, world.manager_york, referral, {"channel": "email", "urgency": "urgent"})
    assert world.db.table("referrals").count == 1


def test_charts_draw_the_measures(figures):
    """Test that each referral chart takes the rows the page gives it: one bar segment per group and outcome,
    groups with an answered referral in the response chart, every reason in the declines chart."""
    from crm import charts

    rows = referrals.measures(figures.db, figures.admin)
    outcome_data = charts.referral_outcomes(rows, "branch", "Branch").to_dict()["datasets"]
    [segments] = outcome_data.values()
    assert sorted((s["group"], s["outcome"], s["referrals"]) for s in segments) == [
        ("Bristol", "Declined", 1),
        ("Leeds", "Accepted", 2),
        ("Leeds", "Declined", 1),
        ("Leeds", "Open", 1),
        ("Leeds", "Withdrawn by the referrer", 1),
        ("York", "Accepted", 1),
        ("York", "Declined", 1),
    ]
    [response] = charts.response_times(rows, "branch", "Branch").to_dict()["datasets"].values()
    assert [(r["group"], r["hours"]) for r in response] == [("Leeds", 11.0), ("York", 3.5), ("Bristol", 1.0)]
    [reasons_data] = (
        charts.declines_by_reason(referrals.declines(figures.db, figures.admin)).to_dict()["datasets"].values()
    )
    assert len(reasons_data) == 6
    assert charts.referral_outcomes([], "branch", "Branch").to_dict()["mark"]["type"] == "bar"
    # (to_dict checks each chart against the Vega-Lite schema; the pages draw them without that check again)
    month_rows = referrals.by_month(figures.db, figures.admin)
    [months] = charts.referrals_by_outcome_month(month_rows).to_dict()["datasets"].values()
    assert sum(m["referrals"] for m in months) == sum(r["referrals"] for r in month_rows) > 0


@pytest.mark.parametrize("by", ["branch", "partner_type", "organisation"])
def test_measures_query_has_no_subquery_per_group(figures, by):
    """Test that the measures are one pass, with no correlated subquery run once per group. Regression: the
    median was a subquery per group, so SQLite recomputed every median for each of a large provider's 10,000
    referring organisations (the benchmark's per-organisation figures took minutes)."""
    plan = measures_plan(figures, figures.lead_north, by)
    assert [step for step in plan if "CORRELATED" in step] == []
