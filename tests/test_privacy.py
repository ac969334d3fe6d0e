"""Data protection: lawful basis, privacy information and do-not-contact per contact; exporting everything held
about a person; erasing a person everywhere in their branch (interactions stay, counts stay true); refusing them
when they are added or imported again; scope; the 0006 schema step; and the export-person and erase-contact
commands run as real processes."""

import hashlib
import hmac
import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from crm import (
    audit,
    branches,
    clock,
    contacts,
    db,
    imports,
    interactions,
    organisations,
    privacy,
    referrals,
    schema,
    settings,
    suppressions,
    testimonials,
)
from crm.access import COMMAND_LINE, Actor
from crm.errors import Conflict, NotFound, ValidationError
from tests.conftest import PASSWORD, World, copy_database, copy_world

REPO = Path(__file__).resolve().parents[1]
FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)  # a Monday
STAMP = "2026-03-02T10:30:00Z"
TODAY = date(2026, 3, 2)
STAMP_SHAPE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
CONTACT_NOT_FOUND = "That contact does not exist or is not in one of your branches."
SUPPRESSED = "Name: this person asked for their details to be erased, so they cannot be added again."
ALREADY_ERASED = "Contact: has already been erased."
LAWFUL_BASIS_REFUSED = (
    "Lawful basis: must be one of: legitimate interests, consent, contract, legal obligation, public task, "
    "vital interests."
)

# Sam Lee's details in every form the app stores or shows them.
SAM = {
    "name": "Sam Lee",
    "job_title": "Practice Manager",
    "phone": "0113 496 0123 ext. 45",
    "mobile": "07911 123456",
    "email": "Sam.Lee@nhs.net",
}
SAM_QUOTE = "The carers were wonderful with our patients at Hyde Park."
SAM_TRACES = [
    "Sam Lee",
    "Sam.Lee@nhs.net",
    "+441134960123",
    "0113 496 0123",
    "01134960123",
    "0113 496 0123 ext. 45",
    "+447911123456",
    "07911 123456",
    "07911123456",
]


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    path, built = template
    scene = copy_world(path, built, tmp_path / "crm.db")
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    yield scene
    scene.db.close()


def add_sam(world: World, actor: Actor | None = None, **extra) -> int:
    """Sam Lee, practice manager at Hyde Park Surgery, a contact of the Leeds branch."""
    values = {**SAM, "organisation_id": world.gp, "branch_id": world.leeds, **extra}
    return contacts.add(world.db, actor or world.manager_leeds, values)


def edit(world: World, actor: Actor, contact_id: int, **changes) -> None:
    """Save a contact as the edit form would: every field as shown, with ``changes`` typed over them."""
    row = contacts.get(world.db, actor, contact_id)
    values = {
        "name": row["name"],
        "job_title": row["job_title"],
        "organisation_id": row["organisation_id"],
        "branch_id": row["branch_id"],
        "phone": row["phone_display"],
        "mobile": row["mobile_display"],
        "email": row["email"],
        "notes": row["notes"],
        "is_named_contact": row["is_named_contact"],
        "keep_in_touch_days": row["keep_in_touch_days"],
        "lawful_basis": row["lawful_basis"],
        "privacy_info_sent_on": row["privacy_info_sent_on"],
        "do_not_contact": row["do_not_contact"],
        **changes,
    }
    contacts.update(world.db, actor, contact_id, values, row["version"])


def log(world: World, contact_ids: list[int], branch_id: int | None = None, **values) -> int:
    """Log an interaction as the branch's manager (Leeds unless ``branch_id`` says otherwise)."""
    branch_id = branch_id or world.leeds
    manager = {world.leeds: world.manager_leeds, world.york: world.manager_york, world.bristol: world.manager_bristol}
    row = {
        "branch_id": branch_id,
        "occurred_on": TODAY - timedelta(days=3),
        "kind_code": "PHONE_CALL",
        "summary": "Catch-up call",
        "contact_ids": contact_ids,
        **values,
    }
    return interactions.log(world.db, manager[branch_id], row)


@dataclass
class Scene:
    sam: int
    samantha: int
    beth: int
    call: int  # the phone call with Sam that was later edited


def build_scene(world: World) -> Scene:
    """Sam Lee with notes, edits and interactions that name him in several letter cases and number formats;
    Samantha Leeson in the same branch; Beth Brown in Bristol."""
    sam = add_sam(world, notes="Sam Lee prefers calls to 0113 496 0123 ext. 45 before 10am.")
    edit(
        world,
        world.manager_leeds,
        sam,
        job_title="Operations Manager",
        notes="Sam Lee prefers calls to 0113 496 0123 ext. 45; else 07911123456 or sam.lee@NHS.net.",
    )
    samantha = contacts.add(
        world.db,
        world.manager_leeds,
        {
            "name": "Samantha Leeson",
            "organisation_id": world.gp,
            "branch_id": world.leeds,
            "email": "samantha.leeson@nhs.net",
            "phone": "0113 496 0999",
            "notes": "Deputy practice manager.",
        },
    )
    beth = world.contact(world.bristol, "Beth Brown", world.council, job_title="Social Worker")
    log(
        world,
        [sam],
        kind_code="VISIT",
        occurred_on=date(2026, 1, 15),
        summary="Visit to SAM LEE at the surgery",
        notes="sam lee asked us to write to Sam.Lee@nhs.net or ring +441134960123.",
        follow_up_on=date(2026, 1, 22),
        follow_up_action="Send Sam Lee the rota",
    )
    call = log(world, [sam], occurred_on=date(2026, 2, 10), summary="Phone call with Sam Lee")
    before = interactions.get(world.db, world.manager_leeds, call)
    interactions.update(
        world.db,
        world.manager_leeds,
        call,
        {**before, "notes": "Rang 07911 123456 (Sam Lee's mobile)."},
        before["version"],
    )
    log(
        world,
        [samantha],
        kind_code="MEETING",
        occurred_on=date(2026, 2, 20),
        summary="Samantha Leeson said Sam Lee is on leave",
    )
    log(world, [sam, samantha], kind_code="MEETING", occurred_on=date(2026, 2, 24), summary="Practice meeting")
    log(world, [beth], branch_id=world.bristol, occurred_on=date(2026, 2, 10), summary="Call with Beth")
    testimonials.add(
        world.db,
        world.manager_leeds,
        {"branch_id": world.leeds, "quote": SAM_QUOTE, "contact_id": sam, "source": "email", "themes": "reliability"},
    )
    testimonials.add(
        world.db,
        world.manager_leeds,
        {
            "branch_id": world.leeds,
            "quote": "Sam Lee and I agree: a brilliant team.",
            "contact_id": samantha,
            "source": "card",
        },
    )
    return Scene(sam, samantha, beth, call)


