"""Shared fixtures: a fresh database per test, a seeded one, and the actors of each role."""

import copy
import json
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from crm import branches, contacts, db, organisations, users
from crm.access import BRANCH_MANAGER, REGIONAL_LEAD, Actor

# What Chrome on an Android phone says it is. A phone's tab (browser or AppTest) says so, as the app chooses some
# layouts by it (crm.ui.layout.on_phone).
PHONE_USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36"
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PASSWORD = "correct horse battery"


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "crm.db"


@pytest.fixture
def database(db_path: Path):
    """A new, migrated database file of its own."""
    connection = db.connect(db_path)
    yield connection
    connection.close()


@pytest.fixture
def admin(database) -> Actor:
    return users.create_first_admin(database, "ada", "Ada Admin", PASSWORD)


class World:
    """Two regions, three branches, one manager each, one lead each, and an organisation of each main type."""

    def __init__(self, database, admin: Actor):
        self.db = database
        self.admin = admin
        self.north = branches.add_region(database, admin, "North")
        self.south = branches.add_region(database, admin, "South")
        self.leeds = branches.add_branch(database, admin, "Leeds", self.north)
        self.york = branches.add_branch(database, admin, "York", self.north)
        self.bristol = branches.add_branch(database, admin, "Bristol", self.south)
        self.lead_north = users.add_user(
            database, admin, "lead.north", "Nia North", REGIONAL_LEAD, PASSWORD, region_id=self.north
        )
        self.lead_south = users.add_user(
            database, admin, "lead.south", "Sol South", REGIONAL_LEAD, PASSWORD, region_id=self.south
        )
        self.manager_leeds = users.add_user(
            database, admin, "manager.leeds", "Lee Leeds", BRANCH_MANAGER, PASSWORD, branch_id=self.leeds
        )
        self.manager_york = users.add_user(
            database, admin, "manager.york", "Yan York", BRANCH_MANAGER, PASSWORD, branch_id=self.york
        )
        self.manager_bristol = users.add_user(
            database, admin, "manager.bristol", "Bea Bristol", BRANCH_MANAGER, PASSWORD, branch_id=self.bristol
        )
        self.gp = organisations.add(
            database,
            admin,
            {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE", "postcode": "LS6 1AA", "phone": "0113 496 0001"},
        )
        self.ot = organisations.add(database, admin, {"name": "Leeds Community OT", "type_code": "COMMUNITY_THERAPY"})
        self.council = organisations.add(
            database, admin, {"name": "Bristol Council Adult Social Care", "type_code": "LA_SOCIAL_CARE"}
        )

    def contact(self, branch_id: int, name: str, organisation_id: int | None = None, **extra) -> int:
        values = {"name": name, "organisation_id": organisation_id or self.gp, "branch_id": branch_id, **extra}
        return contacts.add(self.db, self.admin, values)


def copy_database(source: Path, target: Path) -> None:
    """Copy a database file with SQLite's backup API (whole and consistent)."""
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(target)) as copied:
        original.backup(copied)


def copy_world(template: Path, built: World, target: Path) -> World:
    """A copy of a world built once per module (its six accounts take seconds of password hashing), on a file
    of its own at ``target``."""
    copy_database(template, target)
    scene = copy.copy(built)
    scene.db = db.connect(target)
    return scene


@pytest.fixture(scope="module")
def template(tmp_path_factory, request) -> tuple[Path, World]:
    """The world (regions, branches, users, organisations) built once per test module, because hashing its
    passwords is slow; a test takes a copy of its own with ``copy_world``. A module that needs more in its
    template defines its own ``template``."""
    path = tmp_path_factory.mktemp(request.module.__name__.rpartition(".")[2]) / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    database.close()
    return path, world


@pytest.fixture
def world(database, admin) -> World:
    return World(database, admin)


@pytest.fixture(scope="session")
def naughty_strings() -> list[str]:
    """The Big List of Naughty Strings, read from ../shared/data (never copied into the repo)."""
    return json.loads((SHARED_DATA / "blns.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def epraccur_path() -> Path:
    path = SHARED_DATA / "epraccur.csv"
    assert path.exists(), f"the NHS GP practice file is expected at {path}"
    return path


@pytest.fixture(autouse=True)
def plain_main_module(monkeypatch):
    """Keep ``__main__`` a plain module during each test.

    AppTest runs page scripts as ``__main__`` in the test process; a process started later with the "spawn"
    method would then re-run that page file on start-up (and crash outside Streamlit). Regression: the
    multi-process backup tests failed only when an AppTest had run earlier in the same pytest-xdist worker.
    """
    import sys
    import types

    monkeypatch.setitem(sys.modules, "__main__", types.ModuleType("__main__"))


@pytest.fixture(scope="session")
def demo_template(tmp_path_factory) -> Path:
    """A demo database (administrator ``ada`` and the demo provider, every account with PASSWORD), built once per
    test process; copy it (tests.browserkit.demo_copy) before starting a server on it."""
    from tests.browserkit import build_demo_database

    return build_demo_database(tmp_path_factory.mktemp("demo-template") / "crm.db")


@pytest.fixture(scope="module")
def browser():
    """One Chromium per test module; every test opens its own context (no shared cookies or storage). Module
    scope, not session: Playwright's sync API holds an event loop while it runs, which would break the modules
    that run asyncio themselves (the load bench, tests/test_workers.py)."""
    from playwright.sync_api import sync_playwright

    from tests.browserkit import launch

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def tab(browser):
    """A fresh browser context at desktop size, with one tab in it."""
    from tests.browserkit import new_tab

    page = new_tab(browser)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def demo_server(demo_template, tmp_path_factory):
    """A real Streamlit server on the module's own copy of the demo database."""
    from tests.browserkit import demo_copy, streamlit_server

    folder = tmp_path_factory.mktemp("demo-server")
    with streamlit_server(demo_copy(demo_template, folder), folder / "streamlit.log") as running:
        yield running
