"""Browser tests of long imports and of running offline (issue 12).

- The GP directory import (the real NHS file, ~14,000 rows) and a contacts import of a few thousand rows show a
  progress bar counting rows ("Imported 4,000 of 14,357 rows") and then the summary, and the rows are in the
  database.
- Every page of every role loads with nothing fetched from outside this machine: each request the browser makes
  is recorded, and any that is not to the loopback is refused (as it would fail on a machine without internet).

Only a browser shows what arrives while a script is still running, and what the page asks the network for.
"""

import base64
import csv
import io
import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Route, expect

from crm import db, directory
from crm.access import COMMAND_LINE
from crm.ui import pages
from tests import browserkit
from tests.browserkit import DESKTOP, PHONE
from tests.conftest import copy_database

pytestmark = pytest.mark.browser
FAVICON = Path(__file__).resolve().parents[1] / "crm" / "ui" / "favicon.png"

ADMIN = "ada"
LEAD = "lead.northwest"
MANAGER = "manager.leedsnorth"
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}
IMPORT_SECONDS = 240  # the whole NHS file on a busy two-core machine
# Screenshots land here for a person to look at (never committed); a temporary folder unless set.
SHOTS = os.environ.get("CRM_SCREENSHOTS")
# Every text a progress bar showed, in order, as the page drew it (recorded in the page, so none is missed
# between two looks from the test).
PROGRESS_TEXT = re.compile(rb"(Checked|Imported) ([\d,]+) of ([\d,]+) rows")


def record_progress(page) -> list[tuple[str, int, int]]:
    """(verb, done, total) of every progress text the server sends the page, in order, as it arrives.

    Read from the page's websocket rather than from the screen: a browser on a busy machine may paint several of
    Streamlit's updates in one frame, and the bar is gone once the work ends, so what is painted is a matter of
    timing; what the page is sent is not."""
    seen: list[tuple[str, int, int]] = []

    def frame(payload) -> None:
        if isinstance(payload, bytes):
            for verb, done, total in PROGRESS_TEXT.findall(payload):
                seen.append((verb.decode(), int(done.replace(b",", b"")), int(total.replace(b",", b""))))

    page.on("websocket", lambda socket: socket.on("framereceived", frame))
    return seen


@pytest.fixture(scope="module")
def server(demo_server):
    return demo_server


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(SHOTS) if SHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _counts(seen: list[tuple[str, int, int]], verb: str) -> list[tuple[int, int]]:
    """(done, total) of each progress text "<verb> 1,500 of 3,000 rows" the page was sent."""
    return [(done, total) for seen_verb, done, total in seen if seen_verb == verb]


def _assert_rising_to(counts: list[tuple[int, int]], total: int) -> None:
    assert counts, "no progress was shown"
    assert all(seen_total == total for _, seen_total in counts), counts
    done = [d for d, _ in counts]
    assert done == sorted(done) and 0 < done[0] and done[-1] <= total, counts


def _practices(database_path: Path) -> list[dict]:
    database = db.connect(database_path)
    try:
        return database.execute_returning_dicts(
            "SELECT ods_code, name, address, postcode, phone, phone_raw, commissioner_code, opened_on, closed_on, "
            "status FROM organisations WHERE type_code = 'GP_PRACTICE' ORDER BY ods_code"
        )
    finally:
        database.close()


# ---------------------------------------------------------------------------------------------------- progress


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_gp_directory_import_shows_progress_then_the_summary(
    browser, server, epraccur_path, shots, tmp_path, viewport
):
    """Test that importing the real NHS file on the GP directory import page shows a progress bar counting the
    file's rows up to the total, then the summary the import gives and no bar, and that the database then holds
    exactly the practices the same import gives on a copy of it."""
    expected_db = tmp_path / "expected.db"
    copy_database(server.db_path, expected_db)
    database = db.connect(expected_db)
    try:
        expected = directory.import_gp_practices(database, COMMAND_LINE, epraccur_path.read_bytes())
    finally:
        database.close()
    total = sum(1 for row in csv.reader(io.StringIO(epraccur_path.read_text(encoding="utf-8"))) if any(row))
    width = viewport["width"]
    page = browserkit.new_tab(browser, viewport=viewport)
    progress = record_progress(page)
    browserkit.sign_in(page, server.url, ADMIN)
    page.goto(f"{server.url}/gp_directory")
    browserkit.wait_for_app(page)
    expect(page.get_by_role("heading", name="GP directory import")).to_be_visible()
    page.locator("input[type=file]").set_input_files(epraccur_path)

    page.get_by_role("button", name="Import", exact=True).click()

    # A look at the page while the bar counts (the test's checks use the texts the page was sent instead, so a
    # fast machine that finishes before this look still passes).
    deadline = time.monotonic() + IMPORT_SECONDS
    while not _counts(progress, "Imported") and time.monotonic() < deadline:
        page.wait_for_timeout(50)  # (the page's events, its websocket frames too, arrive while Playwright waits)
    page.screenshot(path=shots / f"gp-import-during-{width}.png", full_page=True)
    summary = page.get_by_text("Imported epraccur.csv:")
    expect(summary).to_be_visible(timeout=IMPORT_SECONDS * 1000)
    browserkit.wait_for_app(page)
    page.screenshot(path=shots / f"gp-import-after-{width}.png", full_page=True)

    assert summary.inner_text() == (
        f"Imported epraccur.csv: {expected.added:,} added, {expected.updated:,} updated, "
        f"{expected.unchanged:,} unchanged, {expected.closed:,} closed or dormant, "
        f"{expected.skipped:,} skipped (not GP practices)."
    )
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    _assert_rising_to(_counts(progress, "Imported"), total)
    browserkit.assert_no_exception(page)
    practices = _practices(server.db_path)
    assert practices == _practices(expected_db)
    assert len(practices) >= expected.added + expected.updated + expected.unchanged > 8_000
    page.context.close()


