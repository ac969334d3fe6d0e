"""Page tests (Streamlit AppTest) for bringing in existing data: Import contacts, GP directory import, the GP
patch form on Regions and branches, and the GP patch page. Each test signs in through app.py and checks both the
screen and the database."""

import copy
import csv
import io
import sqlite3
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from crm import db, directory
from tests.conftest import PASSWORD, World
from tests.pagehelpers import button, fill, run_app_on, submit_sign_in, values

ROOT = Path(__file__).resolve().parents[1]
NO_PATCH = "GP patch coverage: no patch set (an administrator sets it under Regions and branches)"


@pytest.fixture(autouse=True)
def app_env(monkeypatch, db_path):
    """Every test's app runs on the test's own database file, with Streamlit's folder-based page mode off (as
    tests/test_pages.py explains: AppTest would otherwise run pages/<page>.py without app.py after a rerun)."""
    run_app_on(monkeypatch, db_path, without_cookies=False)


@pytest.fixture
def world(template, db_path) -> World:
    """A copy of the template world at the path the app reads (CRM_DB)."""
    path, built = template
    with sqlite3.connect(path) as source, sqlite3.connect(db_path) as target:
        source.backup(target)
    source.close()
    target.close()
    scene = copy.copy(built)
    scene.db = db.connect(db_path)
    yield scene
    scene.db.close()