def text_tables(database) -> list[str]:
    """Every table in the file: ordinary, virtual (full-text search) and their shadow tables."""
    return [r[0] for r in database.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


def mentions(database, traces: list[str]) -> list[tuple[str, str, str]]:
    """Every (table, column, text) anywhere in the database that contains one of ``traces`` (any letter case)."""
    found = []
    for table in text_tables(database):
        columns = [r[1] for r in database.execute(f'PRAGMA table_info("{table}")')]
        for column in columns:
            for (value,) in database.execute(f'SELECT "{column}" FROM "{table}"'):
                if isinstance(value, str) and any(t.casefold() in value.casefold() for t in traces):
                    found.append((table, column, value))
    return found


def interaction_counts(database) -> list[tuple]:
    """Interactions per branch, kind and month, and the contact links they carry."""
    return database.execute(
        """SELECT i.branch_id, i.kind_code, substr(i.occurred_on, 1, 7), count(DISTINCT i.id), count(ic.contact_id)
           FROM interactions i LEFT JOIN interaction_contacts ic ON ic.interaction_id = i.id
           GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
    ).fetchall()


def rows(database, table: str, where: str = "1 = 1", params: list | None = None) -> list[dict]:
    return database.execute_returning_dicts(f"SELECT * FROM {table} WHERE {where} ORDER BY rowid", params or [])


def trail(database, contact_id: int) -> list[tuple[str, str, dict]]:
    return [(e["username"], e["action"], e["changes"]) for e in audit.entries(database, "contacts", contact_id)]


# Erasing: the person goes everywhere, the history keeps its shape.


def test_that_erasing_leaves_no_trace_of_the_person_in_any_text_column(world):
    """Test that after erasing a contact, no text column of any table (full-text search tables included) holds
    their name, email or phone in E.164 or national form, with or without its extension, although their notes,
    edits, and interactions whose summary, notes and follow-up action named them (in other letter cases) did."""
    scene = build_scene(world)
    assert {t for t, _, _ in mentions(world.db, SAM_TRACES)} == {
        "contacts",
        "interactions",
        "audit_log",
        "testimonials",
        "testimonials_fts",
        "contacts_fts",
        "contacts_text",  # (the Contacts list's trigram index reads its text from the contacts)
        "interactions_fts",
    }

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    assert mentions(world.db, SAM_TRACES) == []


def test_that_erasing_deletes_their_testimonials_and_every_copy_of_the_quote(world):
    """Test that erasing a person deletes the testimonials they gave and leaves no copy of the quote anywhere (the
    audit entry of its creation and the full-text index included), while another person's testimonial that names
    them stays, with their name erased."""
    scene = build_scene(world)

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    assert [(r["contact_id"], r["quote"]) for r in rows(world.db, "testimonials")] == [
        (scene.samantha, "[erased] and I agree: a brilliant team.")
    ]
    assert mentions(world.db, [SAM_QUOTE]) == []
    assert world.db.execute(
        "SELECT count(*) FROM testimonials_fts WHERE testimonials_fts MATCH 'wonderful'"
    ).fetchone() == (0,)


def test_that_erasing_keeps_the_interactions_and_their_counts(world):
    """Test that erasing keeps every interaction (date, kind, branch, organisation, contact links), so counts by
    branch, kind and month are unchanged, and only the text that named the person changes."""
    scene = build_scene(world)
    counts = interaction_counts(world.db)
    before = rows(world.db, "interactions")

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    assert interaction_counts(world.db) == counts
    after = rows(world.db, "interactions")
    kept = ("id", "branch_id", "organisation_id", "occurred_on", "kind_code", "follow_up_on", "created_at")
    assert [{k: r[k] for k in kept} for r in after] == [{k: r[k] for k in kept} for r in before]
    assert [(r["summary"], r["notes"], r["follow_up_action"]) for r in after] == [
        (
            "Visit to [erased] at the surgery",
            "[erased] asked us to write to [erased] or ring [erased].",
            "Send [erased] the rota",
        ),
        ("Phone call with [erased]", "Rang [erased] ([erased]'s mobile).", ""),
        ("Samantha Leeson said [erased] is on leave", "", ""),
        ("Practice meeting", "", ""),
        ("Call with Beth", "", ""),
    ]
    assert interactions.search(world.db, world.manager_leeds, contact_id=scene.sam)[0]["contacts"] == (
        "Erased contact, Samantha Leeson"
    )


def test_that_an_interaction_edit_opened_before_the_erasure_cannot_restore_the_name(world):
    """Test that an edit of an interaction opened before the person was erased cannot put their name back: the
    scrubbed interaction counts as changed, so saving the stale form is refused as a conflict."""
    scene = build_scene(world)
    opened = interactions.get(world.db, world.manager_leeds, scene.call)

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    with pytest.raises(Conflict):
        interactions.update(
            world.db, world.manager_leeds, scene.call, {**opened, "kind_code": "MEETING"}, opened["version"]
        )
    assert world.db["interactions"].get(scene.call)["summary"] == "Phone call with [erased]"


def test_that_a_contact_edit_opened_before_the_erasure_cannot_restore_the_name(world):
    """Test that an edit of a colleague whose notes named the erased person, opened before the erasure, cannot put
    the name back: the scrubbed contact counts as changed, so saving the stale form is refused as a conflict."""
    scene = build_scene(world)
    edit(world, world.manager_leeds, scene.samantha, notes="Covers for Sam Lee on Fridays.")
    opened = contacts.get(world.db, world.manager_leeds, scene.samantha)

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    with pytest.raises(Conflict):
        contacts.update(
            world.db,
            world.manager_leeds,
            scene.samantha,
            {**opened, "phone": opened["phone_display"], "job_title": "Deputy"},
            opened["version"],
        )
    assert world.db["contacts"].get(scene.samantha)["notes"] == "Covers for [erased] on Fridays."


def test_that_erasing_blanks_the_record_and_its_audit_trail(world):
    """Test that the erased contact's row keeps only its branch, organisation, lawful basis and dates, its audit
    trail keeps who did what and when but not the values, and erasing is audited itself."""
    scene = build_scene(world)
    before = world.db["contacts"].get(scene.sam)

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    assert world.db["contacts"].get(scene.sam) == {
        **before,
        "name": "Erased contact",
        "job_title": "",
        "phone": None,
        "phone_ext": None,
        "mobile": None,
        "email": None,
        "notes": "",
        "is_named_contact": 0,
        "status": "left",
        "left_on": STAMP[:10],  # an erased contact counts as having left on the day of erasure
        "do_not_contact": 1,
        "privacy_info_sent_on": None,
        "erased_at": STAMP,
        "version": before["version"] + 1,
    }
    assert trail(world.db, scene.sam) == [
        ("manager.leeds", "erase", {"erased": True}),
        ("manager.leeds", "update", {}),
        ("manager.leeds", "create", {}),
    ]
    assert [r["kind"] for r in rows(world.db, "suppressions")] == ["email", "phone", "phone", "name_at_organisation"]


def test_that_erasing_leaves_a_longer_name_containing_theirs_alone(world):
    """Test that erasing Sam Lee leaves Samantha Leeson, and text that names "Sam Leeson", as they were: only
    whole-word mentions of the erased person change."""
    scene = build_scene(world)
    edit(world, world.manager_leeds, scene.samantha, notes="Signs emails as Sam Leeson; SAM LEESON on the rota.")
    talk = log(world, [scene.samantha], summary="Sam Leeson rang back", notes="sam leeson will cover")
    before_contact = world.db["contacts"].get(scene.samantha)
    before_talk = world.db["interactions"].get(talk)
    before_trail = trail(world.db, scene.samantha)
    before_talk_trail = audit.entries(world.db, "interactions", talk)

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    assert world.db["contacts"].get(scene.samantha) == before_contact
    assert world.db["interactions"].get(talk) == before_talk
    assert trail(world.db, scene.samantha) == before_trail
    assert audit.entries(world.db, "interactions", talk) == before_talk_trail
    assert contacts.get(world.db, world.manager_leeds, scene.samantha)["name"] == "Samantha Leeson"


def york_namesake(world: World) -> tuple[int, int]:
    """A different Sam Lee in York, named in a York contact's notes and a York interaction."""
    yan = world.contact(world.york, "Yan Yates", notes="Works with Sam Lee (0113 496 0123 ext. 45).")
    met = log(world, [yan], branch_id=world.york, summary="Met Sam Lee and Yan", notes="SAM LEE: sam.lee@nhs.net")
    return yan, met


def test_that_erasing_leaves_another_branchs_records_alone(world):
    """Test that erasing a Leeds contact changes no York contact or interaction, even where its text names
    someone with the same name and details."""
    scene = build_scene(world)
    yan, met = york_namesake(world)
    before = (
        rows(world.db, "contacts", "branch_id = ?", [world.york]),
        rows(world.db, "interactions", "id = ?", [met]),
    )

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    assert (
        rows(world.db, "contacts", "branch_id = ?", [world.york]),
        rows(world.db, "interactions", "id = ?", [met]),
    ) == (before)


def test_that_erasing_leaves_another_branchs_audit_entries_alone(world):
    """Test that erasing a Leeds contact leaves the audit entries of York's records as they were (the audit log
    is scrubbed in the erased person's branch only, as crm.privacy's docstring says), so York's audit trail still
    matches York's records."""
    scene = build_scene(world)
    yan, met = york_namesake(world)
    before = (audit.entries(world.db, "contacts", yan), audit.entries(world.db, "interactions", met))

    privacy.erase(world.db, world.manager_leeds, scene.sam)

    assert (audit.entries(world.db, "contacts", yan), audit.entries(world.db, "interactions", met)) == before


def test_that_erasing_finds_accented_names_in_any_letter_case(world):
    """Test that a name with accented letters is erased where it was written in capitals too ("ZOË BRONTË"),
    in interactions and in their audit entries."""
    zoe = contacts.add(
        world.db, world.manager_leeds, {"name": "Zoë Brontë", "organisation_id": world.ot, "branch_id": world.leeds}
    )
    log(world, [zoe], summary="Met ZOË BRONTË", notes="zoë brontë to call back")

    privacy.erase(world.db, world.manager_leeds, zoe)

    assert mentions(world.db, ["Zoë Brontë"]) == []
    assert [(r["summary"], r["notes"]) for r in rows(world.db, "interactions")] == [
        ("Met [erased]", "[erased] to call back")
    ]


def test_that_erasing_twice_is_refused(world):
    """Test that erasing an erased contact again gives the "already been erased" error and writes nothing."""
    sam = add_sam(world)
    privacy.erase(world.db, world.manager_leeds, sam)
    before = (world.db["contacts"].get(sam), world.db["audit_log"].count, world.db["suppressions"].count)

    with pytest.raises(ValidationError) as refused:
        privacy.erase(world.db, world.lead_north, sam)

    assert str(refused.value) == ALREADY_ERASED
    assert (world.db["contacts"].get(sam), world.db["audit_log"].count, world.db["suppressions"].count) == before


# Not adding an erased person again.


@pytest.mark.parametrize(
    "values",
    [
        pytest.param({"name": "Samuel Lee", "email": "sam.lee@NHS.NET"}, id="same email"),
        pytest.param({"name": "S Lee", "phone": "0113 496 0123 ext. 45"}, id="same phone and extension"),
        pytest.param({"name": "S Lee", "phone": "07911 123456"}, id="mobile typed as phone"),
        pytest.param({"name": "S Lee", "mobile": "+44 7911 123456"}, id="same mobile"),
        pytest.param({"name": "sam lee", "organisation_id": "gp"}, id="same name at the same organisation"),
        pytest.param({"name": "Samuel Lee", "email": "Sam.Lee@nhs.net", "branch_id": "york"}, id="another branch"),
    ],
)
def test_that_an_erased_person_cannot_be_added_again(world, values):
    """Test that adding a contact with the erased person's email, phone or mobile (any branch, any organisation),
    or their name at the same organisation, is refused with the erasure message and writes nothing."""
    sam = add_sam(world)
    privacy.erase(world.db, world.manager_leeds, sam)
    count = world.db["contacts"].count
    where = {"gp": world.gp, "york": world.york}
    values = {"organisation_id": world.ot, "branch_id": world.leeds, **values}
    values = {k: where.get(v, v) if k in ("organisation_id", "branch_id") else v for k, v in values.items()}

    with pytest.raises(ValidationError) as refused:
        contacts.add(world.db, world.admin, values)

    assert str(refused.value) == SUPPRESSED
    assert world.db["contacts"].count == count


def test_that_other_people_can_still_be_added_after_an_erasure(world):
    """Test that erasing someone does not stop adding a namesake at another organisation or someone else at the
    same organisation."""
    sam = add_sam(world)
    privacy.erase(world.db, world.manager_leeds, sam)

    namesake = contacts.add(
        world.db, world.manager_leeds, {"name": "Sam Lee", "organisation_id": world.ot, "branch_id": world.leeds}
    )
    colleague = contacts.add(
        world.db, world.manager_leeds, {"name": "Tom Tan", "organisation_id": world.gp, "branch_id": world.leeds}
    )

    assert [contacts.get(world.db, world.admin, c)["name"] for c in (namesake, colleague)] == ["Sam Lee", "Tom Tan"]


def test_that_a_colleague_on_the_same_switchboard_can_be_added_after_an_erasure(world):
    """Test that erasing someone reached on a switchboard number with an extension does not refuse a colleague on
    the same switchboard with another extension: as contacts.similar says, a switchboard number with different
    extensions belongs to different people."""
    sam = add_sam(world)
    privacy.erase(world.db, world.manager_leeds, sam)

    colleague = contacts.add(
        world.db,
        world.manager_leeds,
        {"name": "Tom Tan", "organisation_id": world.gp, "branch_id": world.leeds, "phone": "0113 496 0123 ext. 46"},
    )

    assert contacts.get(world.db, world.admin, colleague)["phone_display"] == "0113 496 0123 ext. 46"


def test_that_an_erased_person_is_refused_on_import(world):
    """Test that rows of an import file holding an erased person's name at their organisation, email, phone or
    mobile are errors with the erasure message, while other rows are imported."""
    sam = add_sam(world)
    privacy.erase(world.db, world.manager_leeds, sam)
    data = (
        b"Name,Organisation,Email,Phone\n"
        b"Sam Lee,Hyde Park Surgery,,\n"
        b"Samuel Lee,Leeds Community OT,SAM.LEE@nhs.net,\n"
        b"S Lee,Leeds Community OT,,0113 496 0123 ext. 45\n"
        b"S. Lee,Leeds Community OT,,07911 123456\n"
        b"Tom Tan,Hyde Park Surgery,tom.tan@nhs.net,\n"
    )
    table = imports.read_table(data, "contacts.csv")

    plan = imports.plan(world.db, world.manager_leeds, table, imports.guess_mapping(table.headers), world.leeds)

    assert plan.report() == {
        "summary": {"imported": 1, "updated": 0, "skipped": 0, "errors": 4},
        "rows": [
            {"line": 2, "outcome": "error", "messages": [SUPPRESSED]},
            {"line": 3, "outcome": "error", "messages": [SUPPRESSED]},
            {"line": 4, "outcome": "error", "messages": [SUPPRESSED]},
            {"line": 5, "outcome": "error", "messages": [SUPPRESSED]},
            {"line": 6, "outcome": "imported", "messages": []},
        ],
    }
    imports.apply(world.db, world.manager_leeds, plan)
    assert [r["name"] for r in rows(world.db, "contacts")] == ["Erased contact", "Tom Tan"]


# Erasure gaps (issue 11, item 7).


def moved_to_york(world: World) -> Scene:
    """The scene, then Sam Lee moved from Leeds to York by the regional lead: his Leeds interactions, testimonial
    and audit entries stay in Leeds."""
    scene = build_scene(world)
    edit(world, world.lead_north, scene.sam, branch_id=world.york)
    return scene


def test_that_a_moved_contact_is_erased_by_their_new_branchs_manager(world):
    """Test that the manager of the branch a contact moved to can erase them (regression: the testimonial they gave
    while at Leeds was deleted through York's scope, and the erasure failed with "That testimonial does not
    exist"), and that their testimonial, still filed under Leeds, is deleted."""
    scene = moved_to_york(world)

    privacy.erase(world.db, world.manager_york, scene.sam)

    assert world.db["contacts"].get(scene.sam)["erased_at"] == STAMP
    assert [(r["branch_id"], r["contact_id"]) for r in rows(world.db, "testimonials")] == [
        (world.leeds, scene.samantha)
    ]


@pytest.mark.parametrize("who", ["manager_york", "admin"])
def test_that_erasing_a_moved_contact_scrubs_the_branch_they_left(world, who):
    """Test that erasing a contact who moved from Leeds to York leaves no trace of them anywhere, Leeds' interactions
    and audit entries included (regression: only the branch they were in at the time of erasure was scrubbed, so
    Leeds kept their full name and email), while Leeds' text about other people stays as it was."""
    scene = moved_to_york(world)

    privacy.erase(world.db, getattr(world, who), scene.sam)

    assert mentions(world.db, SAM_TRACES) == []
    assert [(r["branch_id"], r["summary"], r["notes"]) for r in rows(world.db, "interactions")] == [
        (world.leeds, "Visit to [erased] at the surgery", "[erased] asked us to write to [erased] or ring [erased]."),
        (world.leeds, "Phone call with [erased]", "Rang [erased] ([erased]'s mobile)."),
        (world.leeds, "Samantha Leeson said [erased] is on leave", ""),
        (world.leeds, "Practice meeting", ""),
        (world.bristol, "Call with Beth", ""),
    ]
    assert contacts.get(world.db, world.admin, scene.samantha)["notes"] == "Deputy practice manager."


def test_that_erasing_leaves_branches_that_never_held_the_person_alone(world):
    """Test that erasing a contact who moved from Leeds to York still leaves Bristol, which never held them, as it
    was, although Bristol's text names someone with the same name."""
    scene = moved_to_york(world)
    bea = world.contact(world.bristol, "Bea Bell", world.council, notes="Knows Sam Lee from Hyde Park.")
    met = log(world, [bea], branch_id=world.bristol, summary="Met Sam Lee and Bea")
    before = (
        rows(world.db, "contacts", "id = ?", [bea]),
        rows(world.db, "interactions", "id = ?", [met]),
        audit.entries(world.db, "contacts", bea),
        audit.entries(world.db, "interactions", met),
    )

    privacy.erase(world.db, world.manager_york, scene.sam)

    assert (
        rows(world.db, "contacts", "id = ?", [bea]),
        rows(world.db, "interactions", "id = ?", [met]),
        audit.entries(world.db, "contacts", bea),
        audit.entries(world.db, "interactions", met),
    ) == before


PDF = b"%PDF-1.4 Sam Lee's thank-you email"


def with_evidence(world: World) -> tuple[int, int, Path]:
    """Sam Lee, and a testimonial he gave with a PDF as evidence; returns both ids and the evidence file's path."""
    sam = add_sam(world)
    given = testimonials.add(
        world.db,
        world.manager_leeds,
        {"branch_id": world.leeds, "quote": SAM_QUOTE, "contact_id": sam, "source": "email"},
        ("thanks.pdf", PDF),
    )
    path = testimonials.evidence_path(world.db, world.db["testimonials"].get(given)["evidence_file"])
    assert path.read_bytes() == PDF
    return sam, given, path


def test_that_an_erasure_failing_part_way_keeps_the_evidence_file(world, monkeypatch):
    """Test that an erasure that fails after deleting the testimonials rolls everything back and keeps the
    evidence file, so the restored testimonial's evidence still downloads (regression: the file was deleted
    before the transaction committed, and the restored testimonial pointed at nothing)."""
    sam, given, path = with_evidence(world)
    before = (rows(world.db, "contacts"), rows(world.db, "testimonials"), rows(world.db, "audit_log"))

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(privacy, "_scrub", fail)
    with pytest.raises(RuntimeError):
        privacy.erase(world.db, world.manager_leeds, sam)

    assert (rows(world.db, "contacts"), rows(world.db, "testimonials"), rows(world.db, "audit_log")) == before
    assert testimonials.evidence(world.db, world.manager_leeds, given) == ("thanks.pdf", "application/pdf", PDF)
    assert path.exists()


def test_that_erasing_deletes_the_evidence_file_once_committed(world):
    """Test that a completed erasure deletes the evidence file of the testimonial the person gave."""
    sam, given, path = with_evidence(world)

    privacy.erase(world.db, world.manager_leeds, sam)

    assert (world.db["testimonials"].count, path.exists()) == (0, False)


def test_that_erasing_keeps_an_evidence_file_another_testimonial_uses(world):
    """Test that erasing keeps an evidence file that another person's testimonial holds too (files are stored by
    content, so the same PDF uploaded twice is one file)."""
    sam, given, path = with_evidence(world)
    other = world.contact(world.leeds, "Priya Patel")
    kept = testimonials.add(
        world.db,
        world.manager_leeds,
        {"branch_id": world.leeds, "quote": "Great team", "contact_id": other, "source": "email"},
        ("same.pdf", PDF),
    )

    privacy.erase(world.db, world.manager_leeds, sam)

    assert testimonials.evidence(world.db, world.manager_leeds, kept) == ("same.pdf", "application/pdf", PDF)


def test_that_erasing_removes_a_two_character_chinese_name_from_text(world):
    """Test that a two-character name (王伟) is erased from interaction text and audit entries, also where it is
    written inside a sentence without spaces (regression: names under three characters were not scrubbed, and
    whole-word matching never matched within Chinese text), while another name stays."""
    wang = contacts.add(
        world.db, world.manager_leeds, {"name": "王伟", "organisation_id": world.ot, "branch_id": world.leeds}
    )
    log(world, [wang], summary="今天和王伟开会", notes="王伟说好的; 李娜 will call")
    log(world, [wang], summary="Call with 王伟 about discharges")

    privacy.erase(world.db, world.manager_leeds, wang)

    assert mentions(world.db, ["王伟"]) == []
    assert [(r["summary"], r["notes"]) for r in rows(world.db, "interactions")] == [
        ("今天和[erased]开会", "[erased]说好的; 李娜 will call"),
        ("Call with [erased] about discharges", ""),
    ]


@pytest.mark.parametrize(
    ("value", "text", "expected"),
    [
        ("Sam Lee", "Sam Leeson and SAM LEE", "Sam Leeson and [erased]"),
        ("王伟", "王伟华和王伟", "[erased]华和[erased]"),
        ("Jo", "Jo, John and jo", "[erased], John and [erased]"),
        ("Zoë Brontë", "ZOË BRONTË: zoë", "[erased]: zoë"),
        ("김철수", "김철수는 왔다", "[erased]는 왔다"),
    ],
)
def test_mention_pattern(value, text, expected):
    """Test that a mention is found in any letter case as a whole word in spaced scripts, and as it stands in
    scripts written without spaces."""
    assert privacy.mention_pattern(value).sub("[erased]", text) == expected


# The suppression key lives outside the database (issue 11, item 7).


def key_path(world: World) -> Path:
    path = suppressions.key_file(world.db)
    assert path is not None
    return path


def test_that_the_suppression_key_is_a_private_file_beside_the_database(world, tmp_path):
    """Test that the first erasure creates crm-suppression.key beside crm.db, readable by its owner only, and that
    every suppression entry is an HMAC-SHA256 of the person's detail under that key, which appears nowhere in the
    database (no salt setting, nothing in the audit log)."""
    assert not (tmp_path / "crm-suppression.key").exists()
    sam = add_sam(world)

    privacy.erase(world.db, world.manager_leeds, sam)

    path = tmp_path / "crm-suppression.key"
    assert key_path(world) == path
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = bytes.fromhex(path.read_text())
    assert len(key) == 32

    def keyed(detail: str) -> str:
        return "hmac:" + hmac.new(key, detail.encode(), hashlib.sha256).hexdigest()

    assert [(r["kind"], r["digest"]) for r in rows(world.db, "suppressions")] == [
        ("email", keyed("email:sam.lee@nhs.net")),
        ("phone", keyed("phone:+441134960123;ext=45")),
        ("phone", keyed("phone:+447911123456")),
        ("name_at_organisation", keyed(f"name_at_organisation:sam lee@{world.gp}")),
    ]
    assert rows(world.db, "settings", "key LIKE 'suppression%'") == []
    assert mentions(world.db, [key.hex()]) == []
    assert rows(world.db, "audit_log", "changes LIKE '%suppression%'") == []


def test_that_a_copy_of_the_database_without_its_key_refuses_to_guess(world, tmp_path):
    """Test that a copy of the database alone (its key file not copied) cannot check anyone against the erased
    people: adding a contact is refused with a message naming the missing file, and nothing is added."""
    privacy.erase(world.db, world.manager_leeds, add_sam(world))
    copied = tmp_path / "elsewhere" / "crm.db"
    copied.parent.mkdir()
    copy_database(tmp_path / "crm.db", copied)
    database = db.connect(copied)

    with pytest.raises(suppressions.KeyUnavailable) as refused:
        contacts.add(database, world.admin, {"name": "Tom Tan", "organisation_id": world.gp, "branch_id": world.leeds})

    assert str(refused.value) == (
        f"The suppression key file {copied.parent / 'crm-suppression.key'} is missing, so erased people cannot be "
        "recognised. Restore it from your backup (or set CRM_SUPPRESSION_KEY) before adding or changing contacts."
    )
    assert database["contacts"].count == 1
    database.close()


def test_that_the_suppression_key_can_come_from_the_environment(world, tmp_path, monkeypatch):
    """Test that with CRM_SUPPRESSION_KEY set, erasing writes no key file, hashes with that key, and still refuses
    the erased person."""
    secret = "k" * 40
    monkeypatch.setenv("CRM_SUPPRESSION_KEY", secret)
    privacy.erase(world.db, world.manager_leeds, add_sam(world))

    assert not (tmp_path / "crm-suppression.key").exists()
    assert rows(world.db, "suppressions")[0]["digest"] == (
        "hmac:" + hmac.new(secret.encode(), b"email:sam.lee@nhs.net", hashlib.sha256).hexdigest()
    )
    with pytest.raises(ValidationError) as refused:
        add_sam(world, organisation_id=world.ot)
    assert str(refused.value) == SUPPRESSED


def test_that_a_short_environment_key_is_refused(world, monkeypatch):
    """Test that a CRM_SUPPRESSION_KEY shorter than 32 characters is refused with a clear message, erasing
    nothing."""
    sam = add_sam(world)
    monkeypatch.setenv("CRM_SUPPRESSION_KEY", "short")

    with pytest.raises(suppressions.KeyUnavailable) as refused:
        privacy.erase(world.db, world.manager_leeds, sam)

    assert str(refused.value) == "CRM_SUPPRESSION_KEY must be at least 32 characters long."
    assert world.db["contacts"].get(sam)["erased_at"] is None


@pytest.mark.parametrize("content", [b"not a key\n", b"\xff\xfe binary", b"abcd\n"])
def test_that_a_damaged_key_file_is_refused(world, tmp_path, content):
    """Test that a key file that does not hold a whole key is refused with a message naming it, rather than used
    (a different key would let erased people back in), and nothing is erased."""
    sam = add_sam(world)
    (tmp_path / "crm-suppression.key").write_bytes(content)

    with pytest.raises(suppressions.KeyUnavailable) as refused:
        privacy.erase(world.db, world.manager_leeds, sam)

    assert str(refused.value) == (
        f"The suppression key file {tmp_path / 'crm-suppression.key'} is damaged; restore it from your backup."
    )
    assert world.db["contacts"].get(sam)["erased_at"] is None


def legacy_digest(salt: str, detail: str) -> str:
    """A suppression entry as the app wrote them before the key moved out of the database."""
    return hashlib.sha256(f"{salt}:{detail}".encode()).hexdigest()


def test_that_entries_made_with_the_legacy_salt_still_refuse_the_person(world):
    """Test that suppression entries made before the key moved out of the database (salted with a salt kept in
    settings) still refuse the erased person, and that a new erasure adds keyed entries beside them."""
    salt = "0123456789abcdef0123456789abcdef"
    world.db.execute("INSERT INTO settings (key, value) VALUES ('suppression_salt', ?)", [salt])
    world.db.execute(
        "INSERT INTO suppressions (kind, digest, created_at) VALUES ('email', ?, 'x')",
        [legacy_digest(salt, "email:old.friend@nhs.net")],
    )

    with pytest.raises(ValidationError) as refused:
        add_sam(world, email="Old.Friend@nhs.net")
    assert str(refused.value) == SUPPRESSED

    privacy.erase(world.db, world.manager_leeds, add_sam(world))
    assert [r["digest"][:5] for r in rows(world.db, "suppressions")] == [
        legacy_digest(salt, "email:old.friend@nhs.net")[:5],
        "hmac:",
        "hmac:",
        "hmac:",
        "hmac:",
    ]


def test_that_the_upgrade_removes_the_legacy_salt_from_the_audit_log(db_path):
    """Test that upgrading a database from before 0010 removes the suppression salt that settings.put had copied
    into the audit log, keeping the entry itself and the salt in settings (needed to check old entries)."""
    old = db.connect(db_path, migrate=False)
    schema.migrations.apply(old, stop_before="0010_suppression_salt_out_of_audit_log")
    old.execute(
        "INSERT INTO audit_log (at, user_id, username, action, table_name, row_id, changes) VALUES "
        "('2026-01-01T00:00:00Z', NULL, 'ada', 'update', 'settings', NULL, ?)",
        ['{"suppression_salt": ["", "0123456789abcdef"]}'],
    )
    old.execute("INSERT INTO settings (key, value) VALUES ('suppression_salt', '0123456789abcdef')")
    old.close()

    upgraded = db.connect(db_path)

    assert [(r["action"], r["changes"]) for r in rows(upgraded, "audit_log")] == [
        ("update", '{"suppression_salt":"[withheld]"}')
    ]
    assert upgraded.execute("SELECT value FROM settings WHERE key = 'suppression_salt'").fetchone() == (
        "0123456789abcdef",
    )
    upgraded.close()


def test_that_the_audit_log_never_records_a_suppression_salt(world):
    """Test that storing a setting named suppression_salt writes an audit entry without its value."""
    settings.put(world.db, world.admin, "suppression_salt", "0123456789abcdef")

    assert audit.entries(world.db, "settings", limit=1)[0]["changes"] == {}


# Editing someone into an erased person (issue 11, item 7).


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"email": "SAM.LEE@nhs.net"}, id="their email"),
        pytest.param({"mobile": "07911 123456"}, id="their mobile"),
        pytest.param({"phone": "0113 496 0123 ext. 45"}, id="their phone and extension"),
        pytest.param({"name": "Sam Lee", "organisation_id": "gp"}, id="their name at their organisation"),
    ],
)
def test_that_editing_another_contact_into_an_erased_person_is_refused(world, changes):
    """Test that editing another contact to hold an erased person's email, numbers, or name at their organisation
    is refused with the erasure message and changes nothing (regression: only add and import were blocked)."""
    privacy.erase(world.db, world.manager_leeds, add_sam(world))
    tom = contacts.add(
        world.db, world.manager_leeds, {"name": "Tom Tan", "organisation_id": world.ot, "branch_id": world.leeds}
    )
    before = world.db["contacts"].get(tom)
    changes = {k: world.gp if v == "gp" else v for k, v in changes.items()}

    with pytest.raises(ValidationError) as refused:
        edit(world, world.manager_leeds, tom, **changes)

    assert str(refused.value) == SUPPRESSED
    assert world.db["contacts"].get(tom) == before


