"""Testimonials: the whole record, consent and attribution for each audience, validation with exact messages,
client data, edits and edit conflicts, withdrawing consent, deleting, full-text search kept in step with edits,
evidence files checked by content and stored under hashed names, and every actor's scope."""

import hashlib
import io
import json
import zipfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from crm import audit, clock, db, interactions, organisations, testimonials, users
from crm.errors import Conflict, InvalidFields, NotFound, PossibleClientData, ValidationError
from tests.conftest import PASSWORD, World, copy_world

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)  # a Monday
STAMP = "2026-03-02T10:30:00Z"
TODAY = date(2026, 3, 2)

TESTIMONIAL_NOT_FOUND = "That testimonial does not exist or is not in one of your branches."
BRANCH_NOT_FOUND = "That branch does not exist or is not one of yours."
NHS_WARNING = (
    "Quote: contains what looks like an NHS number. Partner records must not hold details of the people you "
    "support: remove it, or confirm that it is not an NHS number."
)
VALID_NHS_NUMBER = "943 476 5919"

# How the giver of most testimonials here is attributed (Olive Oak, a contact of the Leeds branch).
NAMED = "Olive Oak, Community Occupational Therapist, Leeds City Council"
ROLE = "Community Occupational Therapist, Leeds City Council"
ANONYMOUS = "Anonymous, Council adult social care"

# Every combination of consent scope, attribution agreed and withdrawal, with how each audience sees the quote
# (None: the audience does not see it at all).
CONSENT_TABLE = [
    # scope, attribution, withdrawn, internal, cqc, public
    ("none", "named", False, NAMED, None, None),
    ("none", "role", False, NAMED, None, None),
    ("none", "anonymous", False, NAMED, None, None),
    ("none", "named", True, NAMED, None, None),
    ("none", "role", True, NAMED, None, None),
    ("none", "anonymous", True, NAMED, None, None),
    ("internal", "named", False, NAMED, None, None),
    ("internal", "role", False, NAMED, None, None),
    ("internal", "anonymous", False, NAMED, None, None),
    ("internal", "named", True, NAMED, None, None),
    ("internal", "role", True, NAMED, None, None),
    ("internal", "anonymous", True, NAMED, None, None),
    ("cqc", "named", False, NAMED, NAMED, None),
    ("cqc", "role", False, NAMED, ROLE, None),
    ("cqc", "anonymous", False, NAMED, ANONYMOUS, None),
    ("cqc", "named", True, NAMED, None, None),
    ("cqc", "role", True, NAMED, None, None),
    ("cqc", "anonymous", True, NAMED, None, None),
    ("public", "named", False, NAMED, NAMED, NAMED),
    ("public", "role", False, NAMED, ROLE, ROLE),
    ("public", "anonymous", False, NAMED, ANONYMOUS, ANONYMOUS),
    ("public", "named", True, NAMED, None, None),
    ("public", "role", True, NAMED, None, None),
    ("public", "anonymous", True, NAMED, None, None),
]
AUDIENCES = ("internal", "cqc", "public")

ACTORS = ("admin", "lead_north", "lead_south", "manager_leeds", "manager_york", "manager_bristol")
BRANCHES = ("leeds", "york", "bristol")
IN_SCOPE = {
    "admin": {"leeds", "york", "bristol"},
    "lead_north": {"leeds", "york"},
    "lead_south": {"bristol"},
    "manager_leeds": {"leeds"},
    "manager_york": {"york"},
    "manager_bristol": {"bristol"},
}

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(17)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20) + b"\xff\xd9"


