"""The command line, run as users run it: ``python -m crm ...`` in a subprocess, with the environment it reads."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm import branches, db, users
from crm.access import COMMAND_LINE
from tests.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[1]
MISSING = "{} does not exist; create it with: python -m crm init --admin NAME"


def run(*args: str, db_path: Path | None, password: str | None = PASSWORD) -> subprocess.CompletedProcess:
    """Run ``python -m crm`` from the repository root with CRM_DB and CRM_ADMIN_PASSWORD set (or unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    if db_path is not None:
        env["CRM_DB"] = str(db_path)
    if password is not None:
        env["CRM_ADMIN_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, status: int, message: str) -> None:
    assert (result.returncode, result.stdout, result.stderr) == (status, "", f"error: {message}\n")


@pytest.fixture
def set_up(db_path: Path) -> Path:
    """A database with its administrator, a region and a branch, made in-process (faster than via the CLI)."""
    database = db.connect(db_path)
    users.create_first_admin(database, "ada", "Ada Admin", PASSWORD)
    north = branches.add_region(database, COMMAND_LINE, "North")
    branches.add_branch(database, COMMAND_LINE, "Leeds", north)
    database.close()
    return db_path


def test_init(db_path):
    """Test that init creates the database and its first administrator, who can then sign in."""
    result = run("init", "--admin", "ada", "--full-name", "Ada Admin", db_path=db_path)

    assert (result.returncode, result.stdout, result.stderr) == (0, f"{db_path}: created administrator ada\n", "")
    database = db.connect(db_path)
    assert users.sign_in(database, "ada", PASSWORD).display_name == "Ada Admin"
    database.close()


def test_init_twice_is_harmless(set_up):
    """Test that init on a database that is already set up changes nothing and says so."""
    result = run("init", "--admin", "someone", db_path=set_up)

    assert (result.returncode, result.stdout, result.stderr) == (
        0,
        f"{set_up}: schema up to date; already set up, nothing else to do\n",
        "",
    )
    database = db.connect(set_up)
    assert [u["username"] for u in users.list_users(database, COMMAND_LINE)] == ["ada"]
    database.close()


def test_init_demo(db_path):
    """Test that init --demo loads the demo provider and lists the demo accounts; a second --demo is refused."""
    result = run("init", "--admin", "ada", "--demo", db_path=db_path)

    assert (result.returncode, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    database = db.connect(db_path)
    counts = {t: database.table(t).count for t in ("regions", "branches", "organisations", "contacts", "users")}
    assert lines[0] == f"{db_path}: created administrator ada"
    assert lines[1].startswith("demo data: 3 regions, 12 branches, ")
    for table in ("organisations", "contacts"):
        assert f" {counts[table]} {table}" in lines[1]
    assert lines[1].endswith(", 15 users")
    assert counts["users"] == 16
    assert lines[2] == "demo accounts (same password): " + ", ".join(
        u["username"] for u in database.execute_returning_dicts("SELECT username FROM users WHERE id > 1 ORDER BY id")
    )
    assert len(lines) == 3
    database.close()

    again = run("init", "--admin", "ada", "--demo", db_path=db_path)

    assert_one_line_error(again, 2, "this database already has users; demo data only goes into a new database")


def test_init_short_password(db_path):
    """Test that a password too short to use is refused in one line, and no administrator is made."""
    result = run("init", "--admin", "ada", db_path=db_path, password="short")

    assert_one_line_error(result, 1, "Password: must be at least 10 characters long.")
    database = db.connect(db_path)
    assert users.count(database) == 0
    database.close()


def test_init_without_password_and_terminal(db_path):
    """Test that with no CRM_ADMIN_PASSWORD and no terminal to ask on, init says what to do."""
    result = run("init", "--admin", "ada", db_path=db_path, password=None)

    assert_one_line_error(
        result, 2, "no password: set CRM_ADMIN_PASSWORD or run this in a terminal to be asked for one"
    )


def test_users_add_list_disable_enable(set_up):
    """Test adding a branch manager and a regional lead, listing everyone, disabling and re-enabling."""
    manager = run(
        "users",
        "add",
        "lee",
        "--role",
        "branch_manager",
        "--branch",
        "Leeds",
        "--full-name",
        "Lee Leeds",
        db_path=set_up,
    )
    lead = run("users", "add", "nia", "--role", "regional_lead", "--region", "north", db_path=set_up)

    assert (manager.returncode, manager.stdout, manager.stderr) == (0, "added branch manager lee\n", "")
    assert (lead.returncode, lead.stdout, lead.stderr) == (0, "added regional lead nia\n", "")

    disabled = run("users", "disable", "lee", db_path=set_up)
    assert (disabled.returncode, disabled.stdout, disabled.stderr) == (0, "disabled lee\n", "")

    listing = run("users", "list", db_path=set_up)
    assert (listing.returncode, listing.stderr) == (0, "")
    assert listing.stdout.splitlines() == [
        "user  name       role            scope  status    last sign-in",
        "ada   Ada Admin  Administrator   all    active    never",
        "lee   Lee Leeds  Branch manager  Leeds  disabled  never",
        "nia   nia        Regional lead   North  active    never",
    ]

    enabled = run("users", "enable", "lee", db_path=set_up)
    assert (enabled.returncode, enabled.stdout, enabled.stderr) == (0, "enabled lee\n", "")
    database = db.connect(set_up)
    assert users.sign_in(database, "lee", PASSWORD).branch_id == 1
    database.close()


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["users", "add", "bob", "--role", "branch_manager", "--branch", "Nowhere"], 1, "No branch called “Nowhere”."),
        (["users", "add", "bob", "--role", "regional_lead", "--region", "Atlantis"], 1, "No region called “Atlantis”."),
        (["users", "add", "bob", "--role", "branch_manager"], 1, "Branch: is required for a branch manager."),
        (["users", "add", "ada", "--role", "admin"], 1, "User name “ada” is already taken."),
        (["users", "add", "bo b", "--role", "admin"], 1, "User name: cannot contain spaces (try a dot: jo.bloggs)."),
        (["users", "disable", "ghost"], 1, "No user called “ghost”."),
        (["users", "enable", "ghost"], 1, "No user called “ghost”."),
    ],
)
def test_user_mistakes_are_one_line(set_up, args, status, message):
    """Test that a mistake gives one line on stderr, no traceback, a non-zero status and no new user."""
    result = run(*args, db_path=set_up)

    assert_one_line_error(result, status, message)
    database = db.connect(set_up)
    assert users.count(database) == 1
    database.close()