def test_that_a_contact_sharing_an_erased_persons_detail_can_still_be_edited(world):
    """Test that a contact who already held a detail an erased person had (the same switchboard name at another
    record, say) can still be edited: only details an edit brings in are checked."""
    sam = add_sam(world)
    twin = contacts.add(
        world.db,
        world.manager_leeds,
        {"name": "Sam Lee", "organisation_id": world.gp, "branch_id": world.leeds},
        allow_duplicate=True,
    )
    privacy.erase(world.db, world.manager_leeds, sam)

    edit(world, world.manager_leeds, twin, job_title="Practice Manager")

    assert world.db["contacts"].get(twin)["job_title"] == "Practice Manager"


def test_that_an_erased_contact_cannot_be_edited(world):
    """Test that an erased contact's record cannot be edited back into a person, nor marked active again."""
    sam = add_sam(world)
    privacy.erase(world.db, world.manager_leeds, sam)
    before = world.db["contacts"].get(sam)

    with pytest.raises(ValidationError) as refused:
        edit(world, world.manager_leeds, sam, name="Samuel Lee")
    assert str(refused.value) == "Contact: has been erased, so it cannot be changed."
    with pytest.raises(ValidationError):
        contacts.reinstate(world.db, world.manager_leeds, sam, before["version"])

    assert world.db["contacts"].get(sam) == before