def test_a_long_contacts_import_shows_progress_then_the_summary(browser, server, shots, tmp_path):
    """Test that a branch manager's spreadsheet of 3,000 contacts shows its rows being checked, then on Import a
    progress bar counting the rows imported up to 3,000, then the summary; the branch then has every one."""
    rows = [["Name", "Job title", "Organisation", "Partner type", "Email"]]
    rows += [
        [f"Pat Progress {i:04d}", "Practice Manager", "Progress Park Surgery", "GP practice", f"pat{i:04d}@pp.example"]
        for i in range(3_000)
    ]
    spreadsheet = tmp_path / "long-list.csv"
    with spreadsheet.open("w", newline="", encoding="utf-8") as out:
        csv.writer(out).writerows(rows)
    [manager] = server.rows("SELECT id, branch_id FROM users WHERE username = ?", [MANAGER])
    page = browserkit.new_tab(browser, viewport=DESKTOP)
    progress = record_progress(page)
    browserkit.sign_in(page, server.url, MANAGER)
    page.goto(f"{server.url}/import_contacts")
    browserkit.wait_for_app(page)
    expect(page.get_by_role("heading", name="Import contacts")).to_be_visible()

    page.locator("input[type=file]").set_input_files(spreadsheet)
    button = page.get_by_role("button", name="Import 3,000 contacts")
    expect(button).to_be_enabled(timeout=120_000)
    checked = _counts(progress, "Checked")
    button.click()
    summary = page.get_by_text("Imported 3,000 and updated 0 contacts from long-list.csv.")
    expect(summary).to_be_visible(timeout=120_000)
    page.screenshot(path=shots / "contacts-import-after-1440.png", full_page=True)

    _assert_rising_to(checked, 3_000)
    _assert_rising_to(_counts(progress, "Imported"), 3_000)
    expect(page.get_by_test_id("stProgress")).to_have_count(0)
    browserkit.assert_no_exception(page)
    imported = server.rows(
        "SELECT c.name, c.email, c.created_by FROM contacts c JOIN organisations o ON o.id = c.organisation_id "
        "WHERE o.name = 'Progress Park Surgery' AND c.branch_id = ? ORDER BY c.name",
        [manager["branch_id"]],
    )
    assert imported == [
        {"name": name, "email": email, "created_by": manager["id"]} for name, _, _, _, email in rows[1:]
    ]
    page.context.close()


# ---------------------------------------------------------------------------------------------------- offline


def _is_loopback(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname in LOOPBACK


@pytest.mark.parametrize("username", [ADMIN, LEAD, MANAGER])
def test_every_page_loads_with_nothing_fetched_from_outside(browser, server, username):
    """Test that signing in and opening every page of the role's menu asks nothing of any host but this one
    (anything else is refused, as offline), and that each page still draws without an exception or a failed
    request, with the menu's Material icons drawn from the font Streamlit serves."""
    outside: list[str] = []
    failed: list[str] = []
    requested: list[str] = []
    context = browserkit.new_tab(browser, viewport=DESKTOP).context
    page = context.pages[0]

    def refuse_outside(route: Route) -> None:
        if _is_loopback(route.request.url):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort("internetdisconnected")

    context.route("**/*", refuse_outside)
    page.on("request", lambda request: requested.append(request.url))
    page.on("requestfailed", lambda request: failed.append(f"{request.url} ({request.failure})"))
    page.on(
        "response",
        lambda response: failed.append(f"{response.url} ({response.status})") if response.status >= 400 else None,
    )

    browserkit.sign_in(page, server.url, username)
    [user] = server.rows("SELECT role FROM users WHERE username = ?", [username])
    for spec in [spec for spec in pages.PAGES if user["role"] in spec.roles]:
        browserkit.open_page(page, spec.title)
        expect(page.get_by_role("heading", name=spec.title).first).to_be_visible()
        browserkit.assert_no_exception(page)

    assert [url for url in requested if not _is_loopback(url)] == []
    assert outside == []
    assert failed == []
    # The menu's icons are ligatures of the Material Symbols font, which came from this server.
    assert page.evaluate(
        "() => document.fonts.check('24px \"Material Symbols Rounded\"') && [...document.fonts].some("
        "f => f.family.includes('Material Symbols Rounded') && f.status === 'loaded')"
    )
    assert any(re.search(r"/static/media/MaterialSymbols-Rounded\.[\w-]+\.woff2$", url) for url in requested)
    icon = page.get_by_test_id("stSidebarNav").get_by_test_id("stIconMaterial").first
    assert icon.evaluate("e => getComputedStyle(e).fontFamily").startswith('"Material Symbols Rounded"')
    # The tab's icon is the handshake, sent with the page as a data URL.
    favicon = page.evaluate("() => document.querySelector(\"link[rel~='icon']\").href")
    assert favicon.removeprefix("data:image/png;base64,") == base64.b64encode(FAVICON.read_bytes()).decode()
    context.close()
