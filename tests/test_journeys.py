"""Browser journeys (issue 10): each role going through the app in Debian's Chromium against a real
`streamlit run app.py` on a copy of the demo data, pressing what people press.

One server and one browser serve the whole module; the tests change the database as people would, so each
touches its own records (or an account no other test uses).
"""

import csv
import io
import json
import re
import sqlite3
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
from collections.abc import Iterator, Sequence
from datetime import date
from pathlib import Path

import docx
import openpyxl
import pytest
from icalendar import Calendar
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from crm import contacts, demo, directory, testimonials, users
from crm.ui.pages import PAGES
from tests.browserkit import (
    Server,
    assert_no_exception,
    choose,
    download,
    download_all,
    new_tab,
    open_page,
    sign_in,
    wait_for_app,
)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ADMIN = "ada"
LEAD = "lead.northwest"  # North West: Manchester Central, Stockport, Liverpool North, Wirral
MANAGER = "manager.leedsnorth"
THREAD_ERROR = "SQLite objects created in a thread can only be used in that same thread"


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server


@pytest.fixture
def tab(browser: Browser, server: Server) -> Iterator[Page]:
    page = new_tab(browser)
    yield page
    page.context.close()
    assert THREAD_ERROR not in server.log_text()


# ---------------------------------------------------------------------------------------------------------------
# Opening what a download gave, with the library people's programs use for that kind of file


def _sqlite_integrity(data: bytes) -> str:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "copy.db"
        path.write_bytes(data)
        connection = sqlite3.connect(path)
        try:
            return connection.execute("PRAGMA integrity_check").fetchone()[0]
        finally:
            connection.close()


def opened(name: str, data: bytes) -> object:
    """Open a downloaded file by its kind (its first bytes, else its extension); fails when it does not open."""
    assert data, f"{name} is empty"
    suffix = Path(name).suffix.lower()
    if data.startswith(b"SQLite format 3\x00"):
        assert _sqlite_integrity(data) == "ok", name
        return "sqlite ok"
    if data.startswith(b"PK\x03\x04") and suffix not in (".xlsx", ".docx"):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None, name
            databases = [m for m in archive.namelist() if m.endswith(".db")]
            assert databases, f"{name} holds no database: {archive.namelist()}"
            for member in databases:
                assert _sqlite_integrity(archive.read(member)) == "ok", f"{name}: {member}"
            return archive.namelist()
    if suffix == ".csv":
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
        assert rows and rows[0], f"{name} has no header"
        return rows
    if suffix == ".xlsx":
        return [list(row) for row in openpyxl.load_workbook(io.BytesIO(data)).active.iter_rows(values_only=True)]
    if suffix == ".docx":
        return "\n".join(p.text for p in docx.Document(io.BytesIO(data)).paragraphs)
    if suffix == ".png":
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
        with Image.open(io.BytesIO(data)) as image:
            image.verify()
            return image.size
    if suffix == ".svg":
        root = ElementTree.fromstring(data)
        assert root.tag.endswith("svg"), f"{name}: {root.tag}"
        return root.tag
    if suffix == ".vcf":
        text = data.decode("utf-8")
        assert text.startswith("BEGIN:VCARD"), name
        return text
    if suffix == ".json":
        return json.loads(data)
    if suffix in (".md", ".txt"):
        text = data.decode("utf-8")
        assert text.strip(), name
        return text
    if suffix == ".pdf":
        assert data.startswith(b"%PDF-"), name
        return "pdf"
    if suffix == ".ics":
        calendar = Calendar.from_ical(data)
        assert calendar.name == "VCALENDAR", name
        return [str(event.get("summary")) for event in calendar.walk("VEVENT")]
    raise AssertionError(f"a download of an unexpected kind: {name}")


# Folded sections holding download buttons, by page (people unfold them to press the buttons).
FOLDED = {
    "Contacts": ["Partner mailing list"],
    "Contact": ["Everything we hold about this person"],
}