# Erasing names the record by id and version (issue 11, item 1).


def test_that_erasing_a_contact_changed_since_it_was_chosen_is_refused(world):
    """Test that erasing with the version the user chose the contact at is refused, with a message naming them,
    when someone changed the contact since, and nothing is erased."""
    sam = add_sam(world)
    chosen = contacts.get(world.db, world.manager_leeds, sam)["version"]
    edit(world, world.lead_north, sam, job_title="Operations Manager")
    before = (rows(world.db, "contacts"), rows(world.db, "audit_log"), rows(world.db, "suppressions"))

    with pytest.raises(Conflict) as refused:
        privacy.erase(world.db, world.manager_leeds, sam, expected_version=chosen)

    assert str(refused.value) == (
        "Sam Lee's record was changed by someone else after you chose it, so nothing was erased. "
        "Look at it again, then decide."
    )
    assert (rows(world.db, "contacts"), rows(world.db, "audit_log"), rows(world.db, "suppressions")) == before


# Scope.

SCOPE_CASES = [
    ("manager_leeds", "leeds", True),
    ("manager_york", "leeds", False),
    ("manager_bristol", "leeds", False),
    ("lead_north", "york", True),
    ("lead_north", "bristol", False),
    ("lead_south", "leeds", False),
    ("lead_south", "bristol", True),
    ("admin", "bristol", True),
]


