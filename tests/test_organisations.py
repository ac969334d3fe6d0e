"""The shared directory of partner organisations: adding, cleaning, uniqueness, who may edit, search."""

import sqlite3
from datetime import UTC, datetime

import pytest

from crm import audit, clock, organisations, schema
from crm.errors import AlreadyExists, Conflict, InvalidFields, NotFound, PermissionDenied, ValidationError
from tests.conftest import World, copy_world

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
STAMP = "2026-03-02T10:30:00Z"
NOT_VALID = "is not a valid phone number (check the number of digits and the area code)."


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """A copy of the template world on its own file, with the clock stopped at FROZEN."""
    path, built = template
    target = tmp_path / "crm.db"
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, target)
    yield scene
    scene.db.close()


def _project(record: dict, expected: dict) -> dict:
    """The fields of ``record`` that ``expected`` names (columns added by later features are not this test's)."""
    return {key: record[key] for key in expected}


def _counts(world: World) -> tuple[int, int]:
    return world.db.table("organisations").count, world.db.table("audit_log").count


FULL = {
    "name": " Woodhouse Medical Practice ",
    "type_code": "GP_PRACTICE",
    "address": "3 Woodhouse Street, Leeds",
    "postcode": "ls6 2ab",
    "phone": "0113 496 0001 ext. 12",
    "email": "Reception@Woodhouse.Example",
    "website": "woodhouse.example",
    "ods_code": " b86001 ",
}


def test_add_and_get_whole_record(world):
    """Test that an organisation is stored cleaned and read back whole, with its type label and display phone."""
    org_id = organisations.add(world.db, world.manager_leeds, FULL)

    expected = {
        "id": org_id,
        "name": "Woodhouse Medical Practice",
        "type_code": "GP_PRACTICE",
        "type_label": "GP practice",
        "address": "3 Woodhouse Street, Leeds",
        "postcode": "LS6 2AB",
        "phone": "+441134960001",
        "phone_ext": "12",
        "phone_display": "0113 496 0001 ext. 12",
        "email": "Reception@woodhouse.example",
        "website": "https://woodhouse.example",
        "ods_code": "B86001",
        "created_at": STAMP,
        "created_by": world.manager_leeds.id,
        "updated_at": STAMP,
        "version": 1,
    }
    assert _project(organisations.get(world.db, org_id), expected) == expected
    [entry] = audit.entries(world.db, "organisations", org_id)
    assert (entry["action"], entry["username"], entry["at"]) == ("create", "manager.leeds", STAMP)
    assert entry["changes"] == {
        "name": "Woodhouse Medical Practice",
        "type_code": "GP_PRACTICE",
        "address": "3 Woodhouse Street, Leeds",
        "postcode": "LS6 2AB",
        "phone": "+441134960001",
        "phone_ext": "12",
        "email": "Reception@woodhouse.example",
        "website": "https://woodhouse.example",
        "ods_code": "B86001",
    }


def test_add_minimal(world):
    """Test that a name and a type are enough; the other fields are empty."""
    org_id = organisations.add(world.db, world.admin, {"name": "Age UK Leeds", "type_code": "VOLUNTARY_COMMUNITY"})

    record = organisations.get(world.db, org_id)
    assert {k: record[k] for k in ("address", "postcode", "phone", "phone_ext", "email", "website", "ods_code")} == {
        "address": "",
        "postcode": "",
        "phone": None,
        "phone_ext": None,
        "email": None,
        "website": "",
        "ods_code": None,
    }
    assert record["phone_display"] == ""