def open_page(username: str, page: str) -> AppTest:
    """A new tab on app.py, signed in as ``username``, switched to ``page``."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60).run()
    submit_sign_in(at, username, PASSWORD)
    assert not at.exception, at.exception
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def table(at: AppTest, index: int = 0) -> list[dict]:
    return at.dataframe[index].value.to_dict("records")


def to_csv(rows: list[list], **options) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n", **options).writerows(rows)
    return out.getvalue()


def epraccur_row(code: str, name: str, postcode: str, status: str = "A", phone: str = "") -> list[str]:
    row = [""] * 27
    row[0], row[1], row[4], row[9], row[10], row[12], row[14], row[17], row[25] = (
        code,
        name,
        "1 CHAPEL ROAD",
        postcode,
        "19740401",
        status,
        "15F",
        phone,
        "4",
    )
    return row


# Three practices in LS7 (the world's own Hyde Park Surgery is in LS6): two active, one closed.
EPRACCUR = to_csv(
    [
        epraccur_row("Y00001", "CHAPEL ALLERTON SURGERY", "LS7 4AB", phone="0113 496 0001"),
        epraccur_row("Y00002", "HAREHILLS PRACTICE", "LS7 3EF", phone="0113 496"),
        epraccur_row("Y00003", "POTTERNEWTON PRACTICE", "LS7 2ZZ", status="C"),
    ],
    quoting=csv.QUOTE_ALL,
).encode("utf-8")


# ---------------------------------------------------------------------------------------------------- import contacts

CONTACTS = [
    ["Name", "Job title", "Telephone", "Email", "Practice"],
    ["Zoë Ångström", "Practice Manager", "0113 496 0101", "zoe@hydepark.example", "Hyde Park Surgery"],
    ["Siân O'Brien", "Occupational Therapist", "01134960102", "sian@ot.example", "Leeds Community OT"],
    ["Bad Email", "", "", "bad@", "Hyde Park Surgery"],
    ["Zoe Angstrom", "", "", "ZOE@hydepark.example", "Hyde Park Surgery"],
]
PREVIEW = (
    "4 rows: **2 to import**, 0 to update, 1 to skip, **1 with problems** (not imported; fix them in the file and "
    "upload it again)."
)
BAD_EMAIL = "Email: “bad@” is not a valid email address. There must be something after the @-sign."


def test_the_import_page_renders_for_a_branch_manager(world):
    """Test that a branch manager's Import contacts page shows its title and the uploader, and no branch picker
    (a branch manager imports into their own branch only)."""
    at = open_page("manager.leeds", "pages/import_contacts.py")

    assert values(at.title) == ["Import contacts"]
    assert [(u.label, u.key, u.allowed_type) for u in at.file_uploader] == [
        ("Spreadsheet", "import_file", [".csv", ".xlsx", ".txt", ".tsv"])
    ]
    assert [s.label for s in at.selectbox] == []
    assert not at.error


def test_an_administrator_picks_the_branch_to_import_into(world):
    """Test that an administrator chooses the branch, from every branch."""
    at = open_page("ada", "pages/import_contacts.py")

    picker = at.selectbox(key="import_branch")
    assert (picker.label, picker.options, picker.value) == (
        "Import into branch",
        ["Leeds", "York", "Bristol"],
        world.leeds,
    )


def test_a_branch_manager_previews_and_imports_a_spreadsheet(world):
    """Test the whole flow: upload a Windows-1252 CSV, see the guessed columns and the row-by-row preview, press
    Import, and find the contacts in the branch, with the report offered for download."""
    at = open_page("manager.leeds", "pages/import_contacts.py")
    at.file_uploader(key="import_file").upload("contacts.csv", to_csv(CONTACTS).encode("cp1252"), "text/csv")
    at.run()

    assert not at.exception, at.exception
    assert {s.key: s.value for s in at.selectbox} == {
        "import_map_name": "Name",
        "import_map_job_title": "Job title",
        "import_map_phone": "Telephone",
        "import_map_mobile": "(not in the file)",
        "import_map_email": "Email",
        "import_map_organisation": "Practice",
        "import_map_type": "(not in the file)",
        "import_map_ods_code": "(not in the file)",
        "import_map_notes": "(not in the file)",
        "import_map_do_not_contact": "(not in the file)",
    }
    assert PREVIEW in values(at.markdown)
    assert table(at) == [
        {
            "Line": 2,
            "Will": "Import",
            "Name": "Zoë Ångström",
            "Organisation": "Hyde Park Surgery",
            "Problems and notes": "",
        },
        {
            "Line": 3,
            "Will": "Import",
            "Name": "Siân O'Brien",
            "Organisation": "Leeds Community OT",
            "Problems and notes": "",
        },
        {
            "Line": 4,
            "Will": "Problem",
            "Name": "Bad Email",
            "Organisation": "Hyde Park Surgery",
            "Problems and notes": BAD_EMAIL,
        },
        {
            "Line": 5,
            "Will": "Skip",
            "Name": "Zoe Angstrom",
            "Organisation": "Hyde Park Surgery",
            "Problems and notes": "Same person as line 2 of this file.",
        },
    ]
    assert world.db["contacts"].count == 0  # nothing is written by the preview

    button(at, "Import 2 contacts").click().run()

    assert not at.exception, at.exception
    assert values(at.success) == ["Imported 2 and updated 0 contacts from contacts.csv."]
    assert [b.label for b in at.get("download_button")] == ["Download the report (JSON)"]
    # Regression (issue 10, defect 6): the preview still said "2 to import", with the button enabled, after the
    # import had run. Now the imported file shows what was done, and no preview or Import button.
    assert PREVIEW not in values(at.markdown)
    assert [b.label for b in at.button] == ["Sign out"]
    assert values(at.info) == ["To import more, upload another file."]
    assert world.db.execute(
        "SELECT name, job_title, phone, email, organisation_id, branch_id, created_by FROM contacts ORDER BY id"
    ).fetchall() == [
        (
            "Zoë Ångström",
            "Practice Manager",
            "+441134960101",
            "zoe@hydepark.example",
            world.gp,
            world.leeds,
            world.manager_leeds.id,
        ),
        (
            "Siân O'Brien",
            "Occupational Therapist",
            "+441134960102",
            "sian@ot.example",
            world.ot,
            world.leeds,
            world.manager_leeds.id,
        ),
    ]


def test_changing_a_column_and_the_duplicate_choice_changes_the_preview(world):
    """Test that mapping a column by hand and choosing "Import it anyway" are reflected in the preview and the
    Import button before anything is written."""
    at = open_page("manager.leeds", "pages/import_contacts.py")
    at.file_uploader(key="import_file").upload("contacts.csv", to_csv(CONTACTS).encode("utf-8"), "text/csv")
    at.run()

    at.selectbox(key="import_map_email").set_value("(not in the file)")
    at.radio(key="import_on_duplicate").set_value("import")
    at.run()

    assert not at.exception, at.exception
    assert (
        "4 rows: **4 to import**, 0 to update, 0 to skip, **0 with problems** (not imported; fix them in the file and "
        "upload it again)."
    ) in values(at.markdown)
    assert [b.label for b in at.button if b.key == "import_go"] == ["Import 4 contacts"]
    assert world.db["contacts"].count == 0


def test_a_refused_file_shows_why_and_writes_nothing(world):
    """Test that a ragged file is refused on the page with the message naming the line, and no preview."""
    at = open_page("manager.leeds", "pages/import_contacts.py")
    data = b"Name,Practice\r\nZoe,Hyde Park Surgery\r\nSian,Leeds Community OT,extra\r\n"
    at.file_uploader(key="import_file").upload("contacts.csv", data, "text/csv")
    at.run()

    assert not at.exception, at.exception
    assert values(at.error) == [
        "Line 3: 3 fields where the heading line has 2. Check for a missing or extra separator or quote."
    ]
    assert not at.dataframe
    assert not at.selectbox
    assert world.db["contacts"].count == 0


def test_an_update_on_the_page_keeps_do_not_contact_and_the_lawful_basis(world):
    """Test that choosing "Update the existing contact" on the Import contacts page, with a file that has no
    do-not-contact or lawful-basis column, updates only the file's columns. Regression: the update reset
    do-not-contact to 0 and the lawful basis to the default, putting an objector back on the mailing list."""
    olive = world.contact(
        world.leeds, "Olive Objector", email="olive@hydepark.example", do_not_contact=True, lawful_basis="consent"
    )
    data = to_csv(
        [
            ["Name", "Job title", "Practice", "Email"],
            ["Olive Objector", "Partner", "Hyde Park Surgery", "olive@hydepark.example"],
        ]
    ).encode("utf-8")
    at = open_page("manager.leeds", "pages/import_contacts.py")
    at.file_uploader(key="import_file").upload("contacts.csv", data, "text/csv")
    at.run()
    at.radio(key="import_on_duplicate").set_value("update")
    at.run()

    button(at, "Import 1 contact").click().run()

    assert not at.exception, at.exception
    assert values(at.success) == ["Imported 0 and updated 1 contacts from contacts.csv."]
    assert world.db.execute(
        "SELECT name, job_title, email, do_not_contact, lawful_basis, version FROM contacts WHERE id = ?", [olive]
    ).fetchall() == [("Olive Objector", "Partner", "olive@hydepark.example", 1, "consent", 2)]


# ---------------------------------------------------------------------------------------------------- GP directory


def test_an_administrator_imports_the_gp_directory(world):
    """Test that the GP directory import page imports an uploaded epraccur file, reports what it did, lists the
    practices with an invalid phone number, and then shows the directory's counts."""
    at = open_page("ada", "pages/gp_directory.py")
    at.file_uploader(key="gp_directory_file").upload("epraccur.csv", EPRACCUR, "text/csv")
    at.run()
    button(at, "Import").click().run()

    assert not at.exception, at.exception
    assert values(at.success) == [
        "Imported epraccur.csv: 3 added, 0 updated, 0 unchanged, 1 closed or dormant, 0 skipped (not GP practices)."
    ]
    assert values(at.warning) == [
        "1 practice has a phone number that is not valid; it is kept as published and flagged: Y00002."
    ]
    assert directory.status_counts(world.db) == {"active": 3, "closed": 1}

    at.run()

    assert "In the directory now: 3 active, 1 closed GP practices." in values(at.markdown)