def unfold(page: Page, titles: Sequence[str]) -> None:
    for title in titles:
        section = page.get_by_test_id("stExpander").filter(has_text=title)
        section.locator("summary").first.click()
        expect(section.get_by_test_id("stDownloadButton").first).to_be_visible()
    wait_for_app(page)


def press_every_download(
    page: Page, folded: Sequence[str] = (), *, expected: bool = False
) -> list[tuple[str, str, object]]:
    """Every download on the page (with its ``folded`` sections unfolded), on each of its tabs in turn, pressed
    after it settled: (button label, file name, the file opened) each."""
    unfold(page, folded)
    files = []
    tabs = page.get_by_role("tab")
    for index in range(tabs.count()) or [None]:
        if index is not None:  # a tab's content is drawn once it is opened (Coverage's charts)
            tabs.nth(index).click()
            expect(tabs.nth(index)).to_have_attribute("aria-selected", "true")
            wait_for_app(page)
        if expected and index in (None, 0):  # (drawn last on the page: wait for them before counting)
            expect(page.get_by_test_id("stDownloadButton").first).to_be_attached()
        if page.get_by_test_id("stDownloadButton").count():
            files += [(label, name, opened(name, data)) for label, name, data in download_all(page)]
    assert_no_exception(page)
    return files