def build_world(path: Path) -> World:
    """The conftest world plus Leeds City Council and Olive Oak, the community OT who gives most quotes."""
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    world.city_council = organisations.add(
        database, world.admin, {"name": "Leeds City Council", "type_code": "LA_SOCIAL_CARE"}
    )
    world.olive = world.contact(
        world.leeds, "Olive Oak", organisation_id=world.city_council, job_title="Community Occupational Therapist"
    )
    database.close()
    return world


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The world, built once because hashing passwords is slow."""
    path = tmp_path_factory.mktemp("testimonials") / "crm.db"
    return path, build_world(path)


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(*template, tmp_path / "crm.db")
    yield scene
    scene.db.close()


def add(world: World, actor=None, evidence=None, *, confirmed: bool = False, **values) -> int:
    """Record a testimonial from Olive Oak at Leeds (unless ``values`` say otherwise)."""
    row = {
        "branch_id": world.leeds,
        "quote": "The carers made the discharge home safe and calm.",
        "contact_id": world.olive,
        "source": "email",
        "received_on": "2026-02-20",
        **values,
    }
    return testimonials.add(world.db, actor or world.admin, row, evidence, confirmed=confirmed)


def with_consent(world: World, scope: str, attribution: str, withdrawn: bool = False, **values) -> int:
    """A testimonial with this consent (given on 21 Feb when recorded), withdrawn on 1 Mar if ``withdrawn``."""
    testimonial_id = add(
        world,
        consent_scope=scope,
        attribution=attribution,
        consent_given_on=None if scope == "none" else "2026-02-21",
        **values,
    )
    if withdrawn:
        testimonials.withdraw_consent(world.db, world.admin, testimonial_id, on=date(2026, 3, 1))
    return testimonial_id


def expected(world: World, testimonial_id: int, **changes) -> dict:
    """The whole record get() returns for a testimonial made by add() with its defaults, with ``changes``."""
    return {
        "id": testimonial_id,
        "branch_id": world.leeds,
        "quote": "The carers made the discharge home safe and calm.",
        "contact_id": world.olive,
        "giver_name": "Olive Oak",
        "giver_role": "Community Occupational Therapist",
        "organisation_id": world.city_council,
        "organisation_name": "Leeds City Council",
        "type_code": "LA_SOCIAL_CARE",
        "received_on": "2026-02-20",
        "source": "email",
        "interaction_id": None,
        "themes": "",
        "evidence_file": None,
        "evidence_name": None,
        "evidence_type": None,
        "consent_scope": "none",
        "attribution": "anonymous",
        "consent_given_on": None,
        "consent_how": "",
        "consent_withdrawn_on": None,
        "created_at": STAMP,
        "created_by": world.admin.id,
        "updated_at": STAMP,
        "updated_by": world.admin.id,
        "version": 1,
        "branch": "Leeds",
        "region": "North",
        "type_label": "Council adult social care",
        "organisation": "Leeds City Council",
        "statements": [],
        **changes,
    }


def counts(world: World) -> dict[str, int]:
    return {t: world.db.table(t).count for t in ("testimonials", "testimonial_statements", "audit_log")}


def evidence_dir(world: World) -> Path:
    return Path(world.db.execute("PRAGMA database_list").fetchone()[2]).parent / "crm-evidence"


def evidence_files(world: World) -> list[str]:
    folder = evidence_dir(world)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def found(world: World, actor=None, **filters) -> list[int]:
    return [r["id"] for r in testimonials.search(world.db, actor or world.admin, **filters)]


def audit_entries(world: World, action: str) -> list[dict]:
    rows = world.db.execute_returning_dicts(
        "SELECT username, action, table_name, row_id, changes FROM audit_log WHERE action = ? ORDER BY id", [action]
    )
    return [{**r, "changes": json.loads(r["changes"])} for r in rows]


# Recording: the whole record.


def test_add_from_a_contact_and_get_whole_record(world):
    """Test that a testimonial given by a contact is stored cleaned (quote trimmed, themes lower-cased, de-duplicated
    and sorted, statements sorted once each), takes the giver's name, role, organisation and partner type from the
    contact, and is read back whole by get() with its branch, region, type label and statements."""
    testimonial_id = add(
        world,
        world.manager_leeds,
        quote="  The carers made the discharge home safe and calm.\r\n",
        contact_id=str(world.olive),
        branch_id=str(world.leeds),
        source="card",
        themes=" Discharge, communication,discharge ,,  ",
        statements=["S2", "W6", "S2"],
        consent_scope="cqc",
        attribution="role",
        consent_given_on=date(2026, 2, 21),
        consent_how=" Replied to our email ",
    )

    assert testimonials.get(world.db, world.manager_leeds, testimonial_id) == expected(
        world,
        testimonial_id,
        source="card",
        themes="communication, discharge",
        statements=["S2", "W6"],
        consent_scope="cqc",
        attribution="role",
        consent_given_on="2026-02-21",
        consent_how="Replied to our email",
        created_by=world.manager_leeds.id,
        updated_by=world.manager_leeds.id,
    )
    assert [(r["statement_code"]) for r in world.db["testimonial_statements"].rows] == ["S2", "W6"]
    assert audit.entries(world.db, "testimonials", testimonial_id) == [
        {
            "id": world.db["audit_log"].count,
            "at": STAMP,
            "user_id": world.manager_leeds.id,
            "username": "manager.leeds",
            "action": "create",
            "table_name": "testimonials",
            "row_id": testimonial_id,
            "changes": {
                "branch_id": world.leeds,
                "quote": "The carers made the discharge home safe and calm.",
                "contact_id": world.olive,
                "giver_name": "Olive Oak",
                "giver_role": "Community Occupational Therapist",
                "organisation_id": world.city_council,
                "organisation_name": "Leeds City Council",
                "type_code": "LA_SOCIAL_CARE",
                "received_on": "2026-02-20",
                "source": "card",
                "interaction_id": None,
                "themes": "communication, discharge",
                "consent_scope": "cqc",
                "attribution": "role",
                "consent_given_on": "2026-02-21",
                "consent_how": "Replied to our email",
                "statements": ["S2", "W6"],
            },
        }
    ]


def test_add_with_a_typed_giver_and_get_whole_record(world):
    """Test that a giver who is not a contact is typed in (name, role, organisation and partner type), that the
    received date defaults to today, and that get() returns the whole record with the typed organisation."""
    testimonial_id = add(
        world,
        contact_id=None,
        giver_name=" Gita Green ",
        giver_role="District Nurse Lead",
        organisation_name="Leeds Community Healthcare",
        type_code="COMMUNITY_NURSING",
        received_on=None,
    )

    assert testimonials.get(world.db, world.admin, testimonial_id) == expected(
        world,
        testimonial_id,
        contact_id=None,
        giver_name="Gita Green",
        giver_role="District Nurse Lead",
        organisation_id=None,
        organisation_name="Leeds Community Healthcare",
        type_code="COMMUNITY_NURSING",
        type_label="Community nursing (district nurses)",
        organisation="Leeds Community Healthcare",
        received_on="2026-03-02",
    )


def test_typed_giver_details_take_precedence_over_the_contacts(world):
    """Test that a name, role or partner type typed in the form is kept rather than replaced by the contact's."""
    testimonial_id = add(world, giver_name="Dr Olive Oak", giver_role="Lead OT", type_code="COMMUNITY_THERAPY")

    record = testimonials.get(world.db, world.admin, testimonial_id)

    assert (record["giver_name"], record["giver_role"], record["type_code"], record["organisation_name"]) == (
        "Dr Olive Oak",
        "Lead OT",
        "COMMUNITY_THERAPY",
        "Leeds City Council",
    )


# Consent: which audience sees what, and how it is attributed.