def test_the_directory_counts_are_current_right_after_an_import(world):
    """Test that the GP directory page shows the new counts as soon as an import has run, without a reload.

    Regression (issue 10, defect 6): the counts were drawn before the import and stayed old until a reload."""
    directory.import_gp_practices(
        world.db, world.admin, to_csv([epraccur_row("Y00009", "OLD PRACTICE", "LS6 1AA")]).encode()
    )
    at = open_page("ada", "pages/gp_directory.py")
    assert "In the directory now: 2 active GP practices." in values(at.markdown)
    at.file_uploader(key="gp_directory_file").upload("epraccur.csv", EPRACCUR, "text/csv")
    at.run()
    button(at, "Import").click().run()

    assert not at.exception, at.exception
    counts = [v for v in values(at.markdown) if v.startswith("In the directory now")]
    assert counts == ["In the directory now: 4 active, 1 closed GP practices."]


def test_a_malformed_directory_file_is_refused_on_the_page(world):
    """Test that an uploaded file that is not epraccur shows the refusal and imports nothing."""
    at = open_page("ada", "pages/gp_directory.py")
    at.file_uploader(key="gp_directory_file").upload("epraccur.csv", b"Code,Name\r\nY1,X\r\n", "text/csv")
    at.run()
    button(at, "Import").click().run()

    assert values(at.error) == ["Line 1: expected 27 columns, found 2. Is this the NHS epraccur file?"]
    assert world.db.execute("SELECT count(*) FROM organisations WHERE ods_code IS NOT NULL").fetchone() == (0,)


# ---------------------------------------------------------------------------------------------------- the patch form