def test_check_good_database(set_up):
    """Test that check on a healthy database prints the row counts and ok, with exit status 0."""
    result = run("check", db_path=set_up)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.splitlines() == [
        "regions: 1 rows",
        "branches: 1 rows",
        "organisations: 0 rows",
        "contacts: 0 rows",
        "users: 1 rows",
        "audit_log: 3 rows",
        "ok",
    ]


def test_check_missing_file(tmp_path):
    """Test that check on a missing file says so in one line, and does not create it."""
    path = tmp_path / "typo.db"

    result = run("check", db_path=path)

    assert_one_line_error(result, 2, MISSING.format(path))
    assert not path.exists()


def test_check_corrupt_file(tmp_path):
    """Test that check on a file that is not a database fails with one line and no traceback."""
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"not a database at all " * 300 + bytes(range(256)) * 40)

    result = run("check", db_path=path)

    assert_one_line_error(result, 1, f"cannot use the database {path}: file is not a database")


def test_check_truncated_database(set_up, tmp_path):
    """Test that a database cut short (a half-copied file) is reported, not crashed on."""
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(set_up.read_bytes()[:8192])

    result = run("check", db_path=truncated)

    assert_one_line_error(result, 1, f"cannot use the database {truncated}: database disk image is malformed")


def test_users_list_does_not_create_a_missing_database(tmp_path):
    """Test that listing users of a file that does not exist reports it rather than creating an empty database.

    Regression: users list (and disable/enable) called db.connect, which silently created and migrated a new
    file at a mistyped path; followups already refuses a missing file the same way check does.
    """
    path = tmp_path / "typo.db"

    result = run("users", "list", db_path=path)

    assert_one_line_error(result, 2, MISSING.format(path))
    assert not path.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["--db", "{path}", "check"],
        ["check", "--db", "{path}"],
        ["--db", "{path}", "users", "list"],
        ["users", "--db", "{path}", "list"],
        ["users", "list", "--db", "{path}"],
    ],
)
def test_db_option_before_or_after_command(set_up, tmp_path, args):
    """Test that --db is honoured wherever it is given, and wins over CRM_DB."""
    elsewhere = tmp_path / "elsewhere.db"

    result = run(*[a.format(path=set_up) for a in args], db_path=elsewhere)

    assert (result.returncode, result.stderr) == (0, "")
    assert ("ok" if "check" in args else "ada   Ada Admin") in result.stdout
    assert not elsewhere.exists()


@pytest.mark.parametrize(
    "args",
    [
        ["users", "add", "bob", "--role", "admin", "--password", "a good long password"],
        ["users", "add", "bob", "--role", "admin", "--password=a good long password"],
        ["init", "--admin", "ada", "--password", "a good long password"],
    ],
)
def test_no_password_on_the_command_line(db_path, args):
    """Test that there is no way to give a password as an argument (it would land in shell history)."""
    result = run(*args, db_path=db_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert "error: unrecognized arguments: " in result.stderr
    assert not db_path.exists()


@pytest.mark.parametrize("command", [["init"], ["users", "add"]])
def test_help_offers_no_password_option(db_path, command):
    """Test that the help of the commands that set passwords offers no --password option."""
    result = run(*command, "--help", db_path=db_path)

    assert result.returncode == 0
    assert "--password" not in result.stdout
    assert "--db" in result.stdout