@pytest.mark.parametrize(("scope", "attribution", "withdrawn", "internal", "cqc", "public"), CONSENT_TABLE)
def test_each_audience_sees_and_attributes_a_quote_as_its_consent_allows(
    world, scope, attribution, withdrawn, internal, cqc, public
):
    """Test that for this consent scope, attribution and withdrawal, each audience sees the quote or not, and
    attributed exactly as agreed: internal sees everything with name, role and organisation; CQC sees scope cqc or
    public not withdrawn; public sees scope public not withdrawn."""
    testimonial_id = with_consent(world, scope, attribution, withdrawn)

    for audience, attributed in zip(AUDIENCES, (internal, cqc, public), strict=True):
        rows = testimonials.search(world.db, world.admin, audience=audience)
        assert [(r["id"], testimonials.attribution(r, audience)) for r in rows] == (
            [(testimonial_id, attributed)] if attributed else []
        ), audience
        assert [r["Attribution"] for r in testimonials.export_rows(world.db, rows, audience)] == (
            [attributed] if attributed else []
        ), audience


def test_every_consent_combination_at_once(world):
    """Test that with all 24 combinations of consent recorded, internal sees all 24, CQC the six not withdrawn with
    scope cqc or public, and public the three not withdrawn with scope public, newest first."""
    ids = {}
    for day, (scope, attribution, withdrawn, *_) in enumerate(CONSENT_TABLE, start=1):
        ids[scope, attribution, withdrawn] = with_consent(
            world, scope, attribution, withdrawn, received_on=date(2026, 1, day)
        )

    for index, audience in enumerate(AUDIENCES, start=3):
        rows = testimonials.search(world.db, world.admin, audience=audience)
        wanted = [(ids[row[:3]], row[index]) for row in reversed(CONSENT_TABLE) if row[index]]
        assert [(r["id"], testimonials.attribution(r, audience)) for r in rows] == wanted, audience
    assert [len(found(world, audience=a)) for a in AUDIENCES] == [24, 6, 3]


@pytest.mark.parametrize(
    ("giver", "attribution", "audience", "shown"),
    [
        # A role but no name: named attribution shows what there is.
        ({"giver_name": "", "giver_role": "Practice Manager"}, "named", "cqc", "Practice Manager, Hyde Park Surgery"),
        # No role: "A colleague" stands in for it.
        ({"giver_name": "Priya Patel", "giver_role": ""}, "role", "public", "A colleague, Hyde Park Surgery"),
        ({"giver_name": "Priya Patel", "giver_role": ""}, "named", "public", "Priya Patel, Hyde Park Surgery"),
        ({"giver_name": "Priya Patel", "giver_role": ""}, "anonymous", "internal", "Priya Patel, Hyde Park Surgery"),
        ({"giver_name": "Priya Patel", "giver_role": "GP"}, "anonymous", "public", "Anonymous, GP practice"),
        # No organisation at all: the partner type names it.
        (
            {"giver_name": "Priya Patel", "giver_role": "GP", "organisation": None},
            "role",
            "cqc",
            "GP, GP practice",
        ),
    ],
)
def test_attribution_when_parts_are_missing(giver, attribution, audience, shown):
    """Test that attribution() leaves out what is missing, writes "A colleague" for a missing role, and falls back
    to the partner type when there is no organisation."""
    row = {
        "organisation": "Hyde Park Surgery",
        "type_label": "GP practice",
        "attribution": attribution,
        **giver,
    }

    assert testimonials.attribution(row, audience) == shown


def test_unknown_audience_is_refused(world):
    """Test that searching for an audience that does not exist is refused with the list of audiences."""
    with pytest.raises(ValidationError) as error:
        testimonials.search(world.db, world.admin, audience="press")

    assert str(error.value) == "Audience: must be one of: internal, cqc, public."


# Validation: each problem with the exact message the user sees, and nothing written.


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quote": ""}, "Quote: is required."),
        ({"quote": "  \r\n\t "}, "Quote: is required."),
        ({"quote": "x" * 5001}, "Quote: is too long (5001 characters; the limit is 5000)."),
        ({"quote": "Thanks\x00"}, "Quote: contains a control character that cannot be stored."),
        ({"received_on": "2026-03-03"}, "Received on: cannot be in the future."),
        ({"received_on": "31/12/2025"}, "Received on: “31/12/2025” is not a date (use YYYY-MM-DD, e.g. 2026-03-31)."),
        (
            {"consent_scope": "cqc", "attribution": "named"},
            "Consent given on: is required when consent is recorded.",
        ),
        ({"consent_scope": "public"}, "Consent given on: is required when consent is recorded."),
        ({"source": "fax"}, "How it came: must be one of: Email, Card, Letter, Verbal, Survey, Online review."),
        ({"source": None}, "How it came: must be one of: Email, Card, Letter, Verbal, Survey, Online review."),
        (
            {"consent_scope": "everyone"},
            "Consent: must be one of: No consent recorded, Internal only, CQC and commissioners, Public.",
        ),
        (
            {"attribution": "initials"},
            "Attribution: must be one of: Named person, Role and organisation, Anonymous.",
        ),
        ({"contact_id": None}, "Given by: choose a contact, or type the giver's name or role."),
        (
            {"contact_id": None, "giver_name": "  ", "giver_role": "", "organisation_name": "Leeds GP Federation"},
            "Given by: choose a contact, or type the giver's name or role.",
        ),
        ({"contact_id": "york_contact"}, "Given by: must be a contact of the testimonial's branch."),
        ({"contact_id": 9999}, "Given by: must be a contact of the testimonial's branch."),
        ({"contact_id": "someone"}, "Given by: is not a valid choice."),
        (
            {"contact_id": None, "giver_name": "Gita Green", "organisation_name": "Leeds GP Federation"},
            "Partner type: is required when the organisation is typed in.",
        ),
        (
            {"contact_id": None, "giver_name": "Gita Green", "type_code": "NOPE"},
            "Partner type: “NOPE” is not a partner type.",
        ),
        ({"organisation_id": 9999}, "Organisation: does not exist."),
        ({"statements": ["W6", "X9"]}, "CQC quality statements: X9 is not a quality statement."),
        (
            {"giver_name": "Olive\nOak"},
            "Giver's name: contains a line break or control character; use a single line of text.",
        ),
        ({"branch_id": None}, "Branch: is required."),
    ],
)
def test_invalid_testimonial_is_refused_with_its_message_and_nothing_is_written(world, changes, message):
    """Test that each invalid testimonial is refused with the exact message the user sees and writes nothing."""
    york_contact = world.contact(world.york, "Yusuf York", job_title="Social Worker")
    changes = {k: (york_contact if v == "york_contact" else v) for k, v in changes.items()}
    before = counts(world)

    with pytest.raises(ValidationError) as error:
        add(world, **changes)

    assert str(error.value) == message
    assert counts(world) == before
    assert evidence_files(world) == []