@pytest.mark.parametrize(("who", "branch", "allowed"), SCOPE_CASES)
def test_export_scope(world, who, branch, allowed):
    """Test that a branch manager can export only their branch's contacts and a regional lead only their
    region's; outside scope the contact is not found and nothing is audited."""
    contact_id = world.contact(getattr(world, branch), "Priya Patel", world.council)
    actor = getattr(world, who)
    entries = world.db["audit_log"].count

    if allowed:
        assert privacy.export_person(world.db, actor, contact_id)["contact"]["name"] == "Priya Patel"
        assert world.db["audit_log"].count == entries + 1
    else:
        with pytest.raises(NotFound) as refused:
            privacy.export_person(world.db, actor, contact_id)
        assert str(refused.value) == CONTACT_NOT_FOUND
        assert world.db["audit_log"].count == entries


@pytest.mark.parametrize(("who", "branch", "allowed"), SCOPE_CASES)
def test_erase_scope(world, who, branch, allowed):
    """Test that a branch manager can erase only their branch's contacts and a regional lead only their
    region's; outside scope the contact is not found and nothing changes."""
    contact_id = world.contact(getattr(world, branch), "Priya Patel", world.council, email="priya@council.gov.uk")
    actor = getattr(world, who)
    before = (world.db["contacts"].get(contact_id), world.db["audit_log"].count, world.db["suppressions"].count)

    if allowed:
        privacy.erase(world.db, actor, contact_id)
        assert world.db["contacts"].get(contact_id)["name"] == "Erased contact"
    else:
        with pytest.raises(NotFound) as refused:
            privacy.erase(world.db, actor, contact_id)
        assert str(refused.value) == CONTACT_NOT_FOUND
        assert (world.db["contacts"].get(contact_id), world.db["audit_log"].count, world.db["suppressions"].count) == (
            before
        )