def test_types_in_display_order(world):
    """Test that the partner types are the reference list from DOMAIN.md, in display order."""
    assert [(t["code"], t["label"]) for t in organisations.types(world.db)] == schema.ORGANISATION_TYPES
    assert organisations.type_labels(world.db)["LA_SOCIAL_CARE"] == "Council adult social care"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"name": ""}, "Organisation name: is required."),
        ({"name": "N" * 201}, "Organisation name: is too long (201 characters; the limit is 200)."),
        ({"type_code": ""}, "Partner type: is required."),
        ({"type_code": "gp_practice"}, "Partner type: “gp_practice” is not a known partner type."),
        ({"type_code": "HOSPITALS"}, "Partner type: “HOSPITALS” is not a known partner type."),
        ({"address": "A" * 301}, "Address: is too long (301 characters; the limit is 300)."),
        (
            {"address": "1 High St\nLeeds"},
            "Address: contains a line break or control character; use a single line of text.",
        ),
        ({"postcode": "LS6"}, "Postcode: “LS6” is not a UK postcode (for example LS6 2AB)."),
        ({"phone": "0113 496"}, f"Main phone: “0113 496” {NOT_VALID}"),
        (
            {"email": "reception"},
            "Email: “reception” is not a valid email address. An email address must have an @-sign.",
        ),
        (
            {"website": "ftp://woodhouse.example"},
            "Website: “ftp://woodhouse.example” is not a web address (for example https://example.nhs.uk).",
        ),
        ({"ods_code": "B8-6001"}, "ODS code: “B8-6001” is not an ODS code (3 to 10 letters and digits, e.g. B86001)."),
        ({"ods_code": "B8"}, "ODS code: “B8” is not an ODS code (3 to 10 letters and digits, e.g. B86001)."),
        (
            {"ods_code": "B860010000X"},
            "ODS code: “B860010000X” is not an ODS code (3 to 10 letters and digits, e.g. B86001).",
        ),
    ],
)
def test_add_refused_field(world, changes, message):
    """Test that a refused field gives the exact message and writes nothing."""
    before = _counts(world)

    with pytest.raises(ValidationError) as caught:
        organisations.add(world.db, world.admin, {**FULL, **changes})

    assert str(caught.value) == message
    assert _counts(world) == before


@pytest.mark.parametrize("website", ["javascript:alert(1)", "JAVASCRIPT:void(0)", "data:text/html,hi", "vbscript:x"])
def test_website_refuses_scripts(world, website):
    """Test that a javascript: or data: address is never stored as an organisation's website."""
    with pytest.raises(ValidationError) as caught:
        organisations.add(world.db, world.admin, {**FULL, "website": website})

    assert caught.value.field == "Website"
    assert world.db.execute("SELECT count(*) FROM organisations WHERE website LIKE '%script%'").fetchone()[0] == 0


def test_add_refuses_several_fields_at_once(world):
    """Test that every refused field is reported together, in form order."""
    with pytest.raises(InvalidFields) as caught:
        organisations.add(world.db, world.admin, {"name": "", "type_code": "NOPE", "postcode": "x", "ods_code": "!"})

    assert [str(e) for e in caught.value.errors] == [
        "Organisation name: is required.",
        "Partner type: “NOPE” is not a known partner type.",
        "Postcode: “X” is not a UK postcode (for example LS6 2AB).",
        "ODS code: “!” is not an ODS code (3 to 10 letters and digits, e.g. B86001).",
    ]


def test_ods_code_unique(world):
    """Test that an ODS code belongs to one organisation only, whatever the case it is typed in."""
    organisations.add(world.db, world.admin, FULL)
    before = _counts(world)

    with pytest.raises(AlreadyExists) as caught:
        organisations.add(world.db, world.admin, {"name": "Another", "type_code": "GP_PRACTICE", "ods_code": "b86001"})

    assert str(caught.value) == "ODS code B86001 already belongs to “Woodhouse Medical Practice”."
    assert _counts(world) == before