def test_several_problems_are_reported_together(world):
    """Test that several bad fields are reported at once, each with its message, and nothing is written."""
    before = counts(world)

    with pytest.raises(InvalidFields) as error:
        add(world, source="fax", received_on="yesterday", attribution="initials")

    assert [str(e) for e in error.value.errors] == [
        "Received on: “yesterday” is not a date (use YYYY-MM-DD, e.g. 2026-03-31).",
        "How it came: must be one of: Email, Card, Letter, Verbal, Survey, Online review.",
        "Attribution: must be one of: Named person, Role and organisation, Anonymous.",
    ]
    assert counts(world) == before


def test_an_nhs_number_in_the_quote_is_saved_only_once_confirmed(world):
    """Test that a quote holding an NHS number is refused as possible client data, writing nothing, and saved
    as typed once the user confirms it is not one."""
    quote = f"Thank you for caring for Mrs B ({VALID_NHS_NUMBER})."
    before = counts(world)

    with pytest.raises(PossibleClientData) as error:
        add(world, quote=quote)

    assert str(error.value) == NHS_WARNING
    assert counts(world) == before
    testimonial_id = add(world, quote=quote, confirmed=True)
    assert testimonials.get(world.db, world.admin, testimonial_id)["quote"] == quote


def test_a_phone_number_in_the_quote_is_not_taken_for_an_nhs_number(world):
    """Test that a UK phone number in a quote is not mistaken for an NHS number."""
    testimonial_id = add(world, quote="Call us any time on 0113 496 0001, you are brilliant.")

    assert testimonials.get(world.db, world.admin, testimonial_id)["quote"] == (
        "Call us any time on 0113 496 0001, you are brilliant."
    )


def test_interaction_that_does_not_exist_is_refused_and_no_evidence_file_is_left(world):
    """Test that linking a testimonial to an interaction that does not exist is refused as a validation error on
    the Interaction field, with nothing written: no row and no evidence file.

    Regression: testimonials.add() does not check interaction_id, so the insert fails with a raw
    sqlite3.IntegrityError after the evidence file was already stored, leaving an orphan file behind."""
    before = counts(world)

    with pytest.raises(ValidationError) as error:
        add(world, evidence=("thanks.pdf", PDF), interaction_id=9999)

    assert error.value.field == "Interaction"
    assert counts(world) == before
    assert evidence_files(world) == []


def test_interaction_of_another_branch_is_refused(world):
    """Test that a Leeds manager cannot link a Leeds testimonial to an interaction of the Bristol branch.

    Regression: testimonials.add() stores any interaction_id, even one outside the actor's scope."""
    bristol_contact = world.contact(world.bristol, "Brenda Bristol", organisation_id=world.council)
    bristol_call = interactions.log(
        world.db,
        world.admin,
        {
            "branch_id": world.bristol,
            "occurred_on": "2026-02-19",
            "kind_code": "PHONE_CALL",
            "summary": "Call",
            "contact_ids": [bristol_contact],
        },
    )
    before = counts(world)

    with pytest.raises(ValidationError) as error:
        add(world, world.manager_leeds, interaction_id=bristol_call)

    assert error.value.field == "Interaction"
    assert counts(world) == before


# Editing.


def test_update_saves_changes_bumps_the_version_and_audits_the_difference(world):
    """Test that an edit saves the changed fields, replaces the statements, bumps the version, records who and
    when, and audits exactly the columns that changed."""
    testimonial_id = add(world, statements=["W6"], themes="discharge")
    record = testimonials.get(world.db, world.admin, testimonial_id)

    testimonials.update(
        world.db,
        world.manager_leeds,
        testimonial_id,
        {
            **record,
            "quote": "The reablement team and the carers worked as one.",
            "statements": ["E3", "R2"],
            "consent_scope": "public",
            "attribution": "named",
            "consent_given_on": "2026-02-25",
        },
        expected_version=1,
    )

    assert testimonials.get(world.db, world.admin, testimonial_id) == expected(
        world,
        testimonial_id,
        quote="The reablement team and the carers worked as one.",
        themes="discharge",
        statements=["E3", "R2"],
        consent_scope="public",
        attribution="named",
        consent_given_on="2026-02-25",
        updated_by=world.manager_leeds.id,
        version=2,
    )
    [entry] = audit_entries(world, "update")
    assert entry == {
        "username": "manager.leeds",
        "action": "update",
        "table_name": "testimonials",
        "row_id": testimonial_id,
        "changes": {
            "quote": [
                "The carers made the discharge home safe and calm.",
                "The reablement team and the carers worked as one.",
            ],
            "consent_scope": ["none", "public"],
            "attribution": ["anonymous", "named"],
            "consent_given_on": [None, "2026-02-25"],
            "statements": [["W6"], ["E3", "R2"]],
        },
    }


def test_update_without_changes_writes_nothing(world):
    """Test that saving a testimonial unchanged keeps its version and writes no audit entry."""
    testimonial_id = add(world)
    record = testimonials.get(world.db, world.admin, testimonial_id)
    before = counts(world)

    testimonials.update(world.db, world.admin, testimonial_id, record, expected_version=1)

    assert testimonials.get(world.db, world.admin, testimonial_id) == record
    assert counts(world) == before