# Exporting everything held about a person.


def small_case(world: World) -> int:
    """Sam Lee with one edit, one interaction, and an interaction of someone else that must not be exported."""
    sam = add_sam(world, mobile="", email="sam.lee@nhs.net", notes="Prefers email", privacy_info_sent_on="2026-02-03")
    edit(world, world.manager_leeds, sam, job_title="Operations Manager")
    log(
        world,
        [sam],
        kind_code="VISIT",
        occurred_on=date(2026, 2, 27),
        summary="Visit to Sam Lee",
        notes="Agreed referrals",
    )
    other = world.contact(world.leeds, "Priya Patel")
    log(world, [other], summary="Not about Sam")
    return sam


SMALL_CREATE = {
    "name": "Sam Lee",
    "job_title": "Practice Manager",
    "organisation_id": None,  # filled in per test
    "branch_id": None,
    "mobile": None,
    "email": "sam.lee@nhs.net",
    "notes": "Prefers email",
    "keep_in_touch_days": None,
    "lawful_basis": "legitimate interests",
    "privacy_info_sent_on": "2026-02-03",
    "do_not_contact": 0,
    "phone": "+441134960123",
    "phone_ext": "45",
    "is_named_contact": 1,
}


def small_export(
    sam: int, gp: int, leeds: int, exported_at: str = STAMP, user: str = "manager.leeds", logged_by: str = "Lee Leeds"
) -> dict:
    """What exporting the small case gives: the record, its one interaction, its two changes (newest first)."""
    return {
        "exported_at": exported_at,
        "contact": {
            "id": sam,
            "name": "Sam Lee",
            "job_title": "Operations Manager",
            "organisation": "Hyde Park Surgery",
            "type_label": "GP practice",
            "branch": "Leeds",
            "phone_display": "0113 496 0123 ext. 45",
            "mobile_display": "",
            "email": "sam.lee@nhs.net",
            "notes": "Prefers email",
            "is_named_contact": 1,
            "status": "active",
            "left_on": None,
            "lawful_basis": "legitimate interests",
            "privacy_info_sent_on": "2026-02-03",
            "do_not_contact": 0,
            "created_at": STAMP,
            "updated_at": STAMP,
            "last_touched_on": "2026-02-27",
        },
        "interactions": [
            {
                "occurred_on": "2026-02-27",
                "kind": "Visit",
                "summary": "Visit to Sam Lee",
                "notes": "Agreed referrals",
                "follow_up_on": None,
                "follow_up_action": "",
                "logged_by": logged_by,
                "branch": "Leeds",
                "organisation": "Hyde Park Surgery",
            }
        ],
        "testimonials": [],
        "referrals": [],
        "changes": [
            {
                "at": STAMP,
                "username": user,
                "action": "update",
                "changes": {"job_title": ["Practice Manager", "Operations Manager"]},
            },
            {
                "at": STAMP,
                "username": user,
                "action": "create",
                "changes": {**SMALL_CREATE, "organisation_id": gp, "branch_id": leeds},
            },
        ],
    }


def test_export_person_returns_the_record_interactions_and_changes(world):
    """Test that exporting a contact returns their record, their interactions only, and every change made to their
    record (newest first), and that the export is audited."""
    sam = small_case(world)

    data = privacy.export_person(world.db, world.manager_leeds, sam)

    assert data == small_export(sam, world.gp, world.leeds)
    assert audit.entries(world.db, limit=1) == [
        {
            "id": world.db["audit_log"].count,
            "at": STAMP,
            "user_id": world.manager_leeds.id,
            "username": "manager.leeds",
            "action": "export_person",
            "table_name": "contacts",
            "row_id": sam,
            "changes": {},
        }
    ]


def test_export_text_is_readable(world):
    """Test that the readable export lists the record field by field with readable labels (a dash for blanks,
    yes or no for flags), each interaction on a line, and each change on a line."""
    sam = small_case(world)
    create = json.dumps({**SMALL_CREATE, "organisation_id": world.gp, "branch_id": world.leeds}, ensure_ascii=False)

    text = privacy.export_text(privacy.export_person(world.db, world.manager_leeds, sam))

    assert text.splitlines() == [
        "Everything Partner CRM holds about Sam Lee",
        f"Exported {STAMP}",
        "",
        f"Record number: {sam}",
        "Name: Sam Lee",
        "Job title: Operations Manager",
        "Organisation: Hyde Park Surgery",
        "Partner type: GP practice",
        "Branch: Leeds",
        "Phone: 0113 496 0123 ext. 45",
        "Mobile: -",
        "Email: sam.lee@nhs.net",
        "Notes: Prefers email",
        "Named contact: yes",
        "Status: active",
        "Left on: -",
        "Lawful basis: legitimate interests",
        "Privacy information sent on: 2026-02-03",
        "Do not contact: no",
        f"Added: {STAMP}",
        f"Last changed: {STAMP}",
        "Last touched: 2026-02-27",
        "",
        "Interactions (1)",
        "- 2026-02-27 Visit: Visit to Sam Lee (Agreed referrals)",
        "",
        "Testimonials given (0)",
        "",
        "Referrals sent (0)",
        "",
        "Changes to the record (2)",
        f'- {STAMP} manager.leeds update: {{"job_title": ["Practice Manager", "Operations Manager"]}}',
        f"- {STAMP} manager.leeds create: {create}",
    ]
    assert text.endswith("\n")


def test_export_person_lists_the_testimonials_they_gave(world):
    """Test that the export lists the testimonials the person gave (not those others gave), in both forms."""
    sam = add_sam(world)
    testimonials.add(
        world.db,
        world.manager_leeds,
        {
            "branch_id": world.leeds,
            "quote": SAM_QUOTE,
            "contact_id": sam,
            "source": "email",
            "received_on": "2026-02-14",
            "consent_scope": "cqc",
            "attribution": "role",
            "consent_given_on": "2026-02-15",
        },
    )
    other = world.contact(world.leeds, "Priya Patel")
    testimonials.add(
        world.db,
        world.manager_leeds,
        {"branch_id": world.leeds, "quote": "Great", "contact_id": other, "source": "card"},
    )

    data = privacy.export_person(world.db, world.manager_leeds, sam)

    assert data["testimonials"] == [
        {
            "received_on": "2026-02-14",
            "quote": SAM_QUOTE,
            "source": "email",
            "consent_scope": "cqc",
            "attribution": "role",
            "consent_given_on": "2026-02-15",
            "consent_withdrawn_on": None,
        }
    ]
    lines = privacy.export_text(data).splitlines()
    start = lines.index("Testimonials given (1)")
    assert lines[start : start + 2] == ["Testimonials given (1)", f"- 2026-02-14: {SAM_QUOTE} (consent: cqc)"]


def test_export_person_lists_the_referrals_they_sent(world):
    """Test that the export lists the referrals the person sent (not those of others), with what concerns them:
    when (UK time), how, to which branch, from where, and the branch's answer; never what the referral asked for
    about the client (hours, start, area, the provider's reference, the outcome note)."""
    sam = add_sam(world)
    other = world.contact(world.leeds, "Priya Patel")
    sent = {"branch_id": world.leeds, "organisation_id": world.gp, "hours_per_week": 14, "area": "LS6"}
    declined = referrals.log(
        world.db,
        world.manager_leeds,
        {
            **sent,
            "contact_id": sam,
            "received_at": datetime(2026, 2, 10, 9, 30),
            "channel": "email",
            "urgency": "hospital_discharge",
            "provider_reference": "CM-12345",
        },
    )
    referrals.record_outcome(
        world.db,
        world.manager_leeds,
        declined,
        {
            "outcome": "declined",
            "decline_reason": "OTHER",
            "decided_at": datetime(2026, 2, 10, 15, 0),
            "outcome_note": "Needs two carers at night",
        },
        expected_version=1,
    )
    referrals.log(
        world.db,
        world.manager_leeds,
        {
            **sent,
            "contact_id": sam,
            "received_at": datetime(2026, 2, 20, 11, 0),
            "channel": "phone",
            "urgency": "routine",
        },
    )
    referrals.log(
        world.db,
        world.manager_leeds,
        {
            **sent,
            "contact_id": other,
            "received_at": datetime(2026, 2, 21, 11, 0),
            "channel": "phone",
            "urgency": "urgent",
        },
    )

    data = privacy.export_person(world.db, world.manager_leeds, sam)

    assert data["referrals"] == [
        {
            "received": "20 Feb 2026 11:00",
            "branch": "Leeds",
            "organisation": "Hyde Park Surgery",
            "channel": "Phone",
            "urgency": "Routine",
            "outcome": "Open",
            "decline_reason": "",
            "decided": "",
        },
        {
            "received": "10 Feb 2026 09:30",
            "branch": "Leeds",
            "organisation": "Hyde Park Surgery",
            "channel": "Email",
            "urgency": "Hospital discharge",
            "outcome": "Declined",
            "decline_reason": "Other",
            "decided": "10 Feb 2026 15:00",
        },
    ]
    text = privacy.export_text(data)
    lines = text.splitlines()
    start = lines.index("Referrals sent (2)")
    assert lines[start : start + 4] == [
        "Referrals sent (2)",
        "- 20 Feb 2026 11:00 (Phone, Routine) to Leeds: Open",
        "- 10 Feb 2026 09:30 (Email, Hospital discharge) to Leeds: Declined (Other), decided 10 Feb 2026 15:00",
        "",
    ]
    everything = text + privacy.to_json(data)
    assert [word for word in ("CM-12345", "Needs two carers", "LS6", "14") if word in everything] == []


