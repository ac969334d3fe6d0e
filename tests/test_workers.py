"""Several workers behind nginx (crm/workers.py, ./scripts/start --workers N), and the load benchmark's client.

One module-scoped pair of workers behind the proxy serves every test here; the load run is a few users for a
few seconds (the real measurement runs only from ``python -m crm loadbench``).
"""

import asyncio
import urllib.request

import pytest
from playwright.sync_api import expect, sync_playwright

from crm import db, loadbench, users, workers
from crm.handles import Handles
from tests.browserkit import CHROMIUM, CHROMIUM_ARGS, WAIT_MS
from tests.conftest import PASSWORD
from tests.test_browser import _seed

pytestmark = pytest.mark.browser  # nginx is needed too: ./scripts/test installs it, as it does chromium


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """Two app workers on one database file, nginx in front; the load bench's floor page switched on."""
    folder = tmp_path_factory.mktemp("workers")
    db_path = folder / "crm.db"
    _seed(db_path)
    with workers.serve(db_path, workers=2, folder=folder / "run", env={loadbench.FLOOR_ENV: "1"}) as running:
        running.db_path = db_path  # type: ignore[attr-defined]
        yield running


def _worker_of(url: str, sticky: str) -> str:
    """The worker (its loopback address) that the proxy sends a browser with this crm_worker cookie to."""
    request = urllib.request.Request(url + "/", headers={"Cookie": f"{workers.STICKY_COOKIE}={sticky}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.headers[workers.WORKER_HEADER]


def _sticky_values(cluster) -> dict[str, str]:
    """A crm_worker cookie value for each worker: {worker address: cookie value}."""
    found: dict[str, str] = {}
    for number in range(200):
        found.setdefault(_worker_of(cluster.url, f"probe{number}"), f"probe{number}")
        if len(found) == len(cluster.worker_urls):
            return found
    raise AssertionError(f"the proxy sent 200 browsers to only {sorted(found)}")


def test_that_a_sign_in_through_the_proxy_survives_a_reload_on_the_same_and_on_the_other_worker(cluster):
    """Test that a branch manager signs in through nginx, reloads and is still signed in on the same worker
    (the proxy's cookie keeps the browser there), and that when the browser is moved to the other worker the
    sign-in holds there too (sessions are in the database, not in a worker's memory)."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context()
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            page.goto(cluster.url)
            page.get_by_role("textbox", name="User name").fill("manager.leeds")
            page.get_by_role("textbox", name="Password", exact=True).fill(PASSWORD)
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()
            page.get_by_test_id("stSidebarNav").get_by_role("link", name="Contacts", exact=True).click()
            expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()

            sticky = next(c["value"] for c in context.cookies() if c["name"] == workers.STICKY_COOKIE)
            first = _worker_of(cluster.url, sticky)
            response = page.reload()
            assert response is not None and response.headers[workers.WORKER_HEADER.lower()] == first
            expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()

            other_worker, other_value = next((w, v) for w, v in _sticky_values(cluster).items() if w != first)
            context.add_cookies([{"name": workers.STICKY_COOKIE, "value": other_value, "url": cluster.url}])
            response = page.reload()
            assert response is not None and response.headers[workers.WORKER_HEADER.lower()] == other_worker
            expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
            expect(page.get_by_role("button", name="Sign out")).to_be_visible()
        finally:
            browser.close()


def test_that_interactions_logged_through_both_workers_are_all_in_the_database(cluster):
    """Test that a branch manager logging interactions through the Interactions page's form, from one tab on
    each worker at once, finds every one of them in the database afterwards (one file, two processes)."""
    database = db.connect(cluster.db_path)
    try:
        manager = users.get(
            database, database.execute("SELECT id FROM users WHERE username = 'manager.leeds'").fetchone()[0]
        )
        tokens = [Handles().issue(database, users.start_session(database, manager), 3600) for _ in cluster.worker_urls]
    finally:
        database.close()
    by_worker = _sticky_values(cluster)

    async def log_from(token: str, sticky: str, label: str) -> list[bool]:
        tab = loadbench.Tab(cluster.url, f"crm_session={token}; {workers.STICKY_COOKIE}={sticky}")
        try:
            opened = await tab.rerun()
            assert opened.error is None, opened.error
            confirmed = []
            for number in range(1, 4):
                page = await tab.rerun(opened.pages["Interactions"])
                assert page.error is None, page.error
                # A click on "Log an interaction" opens the section the form is drawn in.
                section = await tab.rerun(
                    opened.pages["Interactions"], widget_states=loadbench._log_section_open(page.widgets)
                )
                assert section.error is None, section.error
                summary = f"Through {label} number {number}"
                states = loadbench._log_form_states(section.widgets, summary)
                assert states is not None, sorted(page.widgets)
                saved = await tab.rerun(opened.pages["Interactions"], widget_states=states, look_for=summary.encode())
                assert saved.error is None, saved.error
                confirmed.append(saved.saw)
            return confirmed
        finally:
            await tab.close()

    async def both() -> list[list[bool]]:
        return await asyncio.gather(
            *(
                log_from(token, sticky, f"worker {n}")
                for n, (token, sticky) in enumerate(zip(tokens, by_worker.values(), strict=True), start=1)
            )
        )

    assert asyncio.run(both()) == [[True, True, True], [True, True, True]]
    database = db.connect(cluster.db_path)
    try:
        rows = database.execute_returning_dicts(
            "SELECT summary, branch_id, created_by FROM interactions WHERE summary LIKE 'Through worker %' "
            "ORDER BY summary"
        )
    finally:
        database.close()
    assert rows == [
        {"summary": f"Through worker {w} number {n}", "branch_id": manager.branch_id, "created_by": manager.id}
        for w in (1, 2)
        for n in (1, 2, 3)
    ]


def test_that_the_load_bench_times_pages_and_the_floor_with_no_errors_and_no_lost_writes(cluster, monkeypatch):
    """Test that a short load run (3 users of mixed roles, 6 seconds, every manager writing) through the proxy
    times the floor and the app's pages, reports no errors, and finds every confirmed write in the database."""
    monkeypatch.setattr(loadbench, "WRITE_TURNS", 2)  # the writer logs on every second turn, not every third
    people = loadbench.prepare_users(cluster.db_path, 3, writers_every=1, seed=7)
    assert sorted(p.role for p in people) == ["admin", "branch_manager", "regional_lead"]
    report = loadbench.drive(cluster.url, cluster.db_path, people, 2, seconds=6, think=0.3, seed=7)
    assert dict(report.tally.errors) == {}
    assert report.tally.times[loadbench.FLOOR]
    assert set(report.tally.times) - {loadbench.FLOOR, loadbench.WRITE}
    assert report.tally.attempted >= 1
    assert report.tally.attempted == report.tally.confirmed == report.found