def test_update_over_someone_elses_change_is_refused(world):
    """Test that saving from a version someone else has since changed is refused and changes nothing."""
    testimonial_id = add(world)
    record = testimonials.get(world.db, world.admin, testimonial_id)
    testimonials.update(world.db, world.admin, testimonial_id, {**record, "themes": "kindness"}, expected_version=1)

    with pytest.raises(Conflict) as error:
        testimonials.update(
            world.db, world.manager_leeds, testimonial_id, {**record, "quote": "Mine."}, expected_version=1
        )

    assert str(error.value) == (
        "This testimonial was changed by someone else while you were editing. "
        "Reload it to see their changes, then make yours again."
    )
    assert testimonials.get(world.db, world.admin, testimonial_id) == expected(
        world, testimonial_id, themes="kindness", version=2
    )


def test_update_with_an_nhs_number_needs_confirming(world):
    """Test that an edit adding an NHS number to the quote is refused until confirmed."""
    testimonial_id = add(world)
    record = testimonials.get(world.db, world.admin, testimonial_id)
    quote = f"Thanks for looking after {VALID_NHS_NUMBER}."

    with pytest.raises(PossibleClientData) as error:
        testimonials.update(world.db, world.admin, testimonial_id, {**record, "quote": quote}, expected_version=1)

    assert str(error.value) == NHS_WARNING
    assert testimonials.get(world.db, world.admin, testimonial_id)["version"] == 1
    testimonials.update(
        world.db, world.admin, testimonial_id, {**record, "quote": quote}, expected_version=1, confirmed=True
    )
    assert testimonials.get(world.db, world.admin, testimonial_id)["quote"] == quote


# Withdrawing consent.


def test_withdraw_consent_is_audited_and_limits_the_quote_to_internal_use(world):
    """Test that withdrawing consent stamps the date, bumps the version, is audited, and from then on only the
    internal audience sees the quote (and the internal export shows the withdrawal)."""
    testimonial_id = with_consent(world, "public", "named")
    assert [found(world, audience=a) for a in AUDIENCES] == [[testimonial_id]] * 3

    testimonials.withdraw_consent(world.db, world.manager_leeds, testimonial_id)

    assert testimonials.get(world.db, world.admin, testimonial_id) == expected(
        world,
        testimonial_id,
        consent_scope="public",
        attribution="named",
        consent_given_on="2026-02-21",
        consent_withdrawn_on="2026-03-02",
        updated_by=world.manager_leeds.id,
        version=2,
    )
    assert audit_entries(world, "withdraw_consent") == [
        {
            "username": "manager.leeds",
            "action": "withdraw_consent",
            "table_name": "testimonials",
            "row_id": testimonial_id,
            "changes": {"consent_withdrawn_on": "2026-03-02"},
        }
    ]
    assert [found(world, audience=a) for a in AUDIENCES] == [[testimonial_id], [], []]
    for audience in ("cqc", "public"):
        content, _ = testimonials.export(
            world.db, world.admin, "csv", audience, provider="Acme Care", scope_label="All branches"
        )
        assert content.decode("utf-8-sig").splitlines()[1:] == [], audience
    content, _ = testimonials.export(
        world.db, world.admin, "csv", "internal", provider="Acme Care", scope_label="All branches"
    )
    assert content.decode("utf-8-sig").splitlines()[1].endswith(",Public,Named person,2026-02-21,2026-03-02")


def test_withdrawing_consent_twice_is_refused(world):
    """Test that withdrawing consent a second time is refused with the exact message and changes nothing."""
    testimonial_id = with_consent(world, "cqc", "role", withdrawn=True)
    before = counts(world)

    with pytest.raises(ValidationError) as error:
        testimonials.withdraw_consent(world.db, world.admin, testimonial_id)

    assert str(error.value) == "Consent: was already withdrawn."
    assert counts(world) == before
    assert testimonials.get(world.db, world.admin, testimonial_id)["consent_withdrawn_on"] == "2026-03-01"


def test_withdrawing_consent_outside_ones_scope_is_not_found(world):
    """Test that a manager of another branch cannot withdraw consent on a Leeds testimonial."""
    testimonial_id = with_consent(world, "public", "named")

    with pytest.raises(NotFound) as error:
        testimonials.withdraw_consent(world.db, world.manager_york, testimonial_id)

    assert str(error.value) == TESTIMONIAL_NOT_FOUND
    assert testimonials.get(world.db, world.admin, testimonial_id)["consent_withdrawn_on"] is None


def test_an_edit_after_withdrawal_keeps_consent_withdrawn(world):
    """Test that editing a testimonial whose consent was withdrawn (even widening its scope) keeps it withdrawn."""
    testimonial_id = with_consent(world, "cqc", "named", withdrawn=True)
    record = testimonials.get(world.db, world.admin, testimonial_id)

    testimonials.update(world.db, world.admin, testimonial_id, {**record, "consent_scope": "public"}, 2)

    assert testimonials.get(world.db, world.admin, testimonial_id)["consent_withdrawn_on"] == "2026-03-01"
    assert [found(world, audience=a) for a in AUDIENCES] == [[testimonial_id], [], []]


# Deleting.


def test_delete_removes_the_testimonial_and_its_statements_and_is_audited(world):
    """Test that deleting removes the row and its statement links, is audited, and the testimonial is then not
    found; the other testimonials stay."""
    kept = add(world, statements=["W6"])
    testimonial_id = add(world, statements=["E3", "S2"])

    testimonials.delete(world.db, world.manager_leeds, testimonial_id)

    with pytest.raises(NotFound) as error:
        testimonials.get(world.db, world.admin, testimonial_id)
    assert str(error.value) == TESTIMONIAL_NOT_FOUND
    assert found(world) == [kept]
    assert [(r["testimonial_id"], r["statement_code"]) for r in world.db["testimonial_statements"].rows] == [
        (kept, "W6")
    ]
    assert audit_entries(world, "delete") == [
        {
            "username": "manager.leeds",
            "action": "delete",
            "table_name": "testimonials",
            "row_id": testimonial_id,
            "changes": {"branch_id": world.leeds},
        }
    ]


