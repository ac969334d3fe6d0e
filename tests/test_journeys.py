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
from collections.abc import Iterator
from pathlib import Path

import docx
import openpyxl
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, sync_playwright

from crm import testimonials, users
from crm.ui.pages import PAGES
from tests.browserkit import (
    Server,
    assert_no_exception,
    demo_copy,
    download,
    download_all,
    launch,
    new_tab,
    open_page,
    sign_in,
    streamlit_server,
    wait_for_app,
)
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser

ADMIN = "ada"
LEAD = "lead.northwest"  # North West: Manchester Central, Stockport, Liverpool North, Wirral
MANAGER = "manager.leedsnorth"
THREAD_ERROR = "SQLite objects created in a thread can only be used in that same thread"


@pytest.fixture(scope="module")
def server(demo_template: Path, tmp_path_factory) -> Iterator[Server]:
    folder = tmp_path_factory.mktemp("journeys")
    with streamlit_server(demo_copy(demo_template, folder), folder / "streamlit.log") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


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
    raise AssertionError(f"a download of an unexpected kind: {name}")


# Folded sections holding download buttons, by page (people unfold them to press the buttons).
FOLDED = {
    "Contacts": ["Partner mailing list"],
    "Contact": ["Everything we hold about this person"],
}


def unfold(page: Page, titles: list[str]) -> None:
    for title in titles:
        page.get_by_test_id("stExpander").filter(has_text=title).locator("summary").first.click()
    wait_for_app(page)


def press_every_download(page: Page, folded: list[str] = ()) -> list[tuple[str, str, object]]:
    """Every download on the page (with its ``folded`` sections unfolded) pressed after it settled:
    (button label, file name, the file opened) each."""
    unfold(page, folded)
    if not page.get_by_test_id("stDownloadButton").count():
        return []
    files = [(label, name, opened(name, data)) for label, name, data in download_all(page)]
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
        open_page(tab, title)
        assert_no_exception(tab)
        if got := press_every_download(tab, FOLDED.get(title, [])):
            pressed[title] = got
    today = re.compile(r"\d{4}-\d{2}-\d{2}")
    shown = {title: sorted(today.sub("DATE", name) for _, name, _ in files) for title, files in pressed.items()}
    expected = {
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