def test_ods_code_unique_on_update(world):
    """Test that an edit cannot take another organisation's ODS code."""
    organisations.add(world.db, world.admin, FULL)
    saved = organisations.get(world.db, world.gp)

    with pytest.raises(AlreadyExists) as caught:
        organisations.update(
            world.db,
            world.admin,
            world.gp,
            {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE", "ods_code": "B86001"},
            1,
        )

    assert str(caught.value) == "ODS code B86001 already belongs to “Woodhouse Medical Practice”."
    assert organisations.get(world.db, world.gp) == saved


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"name": "HYDE PARK SURGERY", "type_code": "GP_PRACTICE", "postcode": "ls61aa"},
            "“HYDE PARK SURGERY” at LS6 1AA is already in the directory; pick it from the list instead.",
        ),
        (
            {"name": "leeds community ot", "type_code": "COMMUNITY_THERAPY"},
            "“leeds community ot” is already in the directory; pick it from the list instead.",
        ),
    ],
)
def test_duplicate_name_postcode_type_refused(world, values, message):
    """Test that the same name, postcode and type is refused as already in the directory."""
    before = _counts(world)

    with pytest.raises(AlreadyExists) as caught:
        organisations.add(world.db, world.manager_york, values)

    assert str(caught.value) == message
    assert _counts(world) == before