def test_delete_outside_ones_scope_is_not_found(world):
    """Test that a manager of another branch cannot delete a Leeds testimonial."""
    testimonial_id = add(world)

    with pytest.raises(NotFound) as error:
        testimonials.delete(world.db, world.manager_bristol, testimonial_id)

    assert str(error.value) == TESTIMONIAL_NOT_FOUND
    assert found(world) == [testimonial_id]


# Full-text search, kept in step by triggers.


def test_search_finds_words_of_the_quote_giver_organisation_and_themes(world):
    """Test that the text search finds a testimonial by a word of its quote (stemmed), giver's name, role,
    organisation and themes, and nothing for a word it does not hold."""
    testimonial_id = add(world, quote="Wonderful reablement, walking again.", themes="mobility")
    other = add(world, contact_id=None, giver_name="Gita Green", type_code="GP_PRACTICE", quote="Prompt and kind.")

    for text, ids in [
        ("reablement", [testimonial_id]),
        ("walk", [testimonial_id]),
        ("WONDERFUL", [testimonial_id]),
        ("Olive", [testimonial_id]),
        ("occupational therapist", [testimonial_id]),
        ("Leeds City Council", [testimonial_id]),
        ("mobility", [testimonial_id]),
        ("gita", [other]),
        ("kind", [other]),
        ("zebra", []),
        ("", [other, testimonial_id]),
        ("   ", [other, testimonial_id]),
    ]:
        assert found(world, text=text) == ids, text


def test_search_stays_correct_after_an_edit(world):
    """Test that after the quote is edited, the old word no longer matches and the new word does."""
    testimonial_id = add(world, quote="Punctual carers every single morning.")
    assert found(world, text="punctual") == [testimonial_id]
    record = testimonials.get(world.db, world.admin, testimonial_id)

    testimonials.update(
        world.db, world.admin, testimonial_id, {**record, "quote": "Reliable carers every single morning."}, 1
    )

    assert found(world, text="punctual") == []
    assert found(world, text="reliable") == [testimonial_id]
    assert found(world, text="morning") == [testimonial_id]


def test_search_stays_correct_after_the_giver_changes(world):
    """Test that after the giver is changed to a typed-in one, the old giver's name no longer matches."""
    testimonial_id = add(world)
    record = testimonials.get(world.db, world.admin, testimonial_id)

    testimonials.update(
        world.db,
        world.admin,
        testimonial_id,
        {
            **record,
            "contact_id": None,
            "organisation_id": None,
            "giver_name": "Gita Green",
            "giver_role": "District Nurse",
            "organisation_name": "Leeds Community Healthcare",
            "type_code": "COMMUNITY_NURSING",
        },
        1,
    )

    assert found(world, text="olive") == []
    assert found(world, text="gita") == [testimonial_id]
    assert found(world, text="healthcare") == [testimonial_id]


def test_search_finds_nothing_after_delete(world):
    """Test that after a testimonial is deleted no search finds it, while the others are still found."""
    testimonial_id = add(world, quote="Superb telephone updates from the ward.")
    other = add(world, quote="Superb handover.")
    assert found(world, text="superb") == [other, testimonial_id]

    testimonials.delete(world.db, world.admin, testimonial_id)

    assert found(world, text="telephone") == []
    assert found(world, text="ward") == []
    assert found(world, text="superb") == [other]
    assert (
        world.db.execute("SELECT rowid FROM testimonials_fts WHERE testimonials_fts MATCH 'telephone'").fetchall() == []
    )


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ('"safe and calm"', True),
        ('"calm safe"', False),
        ("safe AND calm", True),
        ("safe OR nonsense", False),
        ("NOT nonsense", False),
        ("NEAR(safe calm)", False),
        ("safe*", True),
        ("disch*", False),
        ("*", False),
        ("(safe)", True),
        ("(", False),
        (")", False),
        ('"', False),
        ('""', False),
        ('"""', False),
        ('safe "', True),
        ('"safe', True),
        ("quote:safe", False),
        ("^safe", True),
        ("-safe", True),
        ("+calm", True),
        ("safe's", False),
        ("{quote}: safe", False),
    ],
)
def test_search_with_fts_syntax_characters_does_not_raise(world, text, matches):
    """Test that search text holding FTS5 query syntax (quotes, AND/OR/NOT/NEAR, *, parentheses, a lone quote,
    column filters) is searched as plain words and never raises.

    Regression: search text of only double quotes (a lone one, two or three) made testimonials.search() raise
    sqlite3.OperationalError 'fts5: syntax error near ""', because quote_fts() turns it into an empty MATCH
    expression."""
    testimonial_id = add(world)

    assert found(world, text=text) == ([testimonial_id] if matches else [])


# Filters and order.