def tiny_pdf(text: str = "Thank you") -> bytes:
    """A small valid one-page PDF (what an emailed thank-you saved as PDF is, in miniature)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


# ---------------------------------------------------------------------------------------------------------------
# Every role, every page


def visit(page: Page, title: str) -> None:
    """Open a page from the menu and wait until its own script has drawn it (its title) and finished."""
    open_page(page, title)
    expect(page.get_by_role("heading", level=1).first).to_have_text(title)
    wait_for_app(page)
    page.wait_for_timeout(500)  # Streamlit shows its "running" sign a moment after a run starts


# Pages with download buttons in view when opened (the others are pressed too, when they show any).
WITH_DOWNLOADS = ("This week", "Testimonials", "Coverage", "Referrals", "Audit log", "Backups")


def _pages_of(role: str) -> list[str]:
    return [spec.title for spec in PAGES if role in spec.roles]


@pytest.mark.parametrize(("username", "role"), [(ADMIN, "admin"), (LEAD, "regional_lead"), (MANAGER, "branch_manager")])
def test_every_page_opens_and_every_download_gives_a_file_that_opens(tab: Page, server: Server, username, role):
    """Test that, for each role, every page of the menu opens without an exception and that every download
    button on it, pressed a few seconds after the page settled, gives a non-empty file that its reader opens.

    Regression (issue 10, defect 1): the Testimonials exports, the backup, the evidence file and a contact's
    exports gave no file when pressed after the page settled (their callables used the finished rerun's
    connection: "SQLite objects created in a thread can only be used in that same thread")."""
    sign_in(tab, server.url, username)
    pressed = {}
    for title in _pages_of(role):
        visit(tab, title)
        assert_no_exception(tab)
        if got := press_every_download(tab, FOLDED.get(title, []), expected=title in WITH_DOWNLOADS):
            pressed[title] = got
    today = re.compile(r"\d{4}-\d{2}-\d{2}")
    shown = {title: sorted(today.sub("DATE", name) for _, name, _ in files) for title, files in pressed.items()}
    expected = {
        "This week": ["partner-crm-follow-ups.ics"],
        "Contacts": ["mailing-list.csv", "mailing-list.vcf"],
        "Testimonials": [
            "testimonials-internal-DATE.csv",
            "testimonials-internal-DATE.docx",
            "testimonials-internal-DATE.md",
            "testimonials-internal-DATE.xlsx",
        ],
    }
    assert {title: shown[title] for title in expected} == expected
    assert len(shown["Coverage"]) >= 9 and len(shown["Coverage"]) % 3 == 0, shown["Coverage"]
    if role != "branch_manager":
        assert shown["Audit log"] == ["audit-DATE.csv"]
    if role == "admin":
        assert len(shown["Backups"]) == 1


def test_a_contacts_exports_and_a_testimonials_evidence_file_download(tab: Page, server: Server):
    """Test that a contact's page gives their data as readable text and JSON, and a testimonial's page its
    evidence file, each pressed after the page settled (regression: issue 10, defect 1)."""
    [contact] = server.rows(
        "SELECT c.id, c.name FROM contacts c JOIN branches b ON b.id = c.branch_id "
        "WHERE b.name = 'Leeds North' AND c.status = 'active' ORDER BY c.id LIMIT 1"
    )
    evidence = tiny_pdf("Thank you for the quick start")
    database = server.connect()
    try:
        manager = users.sign_in(database, MANAGER, PASSWORD)
        testimonial_id = testimonials.add(
            database,
            manager,
            {
                "quote": "The package started the same day.",
                "contact_id": contact["id"],
                "branch_id": manager.branch_id,
                "source": "email",
            },
            ("thank-you.pdf", evidence),
        )
    finally:
        database.close()
    sign_in(tab, server.url, MANAGER)

    tab.goto(f"{server.url}/contacts?contact={contact['id']}")
    wait_for_app(tab)
    files = {label: (name, content) for label, name, content in press_every_download(tab, FOLDED["Contact"])}
    assert {label: name for label, (name, _) in files.items()} == {
        "Export (readable text)": f"contact-{contact['id']}.txt",
        "Export (JSON)": f"contact-{contact['id']}.json",
    }
    held = files["Export (JSON)"][1]
    assert isinstance(held, dict)
    assert (held["contact"]["id"], held["contact"]["name"]) == (contact["id"], contact["name"])
    assert str(files["Export (readable text)"][1]).startswith(f"Everything Partner CRM holds about {contact['name']}\n")

    tab.goto(f"{server.url}/testimonials?testimonial={testimonial_id}")
    wait_for_app(tab)
    assert download(tab, "Evidence: thank-you.pdf") == ("thank-you.pdf", evidence)


# ---------------------------------------------------------------------------------------------------------------
# A disabled account


def test_an_account_disabled_after_the_page_was_drawn_gets_no_file_and_is_told_why(tab: Page, server: Server):
    """Test that pressing a Testimonials export after an administrator disabled the account (the page was drawn
    while it was enabled) gives no file and shows why under the button.

    Regression (issue 10, defect 1): a deferred download used the session of the run that drew the page, so it
    neither re-checked the account nor said anything when it failed."""
    username = "manager.stockport"  # an account no other test uses
    sign_in(tab, server.url, username)
    open_page(tab, "Testimonials")
    database = server.connect()
    try:
        admin = users.sign_in(database, ADMIN, PASSWORD)
        users.set_disabled(database, admin, username)
    finally:
        database.close()
    files = []
    tab.on("download", lambda got: files.append(got))

    tab.get_by_test_id("stDownloadButton").get_by_role("button", name="CSV").click()

    shown = tab.get_by_test_id("stAlertContentError")
    expect(shown).to_have_text(["No file: This account has been disabled. Ask an administrator."])
    tab.wait_for_timeout(1_000)  # a file, had one come, would have arrived with the message
    assert files == []
    assert server.rows(
        "SELECT COUNT(*) AS n FROM audit_log WHERE username = ? AND action = 'export_testimonials'",
        [username],
    ) == [{"n": 0}]


# ---------------------------------------------------------------------------------------------------------------
# Widgets as people use them


def type_date(page: Page, label: str, day: date, within=None) -> None:
    """Type a date into the date box labelled ``label`` (DD/MM/YYYY, as the app asks)."""
    box = (within if within is not None else page).get_by_test_id("stDateInput").filter(has_text=label)
    box.get_by_role("spinbutton").first.click()
    page.keyboard.type(day.strftime("%d%m%Y"))


# ---------------------------------------------------------------------------------------------------------------
# The branch manager


def test_a_branch_managers_week(tab: Page, server: Server, tmp_path: Path):
    """Test the branch manager's journey in the browser: land on This week; log a call with a GP contact from
    their page; add a contact at an OT team found by typing "OT", with an extension; mark a follow-up done; add a
    testimonial with CQC consent and a PDF; export it for CQC as Word and find the quote attributed as consented;
    import a cp1252 spreadsheet with semicolons; download the mailing list holding the imported people."""
    [branch] = server.rows("SELECT id FROM branches WHERE name = 'Leeds North'")
    sign_in(tab, server.url, MANAGER)
    expect(tab.get_by_role("heading", level=1).first).to_have_text("This week")

    # A call with a GP contact (the demo branch has none yet: one is added first), logged from their page.
    database = server.connect()
    try:
        manager = users.sign_in(database, MANAGER, PASSWORD)
        [surgery] = database.execute_returning_dicts(
            "SELECT id FROM organisations WHERE name = 'Leeds Medical Centre' AND type_code = 'GP_PRACTICE'"
        )
        gp_contact = {"name": "Grace Gill"}
        gp_contact["id"] = contacts.add(
            database,
            manager,
            {
                "name": "Grace Gill",
                "job_title": "Practice manager",
                "organisation_id": surgery["id"],
                "branch_id": branch["id"],
            },
        )
    finally:
        database.close()
    tab.goto(f"{server.url}/contacts?contact={gp_contact['id']}")
    wait_for_app(tab)
    tab.get_by_role("button", name="Log an interaction").click()
    popover = tab.get_by_test_id("stPopoverBody")
    popover.get_by_role("textbox", name="Summary").fill("Agreed a named contact for discharge letters")
    popover.get_by_role("button", name="Save").click()
    expect(tab.get_by_text("Logged: Agreed a named contact for discharge letters.")).to_be_visible()
    assert server.rows(
        "SELECT i.kind_code, i.branch_id, ic.contact_id FROM interactions i "
        "JOIN interaction_contacts ic ON ic.interaction_id = i.id WHERE i.summary = ?",
        ["Agreed a named contact for discharge letters"],
    ) == [{"kind_code": "PHONE_CALL", "branch_id": branch["id"], "contact_id": gp_contact["id"]}]

    # A contact at an OT team, found by typing "OT" (depends on the organisation search of issue 10, defect 4).
    tab.goto(f"{server.url}/contacts")  # (the menu would keep the contact's address)
    wait_for_app(tab)
    tab.get_by_text("Add a contact", exact=True).click()
    search = tab.get_by_role("textbox", name="Find organisation")
    search.fill("OT")
    search.press("Enter")
    wait_for_app(tab)
    expect(tab.get_by_text(re.compile(r"organisations? match(es)?; choose one"))).to_be_visible()  # issue 10, defect 4
    picker = tab.get_by_role("combobox", name="Organisation", exact=True)
    picker.click()
    occupational = tab.get_by_role("option").filter(has_text="Leeds Community Occupational Therapy Team")
    expect(occupational).to_have_count(1)
    ot_label = occupational.inner_text()
    occupational.click()
    expect(picker).to_have_value(ot_label)
    form = tab.get_by_test_id("stForm").filter(has=tab.get_by_role("button", name="Add contact"))
    form.get_by_role("textbox", name="Name", exact=True).fill("Olu Therapist")
    form.get_by_role("textbox", name="Phone", exact=True).fill("0113 496 0123 ext 45")
    form.get_by_role("button", name="Add contact").click()
    expect(tab.get_by_text("Added Olu Therapist.")).to_be_visible()
    assert server.rows(
        "SELECT c.phone, c.phone_ext, c.branch_id, o.type_code FROM contacts c "
        "JOIN organisations o ON o.id = c.organisation_id WHERE c.name = 'Olu Therapist'"
    ) == [{"phone": "+441134960123", "phone_ext": "45", "branch_id": branch["id"], "type_code": "COMMUNITY_THERAPY"}]

    # A follow-up marked done on This week.
    visit(tab, "This week")
    done = tab.locator("[class*='st-key-home_done_']").first
    interaction_id = int(re.search(r"st-key-home_done_(\d+)", done.get_attribute("class")).group(1))
    done.get_by_role("button", name="Done").click()  # asks for the outcome, logged as a touch (issue 12)
    dialog = tab.get_by_role("dialog")
    dialog.get_by_role("textbox", name="Outcome").fill("Sent the referral pack")
    dialog.get_by_role("button", name="Save").click()
    expect(tab.get_by_text("Follow-up done:")).to_be_visible()
    [followed] = server.rows("SELECT follow_up_done_on FROM interactions WHERE id = ?", [interaction_id])
    assert followed["follow_up_done_on"] == date.today().isoformat()
    assert server.rows("SELECT count(*) AS n FROM interactions WHERE summary = 'Sent the referral pack'") == [{"n": 1}]

    # A testimonial with CQC consent and its evidence as a PDF.
    visit(tab, "Testimonials")
    tab.get_by_text("Record a testimonial", exact=True).click()
    form = tab.get_by_test_id("stForm").filter(has=tab.get_by_role("button", name="Save testimonial"))
    quote = "The carers kept us informed every day of the reablement package."
    form.get_by_role("textbox", name="Quote").fill(quote)
    form.get_by_role("textbox", name="Giver's name").fill("Priya Patel")
    form.get_by_role("textbox", name="Giver's role").fill("Occupational therapist")
    form.get_by_role("textbox", name="Organisation").fill("Leeds Community OT")
    choose(tab, "Partner type", "Community therapy (OT, physio, reablement)", within=form)
    choose(tab, "May be used for", "CQC and commissioners", within=form)
    choose(tab, "Attributed as", "Role and organisation", within=form)
    type_date(tab, "Consent given on", date.today(), within=form)
    form.get_by_role("textbox", name="How consent was given").fill("replied to our email")
    evidence = tiny_pdf("Thank you for keeping us informed")
    form.locator("input[type=file]").set_input_files(
        {"name": "thank-you.pdf", "mimeType": "application/pdf", "buffer": evidence}
    )
    form.get_by_role("button", name="Save testimonial").click()
    expect(tab.get_by_text("Testimonial saved.")).to_be_visible()
    assert server.rows(
        "SELECT giver_name, giver_role, consent_scope, attribution, consent_given_on, evidence_name, evidence_type "
        "FROM testimonials WHERE quote = ?",
        [quote],
    ) == [
        {
            "giver_name": "Priya Patel",
            "giver_role": "Occupational therapist",
            "consent_scope": "cqc",
            "attribution": "role",
            "consent_given_on": date.today().isoformat(),
            "evidence_name": "thank-you.pdf",
            "evidence_type": "application/pdf",
        }
    ]

    # Exported for CQC as a Word evidence pack: the quote, attributed by role and organisation only.
    choose(tab, "Show what this audience may see", "CQC and commissioners")
    expect(tab.get_by_text(re.compile(r"testimonials? CQC and commissioners may see\."))).to_be_visible()
    name, data = download(tab, "Evidence pack (Word)")
    assert name == f"testimonials-cqc-{date.today().isoformat()}.docx"
    pack = docx.Document(io.BytesIO(data))
    text = "\n".join(
        [p.text for p in pack.paragraphs]
        + [cell.text for table in pack.tables for row in table.rows for cell in row.cells]
    )
    assert quote in text
    assert "Occupational therapist, Leeds Community OT" in text
    assert "Priya Patel" not in text

    # A cp1252 spreadsheet with semicolons, imported through the page.
    spreadsheet = tmp_path / "contacts.csv"
    spreadsheet.write_bytes(
        (
            "Name;Job title;Organisation;Type;Phone;Email\r\n"
            "Zoë Brontë;Practice manager;Café Court Surgery;GP practice;0113 496 0555;zoe@cafe-court.example\r\n"
            "Seán O’Neill;Community OT;Café Court Surgery;GP practice;0113 496 0556;sean@cafe-court.example\r\n"
        ).encode("cp1252")
    )
    visit(tab, "Import contacts")
    tab.locator("input[type=file]").set_input_files(spreadsheet)
    import_button = tab.get_by_role("button", name="Import 2 contacts")
    expect(import_button).to_be_enabled()
    import_button.click()
    expect(tab.get_by_text("Imported 2 and updated 0 contacts from contacts.csv.")).to_be_visible()
    assert server.rows(
        "SELECT c.name, c.job_title, o.name AS organisation, c.phone FROM contacts c "
        "JOIN organisations o ON o.id = c.organisation_id WHERE c.branch_id = ? AND o.name = 'Café Court Surgery' "
        "ORDER BY c.name",
        [branch["id"]],
    ) == [
        {
            "name": "Seán O’Neill",
            "job_title": "Community OT",
            "organisation": "Café Court Surgery",
            "phone": "+441134960556",
        },
        {
            "name": "Zoë Brontë",
            "job_title": "Practice manager",
            "organisation": "Café Court Surgery",
            "phone": "+441134960555",
        },
    ]

    # The partner mailing list, holding the people just imported.
    visit(tab, "Contacts")
    unfold(tab, FOLDED["Contacts"])
    name, data = download(tab, re.compile(r"^CSV \("))
    assert name == "mailing-list.csv"
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    names = {row["Name"] for row in rows}
    assert {"Zoë Brontë", "Seán O’Neill", "Olu Therapist"} <= names
    assert len(rows) == len(
        server.rows(
            "SELECT id FROM contacts WHERE branch_id = ? AND status = 'active' AND do_not_contact = 0 "
            "AND erased_at IS NULL",
            [branch["id"]],
        )
    )


# ---------------------------------------------------------------------------------------------------------------
# The administrator


def test_an_administrators_set_up(tab: Page, server: Server, epraccur_path: Path):
    """Test the administrator's journey in the browser: add a user; import the NHS GP practice file; set a
    branch's GP patch and read its coverage there and on the GP patch page; download a backup that SQLite
    opens with its integrity intact and that holds the new user."""
    sign_in(tab, server.url, ADMIN)

    visit(tab, "Users")
    choose(tab, "Role", "Branch manager")
    form = tab.get_by_test_id("stForm").filter(has=tab.get_by_role("button", name="Add user"))
    form.get_by_role("textbox", name="User name").fill("jo.bloggs")
    form.get_by_role("textbox", name="Full name").fill("Jo Bloggs")
    choose(tab, "Branch", "Wirral", within=form)
    form.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
    form.get_by_role("textbox", name="Password again").fill(PASSWORD)
    form.get_by_role("button", name="Add user").click()
    expect(tab.get_by_text("Added Jo Bloggs (jo.bloggs) as branch manager.")).to_be_visible()
    assert server.rows(
        "SELECT u.display_name, u.role, b.name AS branch, u.disabled FROM users u "
        "JOIN branches b ON b.id = u.branch_id WHERE u.username = 'jo.bloggs'"
    ) == [{"display_name": "Jo Bloggs", "role": "branch_manager", "branch": "Wirral", "disabled": 0}]

    [before] = server.rows("SELECT COUNT(*) AS n FROM organisations WHERE ods_code IS NOT NULL")
    visit(tab, "GP directory import")
    tab.locator("input[type=file]").set_input_files(epraccur_path)
    tab.get_by_role("button", name="Import", exact=True).click()
    imported = tab.get_by_text("Imported epraccur.csv:")
    expect(imported).to_be_visible(timeout=180_000)
    added = int(re.search(r"([\d,]+) added", imported.inner_text()).group(1).replace(",", ""))
    [after] = server.rows("SELECT COUNT(*) AS n FROM organisations WHERE ods_code IS NOT NULL")
    assert added > 5_000
    assert after["n"] == before["n"] + added

    [leeds_north] = server.rows("SELECT id FROM branches WHERE name = 'Leeds North'")
    visit(tab, "Regions and branches")
    choose(tab, "Branch", "Leeds North")
    form = tab.get_by_test_id("stForm").filter(has=tab.get_by_role("button", name="Save patch"))
    districts = form.get_by_role("textbox", name="Postcode districts")
    expect(districts).to_have_value(
        server.rows(
            "SELECT group_concat(value, ', ') AS v FROM branch_patch "
            "WHERE branch_id = ? AND kind = 'postcode_district'",
            [leeds_north["id"]],
        )[0]["v"]
        or ""
    )  # the form of the branch chosen
    districts.fill("LS6, LS7")
    form.get_by_role("button", name="Save patch").click()
    expect(tab.get_by_text("Saved the patch.")).to_be_visible()
    assert server.rows(
        "SELECT kind, value FROM branch_patch WHERE branch_id = ? ORDER BY kind, value", [leeds_north["id"]]
    ) == [{"kind": "postcode_district", "value": "LS6"}, {"kind": "postcode_district", "value": "LS7"}]
    database = server.connect()
    try:
        admin = users.sign_in(database, ADMIN, PASSWORD)
        covered, total = directory.patch_coverage(database, admin, leeds_north["id"])
    finally:
        database.close()
    assert total > 0
    coverage = directory.coverage_text(covered, total)
    expect(tab.get_by_text(f"Saved the patch. {coverage}.")).to_be_visible()
    visit(tab, "GP patch")
    choose(tab, "Branch", "Leeds North")
    expect(tab.get_by_role("heading", name=coverage)).to_be_visible()

    visit(tab, "Backups")
    name, data = download(tab, "Download a backup")
    assert opened(name, data)
    with tempfile.TemporaryDirectory() as folder:
        copy = Path(folder) / "backup.db"
        if data.startswith(b"PK\x03\x04"):  # an archive of the database and the evidence files
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                [member] = [m for m in archive.namelist() if m.endswith(".db")]
                copy.write_bytes(archive.read(member))
        else:
            copy.write_bytes(data)
        connection = sqlite3.connect(copy)
        try:
            assert connection.execute("SELECT display_name FROM users WHERE username = 'jo.bloggs'").fetchall() == [
                ("Jo Bloggs",)
            ]
        finally:
            connection.close()


# ---------------------------------------------------------------------------------------------------------------
# The regional lead


def test_a_regional_leads_overview(tab: Page, server: Server):
    """Test the regional lead's journey in the browser: land on Coverage; download every chart as data (CSV),
    PNG and SVG; and see only their own region's branches on This week, Coverage and Contacts."""
    own = {b.name for b in demo.REGIONS["North West"]}
    others = [b.name for region, listed in demo.REGIONS.items() if region != "North West" for b in listed]

    def assert_only_own_region() -> None:
        text = tab.get_by_test_id("stMain").inner_text()
        assert [name for name in others if re.search(rf"\b{re.escape(name)}\b", text)] == []

    sign_in(tab, server.url, LEAD)
    expect(tab.get_by_role("heading", level=1).first).to_have_text("Coverage")
    wait_for_app(tab)
    files = press_every_download(tab, expected=True)
    names = sorted(name for _, name, _ in files)
    charts = sorted({Path(name).stem for name in names})
    assert "coverage-heatmap" in charts and "coverage-trend" in charts, charts
    assert names == sorted(f"{chart}.{kind}" for chart in charts for kind in ("csv", "png", "svg"))
    heatmap = next(content for _, name, content in files if name == "coverage-heatmap.csv")
    assert {row[heatmap[0].index("Branch")] for row in heatmap[1:]} == own
    assert_only_own_region()

    visit(tab, "This week")
    assert_only_own_region()

    visit(tab, "Contacts")
    assert_only_own_region()
    tab.get_by_role("combobox", name="Branch", exact=True).click()
    options = tab.get_by_role("option")
    assert sorted(options.all_inner_texts()) == sorted(["All my branches", *own])
    tab.keyboard.press("Escape")
    unfold(tab, FOLDED["Contacts"])
    _, data = download(tab, re.compile(r"^CSV \("))
    mailing = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    assert mailing and {row["Branch"] for row in mailing} == own