def test_export_text_includes_follow_ups(world):
    """Test that the readable export, like the JSON one, carries each interaction's follow-up date and action
    (they can be about the person, and a subject access request is owed everything held)."""
    sam = add_sam(world)
    log(world, [sam], summary="Call", follow_up_on=date(2026, 3, 9), follow_up_action="Post Sam the leaflet pack")
    data = privacy.export_person(world.db, world.manager_leeds, sam)
    assert [(r["follow_up_on"], r["follow_up_action"]) for r in data["interactions"]] == [
        ("2026-03-09", "Post Sam the leaflet pack")
    ]

    text = privacy.export_text(data)

    assert ("2026-03-09" in text, "Post Sam the leaflet pack" in text) == (True, True)


def test_to_json_round_trips_and_keeps_accents_readable(world):
    """Test that the JSON export reads back as the same data, with accented letters written as themselves."""
    zoe = contacts.add(
        world.db, world.manager_leeds, {"name": "Zoë Brontë", "organisation_id": world.ot, "branch_id": world.leeds}
    )
    data = privacy.export_person(world.db, world.manager_leeds, zoe)

    text = privacy.to_json(data)

    assert json.loads(text) == data
    assert '"name": "Zoë Brontë"' in text


def test_exporting_an_erased_contact_shows_nothing_of_them(world):
    """Test that the export of an erased contact holds no trace of them, and their interactions stay listed."""
    scene = build_scene(world)
    privacy.erase(world.db, world.manager_leeds, scene.sam)

    data = privacy.export_person(world.db, world.manager_leeds, scene.sam)

    text = privacy.to_json(data) + privacy.export_text(data)
    assert [t for t in SAM_TRACES if t.casefold() in text.casefold()] == []
    assert (data["contact"]["name"], len(data["interactions"])) == ("Erased contact", 3)


# Lawful basis, privacy information, do not contact.


def test_new_contact_has_the_default_data_protection_fields(world):
    """Test that a contact added without data-protection fields has legitimate interests as lawful basis, no
    privacy information date, may be contacted, and is not erased."""
    sam = add_sam(world)

    row = world.db["contacts"].get(sam)

    assert {k: row[k] for k in ("lawful_basis", "privacy_info_sent_on", "do_not_contact", "erased_at")} == {
        "lawful_basis": "legitimate interests",
        "privacy_info_sent_on": None,
        "do_not_contact": 0,
        "erased_at": None,
    }


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        (
            {"lawful_basis": " Consent ", "privacy_info_sent_on": date(2026, 2, 3), "do_not_contact": True},
            ("consent", "2026-02-03", 1),
        ),
        ({"lawful_basis": "public task", "privacy_info_sent_on": "2026-02-28"}, ("public task", "2026-02-28", 0)),
        ({"lawful_basis": "", "privacy_info_sent_on": "", "do_not_contact": False}, ("legitimate interests", None, 0)),
    ],
)
def test_data_protection_fields_are_stored(world, given, stored):
    """Test that the lawful basis is stored lower-case, the privacy information date as an ISO date, and
    do-not-contact as 0 or 1."""
    sam = add_sam(world, **given)

    row = world.db["contacts"].get(sam)

    assert (row["lawful_basis"], row["privacy_info_sent_on"], row["do_not_contact"]) == stored


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"lawful_basis": "marketing"}, LAWFUL_BASIS_REFUSED),
        (
            {"privacy_info_sent_on": "03/02/2026"},
            "Privacy information sent on: “03/02/2026” is not a date (use YYYY-MM-DD, e.g. 2026-03-31).",
        ),
    ],
)
def test_bad_data_protection_fields_are_refused(world, given, message):
    """Test that an unknown lawful basis or a date not in ISO form is refused with a message naming the field."""
    with pytest.raises(ValidationError) as refused:
        add_sam(world, **given)

    assert str(refused.value) == message
    assert world.db["contacts"].count == 0


def test_editing_the_data_protection_fields_is_audited(world):
    """Test that changing lawful basis, privacy information date and do-not-contact is saved and audited."""
    sam = add_sam(world)

    edit(
        world, world.manager_leeds, sam, lawful_basis="consent", privacy_info_sent_on="2026-02-20", do_not_contact=True
    )

    assert trail(world.db, sam)[0] == (
        "manager.leeds",
        "update",
        {
            "lawful_basis": ["legitimate interests", "consent"],
            "privacy_info_sent_on": [None, "2026-02-20"],
            "do_not_contact": [0, 1],
        },
    )


def dnc_scene(world: World) -> tuple[int, int, int]:
    """Three never-contacted named contacts in Leeds; one lapsed: Una may be called, Dan and Dora may not."""
    una = world.contact(world.leeds, "Una Usual")
    dan = world.contact(world.leeds, "Dan Donot", do_not_contact=True)
    dora = world.contact(world.leeds, "Dora Donot", world.ot)
    log(world, [dora], occurred_on=TODAY - timedelta(days=200))
    edit(world, world.admin, dora, do_not_contact=True)
    return una, dan, dora


def test_do_not_contact_contacts_are_never_lapsing(world):
    """Test that do-not-contact contacts, never contacted or lapsed, are left out of the lapsing list."""
    una, dan, dora = dnc_scene(world)

    assert [r["id"] for r in contacts.lapsing(world.db, world.admin)] == [una]
    edit(world, world.admin, dan, do_not_contact=False)
    assert [r["id"] for r in contacts.lapsing(world.db, world.admin)] == [dan, una]


def test_do_not_contact_contacts_are_not_on_the_call_list(world):
    """Test that lapsed or never-contacted do-not-contact contacts are left out of the call list."""
    dnc_scene(world)

    assert [(r["what"], r["who"]) for r in interactions.to_call(world.db, world.admin)] == [
        ("named contact", "Una Usual")
    ]


@pytest.mark.parametrize("how", ["do not contact", "erased"])
def test_follow_ups_with_do_not_contact_people_are_not_on_the_call_list(world, how):
    """Test that an open follow-up whose only contact asked not to be contacted (or was erased) is not on the
    call list, so nobody is told to ring them."""
    una = world.contact(world.leeds, "Una Usual")
    log(world, [una], occurred_on=TODAY - timedelta(days=5))
    dan = world.contact(world.leeds, "Dan Donot")
    log(
        world,
        [dan],
        occurred_on=TODAY - timedelta(days=5),
        follow_up_on=TODAY - timedelta(days=1),
        follow_up_action="Ring Dan",
    )
    if how == "erased":
        privacy.erase(world.db, world.manager_leeds, dan)
    else:
        edit(world, world.manager_leeds, dan, do_not_contact=True)

    assert interactions.to_call(world.db, world.admin) == []


# The 0006 schema step.