def test_search_filters_and_order(world):
    """Test that each filter narrows the results (branch, region, partner type, theme, statement, dates, consent
    scope) and that results come newest first, the later-recorded first on the same day."""
    york_contact = world.contact(world.york, "Yusuf York", organisation_id=world.gp, job_title="Practice Manager")
    first = add(world, received_on="2026-01-10", themes="discharge, kindness", statements=["W6"])
    second = add(world, received_on="2026-02-10", themes="kindness", consent_scope="cqc", consent_given_on=TODAY)
    third = add(world, branch_id=world.york, contact_id=york_contact, received_on="2026-02-10", statements=["W6", "E3"])
    fourth = add(
        world,
        branch_id=world.bristol,
        contact_id=None,
        giver_name="Brenda",
        organisation_id=world.council,
        received_on="2026-02-28",
        themes="Discharge",
    )

    assert found(world) == [fourth, third, second, first]
    assert found(world, branch_id=world.leeds) == [second, first]
    assert found(world, region_id=world.north) == [third, second, first]
    assert found(world, region_id=world.south) == [fourth]
    assert found(world, type_code="GP_PRACTICE") == [third]
    assert found(world, type_code="LA_SOCIAL_CARE") == [fourth, second, first]
    assert found(world, theme="discharge") == [fourth, first]
    assert found(world, theme="Kindness") == [second, first]
    assert found(world, theme="kind") == []
    assert found(world, theme="%") == []
    assert found(world, statement="W6") == [third, first]
    assert found(world, statement="E3") == [third]
    assert found(world, since=date(2026, 2, 10)) == [fourth, third, second]
    assert found(world, until=date(2026, 2, 10)) == [third, second, first]
    assert found(world, since=date(2026, 2, 1), until=date(2026, 2, 20)) == [third, second]
    assert found(world, consent_scope="cqc") == [second]
    assert found(world, limit=2) == [fourth, third]


# Evidence files.


def _zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


WRONG_TYPE = "Evidence file: must be a PDF, PNG or JPEG file (checked by its content)."


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("x.pdf", b"Dear team, thank you so much!\n", WRONG_TYPE),
        ("x.pdf", _zip_bytes(), WRONG_TYPE),
        ("card.jpg", b"GIF89a" + bytes(20), WRONG_TYPE),
        ("x.pdf", b"", WRONG_TYPE),
        ("x.pdf", b" %PDF-1.4", WRONG_TYPE),
        ("x.pdf", b"%PDF-" + b"0" * (testimonials.EVIDENCE_MAX_BYTES + 1 - 5), "Evidence file: is larger than 5 MB."),
        (
            "../../etc/passwd.pdf",
            PDF,
            "Evidence file: “../../etc/passwd.pdf” is not an acceptable file name (no folders).",
        ),
        ("..\\evil.pdf", PDF, "Evidence file: “..\\evil.pdf” is not an acceptable file name (no folders)."),
        ("/abs/path.pdf", PDF, "Evidence file: “/abs/path.pdf” is not an acceptable file name (no folders)."),
        ("..", PDF, "Evidence file: “..” is not an acceptable file name (no folders)."),
        ("thanks\n.pdf", PDF, "Evidence file: “thanks\n.pdf” is not an acceptable file name (no folders)."),
        ("", PDF, "Evidence file: “” is not an acceptable file name (no folders)."),
        ("a" * 147 + ".pdf", PDF, "Evidence file: the file name is too long (150 characters at most)."),
    ],
)
def test_bad_evidence_file_is_refused_and_nothing_is_written(world, name, data, message):
    """Test that an evidence file of the wrong type (whatever its name says), too large, or with a name holding
    folders, control characters or too many characters is refused with the exact message: no testimonial row, no
    audit entry, no file in the evidence folder."""
    before = counts(world)

    with pytest.raises(ValidationError) as error:
        add(world, evidence=(name, data))

    assert str(error.value) == message
    assert counts(world) == before
    assert evidence_files(world) == []


@pytest.mark.parametrize(
    ("name", "data", "kind"),
    [
        ("Email from Olive.pdf", PDF, "application/pdf"),
        ("card photo.png", PNG, "image/png"),
        ("card.JPG", JPEG, "image/jpeg"),
        ("big.pdf", b"%PDF-" + b"0" * (testimonials.EVIDENCE_MAX_BYTES - 5), "application/pdf"),
        ("thanks.txt", PDF, "application/pdf"),
    ],
)
def test_good_evidence_file_is_stored_under_its_hash_and_read_back(world, name, data, kind):
    """Test that a PDF, PNG or JPEG (recognised by content, up to the size limit) is stored in the database's
    "<stem>-evidence" folder under its sha256, never under the user's name, and read back by evidence()."""
    digest = hashlib.sha256(data).hexdigest()

    testimonial_id = add(world, world.manager_leeds, evidence=(f"  {name} ", data))

    assert evidence_files(world) == [digest]
    assert (evidence_dir(world) / digest).read_bytes() == data
    record = testimonials.get(world.db, world.admin, testimonial_id)
    assert (record["evidence_file"], record["evidence_name"], record["evidence_type"]) == (digest, name, kind)
    assert testimonials.evidence(world.db, world.manager_leeds, testimonial_id) == (name, kind, data)
    assert audit_entries(world, "create")[-1]["changes"]["evidence_file"] == digest


def test_evidence_outside_ones_scope_or_missing_is_not_found(world):
    """Test that another branch's manager cannot read a testimonial's evidence, and that a testimonial without
    evidence says so."""
    with_file = add(world, evidence=("thanks.pdf", PDF))
    without = add(world)

    with pytest.raises(NotFound) as error:
        testimonials.evidence(world.db, world.manager_york, with_file)
    assert str(error.value) == TESTIMONIAL_NOT_FOUND
    with pytest.raises(NotFound) as error:
        testimonials.evidence(world.db, world.admin, without)
    assert str(error.value) == "This testimonial has no evidence file."


def test_an_evidence_file_shared_by_two_testimonials_is_kept_until_the_last_goes(world):
    """Test that the same evidence uploaded twice is stored once, and deleting one testimonial keeps the file
    for the other; deleting the second removes it."""
    first = add(world, evidence=("a.pdf", PDF))
    second = add(world, evidence=("b.pdf", PDF))
    digest = hashlib.sha256(PDF).hexdigest()

    testimonials.delete(world.db, world.admin, first)

    assert evidence_files(world) == [digest]
    assert testimonials.evidence(world.db, world.admin, second) == ("b.pdf", "application/pdf", PDF)
    testimonials.delete(world.db, world.admin, second)
    assert evidence_files(world) == []


