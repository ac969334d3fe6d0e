"""What every browser test needs: a real `streamlit run app.py` on a free local port, Debian's Chromium driven by
Playwright, signing in through the form, waiting for a page to settle, and pressing a download button the way a
person does (a while after the page was drawn) to get the file it gives.

Fixtures built on these live in the test modules (or tests/conftest.py); this module holds no pytest state.
"""

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Download, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from crm import db, demo, users
from tests.conftest import PASSWORD, PHONE_USER_AGENT, copy_database

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT_MS = 30_000  # Streamlit renders asynchronously, and argon2 makes sign-in slow on purpose
SERVER_START_SECONDS = 60
SETTLE_MS = 3_000  # how long a person looks at a page before pressing a download button
DESKTOP = {"width": 1440, "height": 900}
PHONE = {"width": 390, "height": 844}

expect.set_options(timeout=WAIT_MS)


@dataclass
class Server:
    url: str
    db_path: Path
    log: Path

    def connect(self):
        """A connection of the test's own to the server's database file (close it when done)."""
        return db.connect(self.db_path)

    def rows(self, sql: str, params: list | tuple = ()) -> list[dict]:
        """Rows of a query on the server's database, read on a connection of their own."""
        database = self.connect()
        try:
            return database.execute_returning_dicts(sql, params)
        finally:
            database.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"streamlit exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    pytest.fail(f"streamlit did not become healthy within {SERVER_START_SECONDS}s:\n{log.read_text()}")


@contextmanager
def streamlit_server(db_path: Path, log: Path, env: dict[str, str] | None = None) -> Iterator[Server]:
    """`streamlit run app.py` on a free local port against ``db_path``; stopped afterwards."""
    port = free_port()
    environment = {**os.environ, "CRM_DB": str(db_path), **(env or {})}
    if not env or "CRM_IDLE_MINUTES" not in env:
        environment.pop("CRM_IDLE_MINUTES", None)
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url, process, log)
        yield Server(url, db_path, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def build_demo_database(path: Path) -> Path:
    """A new database with the administrator ``ada`` and the demo provider; every account uses PASSWORD."""
    database = db.connect(path)
    try:
        admin = users.create_first_admin(database, "ada", "Ada Admin", PASSWORD)
        demo.load(database, admin, PASSWORD)
    finally:
        database.close()
    return path


def demo_copy(template: Path, folder: Path) -> Path:
    """A copy of a demo database built once (loading demo data hashes ~40 passwords), in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "crm.db"
    copy_database(template, target)
    return target


def launch(playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


def new_tab(browser: Browser, viewport: dict | None = None, **options) -> Page:
    """A tab in a fresh browser context (no cookies, no storage), downloads accepted; at PHONE size, it says it is
    a phone's browser."""
    if viewport == PHONE:
        options.setdefault("user_agent", PHONE_USER_AGENT)
    context = browser.new_context(viewport=viewport or DESKTOP, accept_downloads=True, **options)
    context.set_default_timeout(WAIT_MS)
    return context.new_page()


def wait_for_app(page: Page) -> None:
    """Wait until Streamlit has finished running the script (its "Running..." indicator is gone)."""
    expect(page.locator('[data-testid="stApp"]')).to_be_visible(timeout=WAIT_MS)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && document.querySelector('[data-testid=\"stAppViewContainer\"]')",
        timeout=WAIT_MS,
    )


def choose(page: Page, label: str, option: str, within=None) -> None:
    """Pick ``option`` in the select box labelled ``label`` (click it, click the option)."""
    box = (within if within is not None else page).get_by_role("combobox", name=label, exact=True)
    wait_for_app(page)  # a box clicked while the script still runs can be redrawn, and its list closed, under us
    wanted = page.get_by_role("option", name=option, exact=True)
    for attempt in range(3):
        box.click()
        # Long lists scroll: typing narrows them to the option. (While the list is open the rest of the page is
        # hidden from the accessibility tree, so the keyboard types into the box that has the focus.)
        page.keyboard.press("ControlOrMeta+a")
        page.keyboard.type(option)
        try:
            wanted.click(timeout=5_000)
            break
        except PlaywrightTimeoutError:
            if attempt == 2:
                raise
            page.keyboard.press("Escape")
            wait_for_app(page)
    # While the rerun the choice caused is running, Streamlit can show the box twice: the new one, and the last run's
    # (same widget, same value) until the run ends, when a message above it has gone since. Either shows the choice.
    expect(box.first).to_have_value(option)
    wait_for_app(page)


def sign_in(page: Page, url: str, username: str, password: str = PASSWORD, path: str = "") -> None:
    """Sign in through the form (at ``url/path``) and wait for the signed-in app."""
    page.goto(f"{url}/{path}" if path else url)
    page.get_by_role("textbox", name="User name").fill(username)
    page.get_by_role("textbox", name="Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible(timeout=WAIT_MS)
    wait_for_app(page)


def open_page(page: Page, title: str) -> None:
    """Open a page from the sidebar menu by its title and wait for it to settle."""
    nav = page.get_by_test_id("stSidebarNav")
    more = nav.get_by_test_id("stSidebarNavViewButton")
    # A long menu is folded ("View N more"); once unfolded the same button says "View less": leave it then.
    if more.count() and more.first.is_visible() and "more" in more.first.inner_text():
        more.first.click()
    nav.get_by_role("link", name=title, exact=True).click()
    wait_for_app(page)


def assert_no_exception(page: Page) -> None:
    """No Streamlit exception box on the page."""
    boxes = page.get_by_test_id("stException")
    assert boxes.count() == 0, boxes.first.inner_text()


def download(page: Page, label: str | re.Pattern, *, settle_ms: int = SETTLE_MS, within=None) -> tuple[str, bytes]:
    """Press the download button ``label`` a while after the page settled, as a person does; returns the file's
    suggested name and its bytes. Fails the test when no file comes."""
    wait_for_app(page)
    page.wait_for_timeout(settle_ms)
    scope = within if within is not None else page
    button = scope.get_by_test_id("stDownloadButton").get_by_role("button", name=label)
    with page.expect_download(timeout=WAIT_MS) as info:
        button.click()
    got: Download = info.value
    path = got.path()
    assert path is not None, f"the download {label!r} gave no file ({got.failure()})"
    return got.suggested_filename, Path(path).read_bytes()


def download_all(page: Page, *, settle_ms: int = SETTLE_MS) -> list[tuple[str, str, bytes]]:
    """Press every visible download button on the page (after it settled); (label, file name, bytes) each."""
    wait_for_app(page)
    page.wait_for_timeout(settle_ms)
    buttons = page.get_by_test_id("stDownloadButton").get_by_role("button")
    files = []
    for index in range(buttons.count()):
        button = buttons.nth(index)
        if not button.is_visible():
            continue
        label = button.inner_text().strip()
        with page.expect_download(timeout=WAIT_MS) as info:
            button.click()
        got: Download = info.value
        path = got.path()
        assert path is not None, f"the download {label!r} gave no file ({got.failure()})"
        files.append((label, got.suggested_filename, Path(path).read_bytes()))
    return files


def retry(check: Callable[[], bool], seconds: float = 10) -> bool:
    """Poll ``check`` until it holds or ``seconds`` pass (for effects a browser action has on the database)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return check()