@pytest.mark.parametrize(
    "values",
    [
        {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE", "postcode": "LS6 1AB"},
        {"name": "Hyde Park Surgery", "type_code": "PHARMACY", "postcode": "LS6 1AA"},
        {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE"},
    ],
)
def test_same_name_elsewhere_allowed(world, values):
    """Test that a namesake at another postcode, or of another type, is a different organisation."""
    org_id = organisations.add(world.db, world.admin, values)

    assert organisations.get(world.db, org_id)["name"] == "Hyde Park Surgery"


@pytest.mark.parametrize(
    ("role", "creator", "allowed"),
    [
        ("admin", "admin", True),
        ("lead_north", "admin", True),
        ("lead_south", "manager_leeds", True),
        ("manager_leeds", "admin", False),
        ("manager_leeds", "manager_leeds", True),
        ("manager_york", "manager_leeds", False),
        ("manager_bristol", "lead_south", False),
    ],
)
def test_who_may_edit(world, role, creator, allowed):
    """Test that administrators and regional leads edit any organisation, branch managers only those they added."""
    editor, author = getattr(world, role), getattr(world, creator)
    org_id = organisations.add(world.db, author, {"name": "Leeds Carers' Centre", "type_code": "VOLUNTARY_COMMUNITY"})
    saved = organisations.get(world.db, org_id)
    changed = {"name": "Carers Leeds", "type_code": "VOLUNTARY_COMMUNITY", "website": "carersleeds.example"}

    assert organisations.can_edit(editor, saved) is allowed
    if allowed:
        organisations.update(world.db, editor, org_id, changed, expected_version=1)
        record = organisations.get(world.db, org_id)
        assert (record["name"], record["website"], record["version"]) == (
            "Carers Leeds",
            "https://carersleeds.example",
            2,
        )
    else:
        with pytest.raises(PermissionDenied) as caught:
            organisations.update(world.db, editor, org_id, changed, expected_version=1)
        assert str(caught.value) == "Only administrators and regional leads can edit this organisation."
        assert organisations.get(world.db, org_id) == saved


def test_update_whole_record_and_audit(world):
    """Test that an edit stores the cleaned values, bumps the version and logs old and new values."""
    organisations.update(world.db, world.lead_north, world.gp, {**FULL, "name": "Hyde Park Surgery"}, 1)

    expected = {
        "id": world.gp,
        "name": "Hyde Park Surgery",
        "type_code": "GP_PRACTICE",
        "type_label": "GP practice",
        "address": "3 Woodhouse Street, Leeds",
        "postcode": "LS6 2AB",
        "phone": "+441134960001",
        "phone_ext": "12",
        "phone_display": "0113 496 0001 ext. 12",
        "email": "Reception@woodhouse.example",
        "website": "https://woodhouse.example",
        "ods_code": "B86001",
        "updated_at": STAMP,
        "version": 2,
    }
    assert _project(organisations.get(world.db, world.gp), expected) == expected
    [entry] = [e for e in audit.entries(world.db, "organisations", world.gp) if e["action"] == "update"]
    assert (entry["username"], entry["changes"]) == (
        "lead.north",
        {
            "address": ["", "3 Woodhouse Street, Leeds"],
            "postcode": ["LS6 1AA", "LS6 2AB"],
            "phone_ext": [None, "12"],
            "email": [None, "Reception@woodhouse.example"],
            "website": ["", "https://woodhouse.example"],
            "ods_code": [None, "B86001"],
        },
    )


def test_update_without_changes_writes_nothing(world):
    """Test that saving an unchanged organisation neither bumps its version nor logs anything, and says so
    (False), so the page can say "No changes to save." (issue 10, defect 6); a change says True."""
    saved = organisations.get(world.db, world.gp)
    before = _counts(world)

    assert organisations.update(world.db, world.admin, world.gp, {**saved, "phone": saved["phone_display"]}, 1) is False

    assert organisations.get(world.db, world.gp) == saved
    assert _counts(world) == before


def test_update_conflict(world):
    """Test that saving over someone else's newer edit is refused with the exact message, changing nothing."""
    values = {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE", "postcode": "LS6 1AA"}
    organisations.update(world.db, world.lead_north, world.gp, {**values, "address": "Woodsley Road"}, 1)
    saved = organisations.get(world.db, world.gp)
    before = _counts(world)

    with pytest.raises(Conflict) as caught:
        organisations.update(world.db, world.admin, world.gp, {**values, "address": "Other Road"}, 1)

    assert str(caught.value) == (
        "“Hyde Park Surgery” was changed by someone else while you were editing. "
        "Reload it to see their changes, then make yours again."
    )
    assert organisations.get(world.db, world.gp) == saved
    assert _counts(world) == before


def test_failed_write_leaves_nothing(world, monkeypatch):
    """Test that an organisation is not saved when its audit entry cannot be written."""
    before = _counts(world)

    def broken(*args, **kwargs):
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(sqlite3.OperationalError):
        organisations.add(world.db, world.admin, FULL)

    assert _counts(world) == before


def test_get_missing(world):
    """Test that an organisation that does not exist is NotFound."""
    with pytest.raises(NotFound) as caught:
        organisations.get(world.db, 999)

    assert str(caught.value) == "That organisation does not exist."


@pytest.fixture
def directory(world) -> None:
    for values in [
        {"name": "100% Care Agency", "type_code": "OTHER"},
        {"name": "100 Care Agency", "type_code": "OTHER"},
        {"name": "St_Clare Hospice", "type_code": "HOSPICE", "postcode": "LS1 3AB"},
        {"name": "StXClare Hospice", "type_code": "HOSPICE"},
        {"name": "Leeds North PCN", "type_code": "PCN", "ods_code": "U12345"},
        {"name": "The Leeds Teaching Hospitals", "type_code": "HOSPITAL_DISCHARGE"},
    ]:
        organisations.add(world.db, world.admin, values)


@pytest.mark.parametrize(
    ("query", "type_code", "expected"),
    [
        ("%", None, ["100% Care Agency"]),
        ("_", None, ["St_Clare Hospice"]),
        ("100", None, ["100 Care Agency", "100% Care Agency"]),
        ("care agency", "OTHER", ["100 Care Agency", "100% Care Agency"]),
        ("LS1 3", None, ["St_Clare Hospice"]),
        ("ls6", None, ["Hyde Park Surgery"]),
        ("u123", None, ["Leeds North PCN"]),
        # Names starting with the query come first, then the rest alphabetically.
        ("leeds", None, ["Leeds Community OT", "Leeds North PCN", "The Leeds Teaching Hospitals"]),
        ("", "HOSPICE", ["St_Clare Hospice", "StXClare Hospice"]),
        ("nowhere", None, []),
    ],
)
def test_search(world, directory, query, type_code, expected):
    """Test that search matches name, postcode and ODS code, takes % and _ literally, and ranks prefixes first."""
    assert [o["name"] for o in organisations.search(world.db, query, type_code)] == expected


def test_search_rows_have_display_phone(world):
    """Test that search rows carry the phone as people write it."""
    [row] = organisations.search(world.db, "Hyde Park")

    assert (row["id"], row["phone"], row["phone_display"], row["type_label"]) == (
        world.gp,
        "+441134960001",
        "0113 496 0001",
        "GP practice",
    )


def test_search_limit(world, directory):
    """Test that search returns at most ``limit`` rows."""
    assert len(organisations.search(world.db, "", limit=3)) == 3


@pytest.fixture
def partners(world) -> dict[str, int]:
    """Organisations named the ways people abbreviate them, and some that only look like an abbreviation."""
    ids = {}
    for values in [
        {"name": "Leeds Occupational Therapy Service", "type_code": "COMMUNITY_THERAPY", "postcode": "LS2 9JT"},
        {"name": "York Reablement Team", "type_code": "COMMUNITY_THERAPY", "postcode": "YO1 7HH"},
        {"name": "Scott Hall Surgery", "type_code": "GP_PRACTICE", "postcode": "LS7 3DR", "ods_code": "B86099"},
        {"name": "Otley Road Medical Practice", "type_code": "GP_PRACTICE", "postcode": "YO24 1AB"},
        {"name": "Other Leeds Agency", "type_code": "OTHER"},
        {"name": "Leeds Hospital Social Work Team", "type_code": "LA_SOCIAL_CARE", "postcode": "LS9 7TF"},
        {"name": "Leeds District Nurses (North)", "type_code": "COMMUNITY_NURSING"},
        {"name": "Leeds North PCN", "type_code": "PCN", "ods_code": "U12345"},
        {"name": "West Yorkshire ICB", "type_code": "ICB"},
        {"name": "Continuing Healthcare Team", "type_code": "ICB"},
    ]:
        ids[values["name"]] = organisations.add(world.db, world.admin, values)
    return ids


LEEDS_THERAPY = ["Leeds Community OT", "Leeds Occupational Therapy Service"]
ALL_THERAPY = [*LEEDS_THERAPY, "York Reablement Team"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        # Regression (issue 10): "OT", "Leeds OT" and "occupational therapy leeds" found nothing.
        ("OT", ALL_THERAPY),
        ("ot", ALL_THERAPY),
        ("Leeds OT", LEEDS_THERAPY),
        ("OT leeds", LEEDS_THERAPY),
        ("occupational therapy leeds", LEEDS_THERAPY),
        ("Occupational", ALL_THERAPY),
        ("community therapy", ALL_THERAPY),
        ("reablement york", ["York Reablement Team"]),
        ("SW", ["Bristol Council Adult Social Care", "Leeds Hospital Social Work Team"]),
        ("leeds social work", ["Leeds Hospital Social Work Team"]),
        ("DN", ["Leeds District Nurses (North)"]),
        ("district nurse", ["Leeds District Nurses (North)"]),
        ("GP", ["Hyde Park Surgery", "Otley Road Medical Practice", "Scott Hall Surgery"]),
        ("GP LS6", ["Hyde Park Surgery"]),
        ("ls7 gp practice", ["Scott Hall Surgery"]),
        ("surgery hyde", ["Hyde Park Surgery"]),
        ("b86099", ["Scott Hall Surgery"]),
        ("PCN", ["Leeds North PCN"]),
        ("primary care network", ["Leeds North PCN"]),
        ("ICB", ["Continuing Healthcare Team", "West Yorkshire ICB"]),
        ("CHC", ["Continuing Healthcare Team", "West Yorkshire ICB"]),
        ("continuing healthcare", ["Continuing Healthcare Team", "West Yorkshire ICB"]),
        ("hospice", []),
        ("other", ["Other Leeds Agency"]),
        ("leeds nowhere", []),
    ],
)
def test_search_matches_every_word_and_abbreviations(world, partners, query, expected):
    """Test that search matches every word in any order across name, postcode, ODS code and partner type,
    understands OT, SW, DN, GP, PCN, ICB and CHC and the phrases they stand for, and that an abbreviation is a
    whole word ("OT" finds no "Scott", "Otley" or "Other")."""
    assert sorted(o["name"] for o in organisations.search(world.db, query)) == expected


def test_search_lists_the_users_own_patch_first(world, partners):
    """Test that a branch manager's search lists first the organisations where their branch has contacts or
    that are GP practices in their branch's GP patch, then the rest by name; an administrator's is by name."""
    world.contact(world.york, "Yvonne Reable", partners["York Reablement Team"])
    world.db.execute(
        "INSERT INTO branch_patch (branch_id, kind, value) VALUES (?, 'postcode_district', 'YO24')", [world.york]
    )
    york = world.manager_york

    assert [o["name"] for o in organisations.search(world.db, "OT", actor=york)] == [
        "York Reablement Team",
        "Leeds Community OT",
        "Leeds Occupational Therapy Service",
    ]
    assert [o["name"] for o in organisations.search(world.db, "GP", actor=york)] == [
        "Otley Road Medical Practice",
        "Hyde Park Surgery",
        "Scott Hall Surgery",
    ]
    assert [o["name"] for o in organisations.search(world.db, "GP", actor=world.admin)] == [
        "Hyde Park Surgery",
        "Otley Road Medical Practice",
        "Scott Hall Surgery",
    ]


def test_search_with_nothing_typed_lists_the_patch_then_the_directory_by_name_up_to_the_limit(world, partners):
    """Test that with nothing typed (a list's first view) a branch manager sees their patch's organisations by name,
    then the rest of the directory by name, marked as in the patch or not, cut at the limit; an administrator sees
    the directory by name."""
    world.contact(world.york, "Yvonne Reable", partners["York Reablement Team"])
    world.contact(world.york, "Otto Ley", partners["Otley Road Medical Practice"])
    everyone = sorted(
        (o["name"] for o in organisations.search(world.db, "", limit=1000, actor=world.admin)), key=str.lower
    )
    york = world.manager_york

    found = organisations.search(world.db, "", limit=4, actor=york)
    rest = [name for name in everyone if name not in ("Otley Road Medical Practice", "York Reablement Team")]
    assert [(o["name"], o["in_patch"]) for o in found] == [
        ("Otley Road Medical Practice", 1),
        ("York Reablement Team", 1),
        (rest[0], 0),
        (rest[1], 0),
    ]
    assert [o["name"] for o in organisations.search(world.db, "", limit=1, actor=york)] == [
        "Otley Road Medical Practice"
    ]
    assert [o["name"] for o in organisations.search(world.db, "", limit=4, actor=world.admin)] == everyone[:4]


@pytest.mark.parametrize("query", ["", "leeds", "team"])
def test_search_pages_follow_on_from_one_another_and_count_gives_their_total(world, partners, query):
    """Test that pages of a search (limit and offset), for a branch manager with a patch and for an
    administrator, are the one long list cut into pieces, across the end of the patch too; and that count gives
    the length of that list."""
    world.contact(world.york, "Yvonne Reable", partners["York Reablement Team"])
    world.contact(world.york, "Otto Ley", partners["Otley Road Medical Practice"])
    world.contact(world.york, "Sam Hall", partners["Scott Hall Surgery"])
    for actor in (world.manager_york, world.admin):
        whole = [o["name"] for o in organisations.search(world.db, query, limit=1000, actor=actor)]
        assert len(whole) >= 3
        pages = [
            [o["name"] for o in organisations.search(world.db, query, limit=2, actor=actor, offset=offset)]
            for offset in range(0, len(whole) + 2, 2)
        ]
        assert [name for page in pages for name in page] == whole
        assert pages[-1] == []
        assert organisations.count(world.db, query) == len(whole)
    assert organisations.count(world.db, "GP", "GP_PRACTICE") == 3
    assert organisations.count(world.db, "leeds nowhere") == 0


def test_update_type_says_whether_anything_changed(world):
    """Test that saving a partner type unchanged writes nothing and returns False, and a change returns True."""
    before = _counts(world)

    assert organisations.update_type(world.db, world.admin, "HOSPICE", "Hospice", 90) is False
    assert _counts(world) == before
    assert organisations.update_type(world.db, world.admin, "HOSPICE", "Hospices", 60) is True
    assert organisations.type_labels(world.db)["HOSPICE"] == "Hospices"