def test_the_data_protection_step_gives_existing_contacts_the_defaults(db_path):
    """Test that upgrading a database from before 0006 keeps every contact and gives each one legitimate interests,
    no privacy information date, may-contact and not erased, and adds an empty suppressions table."""
    old = db.connect(db_path, migrate=False)
    schema.migrations.apply(old, stop_before="0006_data_protection")
    old.execute("INSERT INTO regions (name, created_at) VALUES ('North', 'x')")
    old.execute("INSERT INTO branches (name, region_id, created_at) VALUES ('Leeds', 1, 'x')")
    old.execute(
        "INSERT INTO organisations (name, type_code, created_at, updated_at) "
        "VALUES ('Surgery', 'GP_PRACTICE', 'x', 'x')"
    )
    old.execute(
        "INSERT INTO contacts (branch_id, organisation_id, name, email, created_at, updated_at) "
        "VALUES (1, 1, 'Sam Lee', 'sam.lee@nhs.net', 'x', 'x')"
    )
    before = rows(old, "contacts")
    old.close()

    upgraded = db.connect(db_path)

    assert schema.pending(upgraded) == []
    added = {
        "lawful_basis": "legitimate interests",
        "privacy_info_sent_on": None,
        "do_not_contact": 0,
        "erased_at": None,
    }
    # Later steps may add columns of their own; every old value is kept and 0006's columns have their defaults.
    assert [{k: r[k] for k in [*before[0], *added]} for r in rows(upgraded, "contacts")] == [{**before[0], **added}]
    assert rows(upgraded, "suppressions") == []
    upgraded.close()


# The command line, run as users run it.


def run(db_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -m crm ARGS`` from the repository root with CRM_DB set and no terminal on stdin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env.update(CRM_DB=str(db_path), CRM_ADMIN_PASSWORD=PASSWORD)
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=120,
    )


@pytest.fixture(scope="module")
def initialised(tmp_path_factory) -> Path:
    """A database made by ``python -m crm init --admin ada``, once for the module (hashing is slow)."""
    path = tmp_path_factory.mktemp("privacy_cli") / "crm.db"
    result = run(path, "init", "--admin", "ada")
    assert (result.returncode, result.stdout, result.stderr) == (0, f"{path}: created administrator ada\n", "")
    return path


@dataclass
class Cli:
    path: Path
    db: object
    leeds: int
    gp: int
    sam: int


@pytest.fixture
def cli(initialised, tmp_path, monkeypatch) -> Cli:
    """A copy of the initialised database with Leeds, Hyde Park Surgery and Sam Lee (one edit, one visit), added
    in-process by the command line's actor with the clock at FROZEN; the commands themselves run on real time."""
    path = tmp_path / "crm.db"
    copy_database(initialised, path)
    database = db.connect(path)
    with monkeypatch.context() as frozen:
        frozen.setattr(clock, "now", lambda: FROZEN)
        north = branches.add_region(database, COMMAND_LINE, "North")
        leeds = branches.add_branch(database, COMMAND_LINE, "Leeds", north)
        gp = organisations.add(database, COMMAND_LINE, {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE"})
        sam = contacts.add(
            database,
            COMMAND_LINE,
            {
                **SAM,
                "mobile": "",
                "email": "sam.lee@nhs.net",
                "notes": "Prefers email",
                "privacy_info_sent_on": "2026-02-03",
                "organisation_id": gp,
                "branch_id": leeds,
            },
        )
        row = contacts.get(database, COMMAND_LINE, sam)
        contacts.update(
            database,
            COMMAND_LINE,
            sam,
            {**row, "phone": row["phone_display"], "job_title": "Operations Manager"},
            row["version"],
        )
        interactions.log(
            database,
            COMMAND_LINE,
            {
                "branch_id": leeds,
                "occurred_on": "2026-02-27",
                "kind_code": "VISIT",
                "summary": "Visit to Sam Lee",
                "notes": "Agreed referrals",
                "contact_ids": [sam],
            },
        )
    yield Cli(path, database, leeds, gp, sam)
    database.close()


def cli_export(cli: Cli, exported_at: str, earlier: list[dict]) -> dict:
    """The small case's export as the command line writes it (its actor is "command line")."""
    data = small_export(cli.sam, cli.gp, cli.leeds, exported_at, user="command line", logged_by="command line")
    data["changes"][:0] = earlier
    return data


def export_entries(cli: Cli) -> list[dict]:
    return [
        {k: e[k] for k in ("at", "username", "action", "changes")}
        for e in audit.entries(cli.db, "contacts", cli.sam)
        if e["action"] == "export_person"
    ]


def test_cli_export_person_to_json(cli, tmp_path):
    """Test that export-person --out FILE.json writes the whole export as JSON, says where, and is audited."""
    out = tmp_path / "sam.json"

    result = run(cli.path, "export-person", str(cli.sam), "--out", str(out))

    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"wrote everything held about contact {cli.sam} to {out}\n",
        "",
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    assert STAMP_SHAPE.fullmatch(data["exported_at"])
    assert data == cli_export(cli, data["exported_at"], [])
    [entry] = export_entries(cli)
    assert (entry["username"], entry["action"], entry["changes"]) == ("command line", "export_person", {})


def test_cli_export_person_to_text(cli, tmp_path):
    """Test that export-person --out FILE.txt writes the readable export, listing an earlier export among the
    changes."""
    run(cli.path, "export-person", str(cli.sam), "--out", str(tmp_path / "first.json"))
    out = tmp_path / "sam.txt"

    result = run(cli.path, "export-person", str(cli.sam), "--out", str(out))

    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"wrote everything held about contact {cli.sam} to {out}\n",
        "",
    )
    text = out.read_text(encoding="utf-8")
    exported_at = text.splitlines()[1].removeprefix("Exported ")
    assert STAMP_SHAPE.fullmatch(exported_at)
    first_export = export_entries(cli)[-1]
    assert text == privacy.export_text(cli_export(cli, exported_at, [first_export]))


def test_cli_export_person_out_of_range(cli, tmp_path):
    """Test that exporting a contact that does not exist is a one-line error, writing no file."""
    out = tmp_path / "nobody.json"

    result = run(cli.path, "export-person", "999", "--out", str(out))

    assert (result.returncode, result.stdout, result.stderr) == (1, "", f"error: {CONTACT_NOT_FOUND}\n")
    assert not out.exists()


def test_cli_erase_contact_without_yes_and_no_terminal_erases_nothing(cli):
    """Test that erase-contact without --yes, with no terminal to ask on, refuses with a one-line error and a
    non-zero exit, and changes nothing."""
    before = (rows(cli.db, "contacts"), rows(cli.db, "interactions"), rows(cli.db, "audit_log"))

    result = run(cli.path, "erase-contact", str(cli.sam))

    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "error: add --yes to erase without being asked\n",
    )
    assert (rows(cli.db, "contacts"), rows(cli.db, "interactions"), rows(cli.db, "audit_log")) == before
    assert rows(cli.db, "suppressions") == []


def test_cli_erase_contact_with_yes(cli):
    """Test that erase-contact --yes erases the contact (the interaction stays, without their name), says so, and a
    second erase is a one-line error."""
    result = run(cli.path, "erase-contact", str(cli.sam), "--yes")

    assert (result.returncode, result.stdout, result.stderr) == (0, f"erased contact {cli.sam}\n", "")
    row = cli.db["contacts"].get(cli.sam)
    assert (row["name"], row["email"], row["phone"], row["do_not_contact"]) == ("Erased contact", None, None, 1)
    assert STAMP_SHAPE.fullmatch(row["erased_at"])
    assert [r["summary"] for r in rows(cli.db, "interactions")] == ["Visit to [erased]"]
    assert mentions(cli.db, SAM_TRACES) == []

    again = run(cli.path, "erase-contact", str(cli.sam), "--yes")

    assert (again.returncode, again.stdout, again.stderr) == (1, "", f"error: {ALREADY_ERASED}\n")


def test_cli_followups_leave_out_do_not_contact_people(cli):
    """Test that `python -m crm followups` names nobody who asked not to be contacted: neither as a lapsed named
    contact nor through an open follow-up."""
    today = date.today()
    contacts.add(cli.db, COMMAND_LINE, {"name": "Una Usual", "organisation_id": cli.gp, "branch_id": cli.leeds})
    row = contacts.get(cli.db, COMMAND_LINE, cli.sam)
    contacts.update(
        cli.db,
        COMMAND_LINE,
        cli.sam,
        {**row, "phone": row["phone_display"], "do_not_contact": True},
        row["version"],
    )
    interactions.log(
        cli.db,
        COMMAND_LINE,
        {
            "branch_id": cli.leeds,
            "occurred_on": today - timedelta(days=200),
            "kind_code": "PHONE_CALL",
            "summary": "Call",
            "follow_up_on": today - timedelta(days=100),
            "follow_up_action": "Ring Sam back",
            "contact_ids": [cli.sam],
        },
    )

    result = run(cli.path, "followups", "--format", "json")

    assert (result.returncode, result.stderr) == (0, "")
    assert json.loads(result.stdout) == [
        {
            "branch": "Leeds",
            "what": "named contact",
            "state": "never",
            "date": "",
            "who": "Una Usual",
            "organisation": "Hyde Park Surgery",
            "detail": "keep in touch every 90 days",
            "phone": "",
        }
    ]