def test_an_administrator_saves_a_branchs_patch(world):
    """Test that the patch form on Regions and branches saves the chosen branch's districts and commissioner
    codes as branch_patch rows and confirms with the branch's coverage."""
    directory.import_gp_practices(world.db, world.admin, EPRACCUR)
    at = open_page("ada", "pages/branches.py")
    at.selectbox(key="branches_patch_branch").set_value(world.york)
    at.run()
    fill(
        at,
        **{f"branches_patch_districts_{world.york}": "ls7; LS16", f"branches_patch_commissioners_{world.york}": "03q"},
    )
    button(at, "Save patch").click().run()

    assert not at.exception, at.exception
    assert values(at.success) == ["Saved the patch. GP patch coverage: 0 of 2 practices (0%)."]
    assert world.db.execute("SELECT branch_id, kind, value FROM branch_patch ORDER BY kind, value").fetchall() == [
        (world.york, "commissioner", "03Q"),
        (world.york, "postcode_district", "LS16"),
        (world.york, "postcode_district", "LS7"),
    ]
    assert directory.patch_of(world.db, world.york) == {"postcode_district": "LS16, LS7", "commissioner": "03Q"}


def test_a_bad_patch_value_is_refused_on_the_form(world):
    """Test that a value that is not a postcode district is refused by name and nothing is saved."""
    at = open_page("ada", "pages/branches.py")
    fill(at, **{f"branches_patch_districts_{world.leeds}": "LS6 2AB"})
    button(at, "Save patch").click().run()

    assert not at.exception, at.exception
    assert values(at.error) == ["Postcode districts: “2AB” is not valid (for example LS6)."]
    assert world.db["branch_patch"].count == 0


def test_saving_a_patch_before_the_directory_is_imported_does_not_say_no_patch_is_set(world):
    """Test that the confirmation after saving a patch, when no practice of the directory falls in it yet,
    does not contradict itself by saying that no patch is set.

    Regression: coverage_text(0, 0) cannot tell "no patch" from "a patch with no active practices", so the
    page showed "Saved the patch. GP patch coverage: no patch set (an administrator sets it under Regions and
    branches).." right after saving one."""
    at = open_page("ada", "pages/branches.py")
    fill(at, **{f"branches_patch_districts_{world.leeds}": "LS7"})
    button(at, "Save patch").click().run()

    assert not at.exception, at.exception
    assert world.db.execute("SELECT kind, value FROM branch_patch").fetchall() == [("postcode_district", "LS7")]
    [message] = values(at.success)
    assert message.startswith("Saved the patch.")
    assert "no patch set" not in message
    assert ".." not in message


# ---------------------------------------------------------------------------------------------------- the GP patch page


def test_the_gp_patch_page_shows_a_branch_managers_coverage(world):
    """Test that a branch manager sees their branch's coverage sentence and its practices, uncovered ones first
    (the closed practice left out, the invalid number shown as published)."""
    directory.import_gp_practices(world.db, world.admin, EPRACCUR)
    directory.set_patch(world.db, world.admin, world.leeds, "LS7", "")
    chapel = world.db.execute("SELECT id FROM organisations WHERE ods_code = 'Y00001'").fetchone()[0]
    world.contact(world.leeds, "Nora Named", chapel)

    at = open_page("manager.leeds", "pages/gp_patch.py")

    assert not at.exception, at.exception
    assert values(at.subheader) == ["GP patch coverage: 1 of 2 practices (50%)"]
    assert table(at) == [
        {
            "Named contact": "No",
            "Practice": "HAREHILLS PRACTICE",
            "ODS code": "Y00002",
            "Postcode": "LS7 3EF",
            "Phone": "0113 496",
        },
        {
            "Named contact": "Yes",
            "Practice": "CHAPEL ALLERTON SURGERY",
            "ODS code": "Y00001",
            "Postcode": "LS7 4AB",
            "Phone": "0113 496 0001",
        },
    ]
    assert not at.selectbox


def test_the_gp_patch_page_without_a_patch(world):
    """Test that a branch without a patch is told so, with no table."""
    at = open_page("manager.york", "pages/gp_patch.py")

    assert values(at.subheader) == [NO_PATCH]
    assert not at.dataframe


def test_an_administrator_picks_the_branch_on_the_gp_patch_page(world):
    """Test that an administrator chooses which branch's patch to see."""
    directory.import_gp_practices(world.db, world.admin, EPRACCUR)
    directory.set_patch(world.db, world.admin, world.york, "LS7", "")
    at = open_page("ada", "pages/gp_patch.py")
    assert values(at.subheader) == [NO_PATCH]

    at.selectbox(key="gp_patch_branch").set_value(world.york).run()

    assert values(at.subheader) == ["GP patch coverage: 0 of 2 practices (0%)"]