def test_evidence_is_not_stored_when_the_branch_is_outside_scope(world):
    """Test that a manager recording a testimonial (with evidence) for another branch is refused and no file is
    written."""
    with pytest.raises(NotFound) as error:
        add(world, world.manager_york, evidence=("thanks.pdf", PDF), contact_id=None, giver_name="Someone")

    assert str(error.value) == BRANCH_NOT_FOUND
    assert evidence_files(world) == []
    assert world.db["testimonials"].count == 0


# Scope: every actor against every branch.


def one_per_branch(world: World) -> dict[str, int]:
    """A testimonial in each branch, given by a typed-in giver, each with its own word to search for."""
    return {
        branch: add(
            world,
            branch_id=getattr(world, branch),
            contact_id=None,
            giver_name=f"Giver {branch}",
            organisation_id=world.gp,
            quote=f"Thank you from the {branch} practice, wonderful.",
        )
        for branch in BRANCHES
    }


@pytest.mark.parametrize("branch", BRANCHES)
@pytest.mark.parametrize("who", ACTORS)
def test_add_is_allowed_only_within_scope(world, who, branch):
    """Test that an actor can record a testimonial for a branch in their scope, and that for any other branch it
    is not found (nothing written)."""
    actor = getattr(world, who)
    values = {
        "branch_id": getattr(world, branch),
        "contact_id": None,
        "giver_name": "Gita",
        "organisation_id": world.gp,
    }

    if branch in IN_SCOPE[who]:
        testimonial_id = add(world, actor, **values)
        assert testimonials.get(world.db, actor, testimonial_id)["branch_id"] == getattr(world, branch)
    else:
        with pytest.raises(NotFound) as error:
            add(world, actor, **values)
        assert str(error.value) == BRANCH_NOT_FOUND
        assert world.db["testimonials"].count == 0


@pytest.mark.parametrize("branch", BRANCHES)
@pytest.mark.parametrize("who", ACTORS)
def test_get_and_search_see_only_testimonials_in_scope(world, who, branch):
    """Test that get() returns a branch's testimonial only to actors whose scope holds the branch, and that search
    (all of it, by branch filter, and by text) returns only in-scope testimonials."""
    actor = getattr(world, who)
    ids = one_per_branch(world)
    testimonial_id = ids[branch]
    in_scope = branch in IN_SCOPE[who]

    if in_scope:
        assert testimonials.get(world.db, actor, testimonial_id)["branch"] == branch.capitalize()
    else:
        with pytest.raises(NotFound) as error:
            testimonials.get(world.db, actor, testimonial_id)
        assert str(error.value) == TESTIMONIAL_NOT_FOUND
    assert found(world, actor, branch_id=getattr(world, branch)) == ([testimonial_id] if in_scope else [])
    assert found(world, actor, text=branch) == ([testimonial_id] if in_scope else [])
    assert sorted(found(world, actor)) == sorted(ids[b] for b in IN_SCOPE[who])
    assert found(world, actor, text="wonderful", region_id=world.south) == (
        [ids["bristol"]] if "bristol" in IN_SCOPE[who] else []
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"quote": "Thank you s\ufffeo much"}, "Quote: character 12 (U+FFFE) is not allowed."),
        ({"giver_name": "Olive \uffff"}, "Giver's name: character 7 (U+FFFF) is not allowed."),
        ({"themes": "discharge, \ufdd0kind"}, "Themes: character 12 (U+FDD0) is not allowed."),
    ],
)
def test_characters_xml_cannot_hold_are_refused_on_entry_and_nothing_is_written(world, changes, message):
    """Test that a testimonial holding a Unicode non-character is refused, naming the field and the character.
    Regression: a quote with U+FFFE was accepted and then broke every Word and Excel export."""
    before = counts(world)

    with pytest.raises(ValidationError) as error:
        add(world, **changes)

    assert str(error.value) == message
    assert counts(world) == before


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"received_on": "9999-12-31"}, "Received on: cannot be in the future."),
        (
            {"received_on": "0001-01-01"},
            "Received on: 0001-01-01 is before 1990-01-01, the earliest date accepted; check the year.",
        ),
        (
            {"consent_scope": "public", "attribution": "named", "consent_given_on": "0001-01-01"},
            "Consent given on: 0001-01-01 is before 1990-01-01, the earliest date accepted; check the year.",
        ),
        (
            {"consent_scope": "public", "attribution": "named", "consent_given_on": "9999-12-31"},
            "Consent given on: cannot be in the future.",
        ),
        (
            {"consent_scope": "public", "attribution": "named", "consent_given_on": "2026-03-03"},
            "Consent given on: cannot be in the future.",
        ),
    ],
)
def test_implausible_received_and_consent_dates_are_refused(world, changes, message):
    """Test that when a testimonial was received and when consent was given must be plausible past dates.
    Regression: consent given in year 1 or 9999 was accepted."""
    before = counts(world)

    with pytest.raises(ValidationError) as error:
        add(world, **changes)

    assert str(error.value) == message
    assert counts(world) == before


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("thanks\ufffe.pdf", "Evidence file: character 7 (U+FFFE) is not allowed."),
        ("thanks\ud800.pdf", "Evidence file: character 7 (U+D800) is not allowed."),
    ],
)
def test_an_evidence_file_name_holding_a_non_character_is_refused(world, name, message):
    """Test that an evidence file whose name holds a non-character or a lone surrogate (which SQLite cannot even
    store) is refused with a message, and nothing is written."""
    before = counts(world)

    with pytest.raises(ValidationError) as error:
        add(world, evidence=(name, PDF))

    assert str(error.value) == message
    assert counts(world) == before
    assert evidence_files(world) == []
