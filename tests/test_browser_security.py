"""Browser tests of what only a browser shows about security: user text with markdown links and images is shown
as text on every page that names a contact (no link to, no image from, the attacker's site), and the session
cookie holds a short-lived handle, never the session token.

Regressions: a contact named ``[Reset your password](https://evil.example/reset) ![px](...)`` was a live link and
a fetched image on Retention review, and an organisation's name became a link in a "Logged: ..." message; the
session token sat in a cookie any script could read and in an inline script.
"""

import hashlib
import io
import json
import zipfile

import pytest
from playwright.sync_api import Page, expect

from tests import browserkit
from tests.browserkit import WAIT_MS, assert_no_exception, new_tab, sign_in, wait_for_app
from tests.test_markdown_injection import HOSTILE, _build

pytestmark = pytest.mark.browser

# The hostile contact's email field (a@evil.example, a valid address) is meant to be a mailto: link (issue 12);
# any other link to evil.example is injected markup.
EVIL_LINKS = 'a[href*="evil.example"]:not([href="mailto:a@evil.example"])'
EVIL_IMAGES = 'img[src*="evil.example"]'


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server on a database where every text users can type is a hostile markdown string."""
    folder = tmp_path_factory.mktemp("browser_security")
    ids = _build(folder / "crm.db")
    with browserkit.streamlit_server(folder / "crm.db", folder / "streamlit.log") as running:
        running.ids = ids
        yield running


def shown_text(page: Page) -> str:
    """The page's visible text, without the invisible word joiners that keep addresses from becoming links."""
    return page.locator("body").inner_text().replace("\u2060", "")


def assert_no_injected_markup(page: Page, where: str) -> None:
    wait_for_app(page)
    assert_no_exception(page)
    assert page.locator(EVIL_LINKS).count() == 0, (where, page.locator(EVIL_LINKS).first.evaluate("e => e.outerHTML"))
    assert page.locator(EVIL_IMAGES).count() == 0, where


@pytest.mark.parametrize("username", ["ada", "manager"])
def test_a_contact_named_with_markdown_shows_as_text_on_every_page(tab, server, username):
    """Test that on every page of the menu, and on the contact's, interaction's, organisation's and testimonial's
    own pages, a contact (and everything else) named with markdown links and images shows no link to and no
    image from evil.example, and that the contact's own page shows the name exactly as typed."""
    sign_in(tab, server.url, username)
    titles = [t.splitlines()[-1] for t in tab.get_by_test_id("stSidebarNav").get_by_role("link").all_inner_texts()]
    for title in titles:
        browserkit.open_page(tab, title)
        assert_no_injected_markup(tab, title)
    for path, parameter in [
        ("contacts", "contact"),
        ("interactions", "interaction"),
        ("organisations", "organisation"),
        ("testimonials", "testimonial"),
    ]:
        tab.goto(f"{server.url}/{path}?{parameter}={server.ids[parameter]}")
        expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
        assert_no_injected_markup(tab, path)
        assert HOSTILE in shown_text(tab), path


def test_a_logged_message_naming_an_organisation_shows_it_as_text(tab, server):
    """Test that logging a call from an organisation named with markdown shows "Logged: Phone call with <the
    name>." as text, with no link or image."""
    sign_in(tab, server.url, "manager")
    tab.goto(f"{server.url}/organisations?organisation={server.ids['organisation']}")
    wait_for_app(tab)
    tab.get_by_role("button", name="Log an interaction").click()
    tab.get_by_test_id("stPopoverBody").get_by_role("button", name="Save").click()
    expect(tab.get_by_test_id("stAlertContentSuccess")).to_be_visible(timeout=WAIT_MS)
    assert f"Logged: Phone call with {HOSTILE}." in shown_text(tab)
    assert_no_injected_markup(tab, "after logging")


def session_cookie(page: Page) -> dict | None:
    found = [c for c in page.context.cookies() if c["name"] == "crm_session"]
    return found[0] if found else None


def token_hashes(server) -> set[str]:
    return {row["token_hash"] for row in server.rows("SELECT token_hash FROM sessions")}


def test_the_cookie_holds_a_handle_that_rotates_never_the_session_token(tab, browser, server):
    """Test that after sign-in the cookie's value is not a session token (its SHA-256 is no sessions.token_hash),
    is SameSite=Strict, and is not Secure over plain http; that a reload keeps the sign-in and replaces the
    handle; that the replaced handle no longer signs anyone in; and that Sign out ends the current one."""
    sign_in(tab, server.url, "manager")
    first = session_cookie(tab)
    assert first is not None and first["value"]
    assert hashlib.sha256(first["value"].encode()).hexdigest() not in token_hashes(server)
    assert (first["sameSite"], first["secure"]) == ("Strict", False)

    tab.reload()
    expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
    wait_for_app(tab)
    second = session_cookie(tab)
    assert second is not None and second["value"] not in ("", first["value"])
    assert hashlib.sha256(second["value"].encode()).hexdigest() not in token_hashes(server)

    replayed = new_tab(browser)
    try:
        replayed.context.add_cookies([{**first, "sameSite": "Strict"}])
        replayed.goto(server.url)
        expect(replayed.get_by_role("textbox", name="Password", exact=True)).to_be_visible()
    finally:
        replayed.context.close()

    tab.get_by_role("button", name="Sign out").click()
    expect(tab.get_by_text("You have signed out.")).to_be_visible()
    replayed = new_tab(browser)
    try:
        replayed.context.add_cookies([{**second, "sameSite": "Strict"}])
        replayed.goto(server.url)
        expect(replayed.get_by_role("textbox", name="Password", exact=True)).to_be_visible()
    finally:
        replayed.context.close()


def test_the_cookie_is_secure_behind_an_https_proxy(browser, server):
    """Test that when a reverse proxy says the browser came over HTTPS (X-Forwarded-Proto: https), the cookie
    carries the Secure flag."""
    page = new_tab(browser, extra_http_headers={"X-Forwarded-Proto": "https"})
    try:
        sign_in(page, server.url, "manager")
        cookie = session_cookie(page)
        assert cookie is not None and cookie["secure"] is True
    finally:
        page.context.close()


def test_the_backups_page_downloads_an_archive_with_the_evidence(tab, server):
    """Test that the Backups page's download is the backup archive: a zip whose manifest lists the database and
    the evidence file of the testimonial, each with the SHA-256 of what the archive holds."""
    sign_in(tab, server.url, "ada")
    browserkit.open_page(tab, "Backups")
    name, content = browserkit.download(tab, "Download a backup")

    assert name.endswith(".zip")
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        held = {n: hashlib.sha256(archive.read(n)).hexdigest() for n in archive.namelist() if n != "manifest.json"}
    evidence = server.rows("SELECT evidence_file FROM testimonials WHERE evidence_file IS NOT NULL")
    assert sorted(held) == sorted(["database.db", *(f"evidence/{r['evidence_file']}" for r in evidence)])
    assert len(evidence) == 1
    assert manifest["files"] == held
