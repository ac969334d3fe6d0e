"""Follow-ups as an iCalendar file: parsed back with icalendar, stable UIDs and sequence numbers, scope, people who
asked not to be contacted, ``python -m crm followups --format ics`` and the This week download button."""

from datetime import UTC, date, datetime, timedelta

import pytest
from icalendar import Calendar

from crm import __main__ as cli
from crm import clock, contacts, ical, interactions
from tests.conftest import World, copy_world

FROZEN = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)
TODAY = date(2026, 4, 15)


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """The world with follow-ups: Priya's (Leeds, overdue), the OT team's (Leeds, no contact, in a month), Yan's
    (York), a done one and one with a do-not-contact person only."""
    path, built = template
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, tmp_path / "crm.db")
    scene.priya = scene.contact(scene.leeds, "Priya Patel", phone="0113 496 0123 ext. 45")
    scene.yan = scene.contact(scene.york, "Yan Yates", scene.ot)
    scene.dora = scene.contact(scene.leeds, "Dora Declined")

    def log(branch_id, contact_ids, follow_up_on, action, **extra):
        values = {
            "branch_id": branch_id,
            "kind_code": "PHONE_CALL",
            "occurred_on": TODAY - timedelta(days=10),
            "summary": "Catch-up call",
            "contact_ids": contact_ids,
            "follow_up_on": follow_up_on,
            "follow_up_action": action,
            **extra,
        }
        return interactions.log(scene.db, scene.admin, values)

    scene.overdue = log(scene.leeds, [scene.priya], TODAY - timedelta(days=2), "Send availability")
    scene.later = log(scene.leeds, [], TODAY + timedelta(days=30), "", organisation_id=scene.ot, kind_code="VISIT")
    scene.york_one = log(scene.york, [scene.yan], TODAY + timedelta(days=1), "Arrange a visit")
    done = log(scene.leeds, [scene.priya], TODAY + timedelta(days=3), "Already done")
    interactions.complete_follow_up(scene.db, scene.admin, done)
    log(scene.leeds, [scene.dora], TODAY + timedelta(days=4), "Do not call")
    contact = contacts.get(scene.db, scene.admin, scene.dora)
    contacts.update(scene.db, scene.admin, scene.dora, {**contact, "do_not_contact": True}, contact["version"])
    yield scene
    scene.db.close()


def events(content: bytes) -> list:
    calendar = Calendar.from_ical(content)
    return [c for c in calendar.walk("VEVENT")]


def described(event) -> dict:
    return {
        "uid": str(event["UID"]),
        "summary": str(event["SUMMARY"]),
        "start": event.decoded("DTSTART"),
        "end": event.decoded("DTEND"),
        "sequence": int(event["SEQUENCE"]),
        "description": str(event["DESCRIPTION"]),
    }


def test_calendar_parses_back_with_each_open_follow_up(world):
    """Test that the file parses back with icalendar into one all-day event per open follow-up in scope, each
    naming the follow-up and who it is with, with a stable UID; done ones and do-not-contact people's are left out."""
    content = ical.follow_ups_calendar(world.db, world.manager_leeds, name="Leeds follow-ups")

    calendar = Calendar.from_ical(content)
    assert (str(calendar["VERSION"]), str(calendar["PRODID"]), str(calendar["X-WR-CALNAME"])) == (
        "2.0",
        ical.PRODUCT,
        "Leeds follow-ups",
    )
    assert [described(e) for e in events(content)] == [
        {
            "uid": f"followup-{world.overdue}@partner-crm",
            "summary": "Send availability: Priya Patel",
            "start": date(2026, 4, 13),
            "end": date(2026, 4, 14),
            "sequence": 1,
            "description": "Send availability with Priya Patel (Hyde Park Surgery)\n"
            "After: Catch-up call (phone call, 2026-04-05)\nBranch: Leeds\nPhone: 0113 496 0123 ext. 45",
        },
        {
            "uid": f"followup-{world.later}@partner-crm",
            "summary": "Follow up: Leeds Community OT",
            "start": date(2026, 5, 15),
            "end": date(2026, 5, 16),
            "sequence": 1,
            "description": "Follow up with Leeds Community OT\nAfter: Catch-up call (visit, 2026-04-05)\nBranch: Leeds",
        },
    ]


def test_an_edited_follow_up_keeps_its_uid_with_a_higher_sequence(world):
    """Test that re-exporting after a follow-up is moved gives the same UID with a higher SEQUENCE and the new
    date, so a calendar updates the event instead of adding a second one."""
    before = {described(e)["uid"]: described(e) for e in events(ical.follow_ups_calendar(world.db, world.admin))}
    record = interactions.get(world.db, world.admin, world.overdue)
    interactions.update(
        world.db, world.admin, world.overdue, {**record, "follow_up_on": TODAY + timedelta(days=5)}, record["version"]
    )

    after = {described(e)["uid"]: described(e) for e in events(ical.follow_ups_calendar(world.db, world.admin))}

    assert after.keys() == before.keys()
    moved = f"followup-{world.overdue}@partner-crm"
    assert (after[moved]["sequence"], after[moved]["start"]) == (2, date(2026, 4, 20))
    assert {k: v for k, v in after.items() if k != moved} == {k: v for k, v in before.items() if k != moved}


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        ("admin", {"overdue", "later", "york_one"}),
        ("lead_north", {"overdue", "later", "york_one"}),
        ("lead_south", set()),
        ("manager_leeds", {"overdue", "later"}),
        ("manager_york", {"york_one"}),
    ],
)
def test_calendar_is_scoped_by_the_acting_user(world, who, expected):
    """Test that each user's calendar holds only their branches' follow-ups."""
    content = ical.follow_ups_calendar(world.db, getattr(world, who))

    assert {described(e)["uid"] for e in events(content)} == {ical.uid(getattr(world, name)) for name in expected}


def test_cli_writes_the_calendar_for_a_branch(world, tmp_path, capsys):
    """Test `python -m crm followups --format ics --out FILE --branch York`, and that ics without --out is refused
    with one line."""
    path = world.db.execute("PRAGMA database_list").fetchone()[2]
    out = tmp_path / "york.ics"

    code = cli.main(["--db", path, "followups", "--format", "ics", "--out", str(out), "--branch", "York"])

    assert (code, capsys.readouterr().out) == (0, f"wrote 1 follow-ups to {out}\n")
    calendar = Calendar.from_ical(out.read_bytes())
    assert str(calendar["X-WR-CALNAME"]) == "Partner CRM follow-ups: York"
    assert [described(e)["summary"] for e in events(out.read_bytes())] == ["Arrange a visit: Yan Yates"]
    code = cli.main(["--db", path, "followups", "--format", "ics"])
    assert (code, capsys.readouterr().err) == (2, "error: --format ics needs --out FILE\n")
