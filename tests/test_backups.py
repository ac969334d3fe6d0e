"""Backups and restores: a consistent copy taken while several processes write, restores that refuse a damaged or
newer file and leave the live database untouched, a copy kept before every schema upgrade, and the command line."""

import multiprocessing
import os
import re
import sqlite3
import subprocess
import sys
import traceback
import zipfile
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from crm import audit, backups, branches, clock, contacts, db, organisations, schema, users
from crm.access import COMMAND_LINE
from crm.backups import BackupError
from crm.errors import PermissionDenied
from tests.conftest import PASSWORD

REPO = Path(__file__).resolve().parents[1]
FROZEN = datetime(2026, 3, 14, 9, 26, 53, tzinfo=UTC)
STAMP = "20260314-092653"  # FROZEN as backup and restore put it in file names
OLD_STEP = "0005_coverage_history"  # an "older release" is a database with every step before this one

WRITERS = 4
FIRST_BATCH = 10  # contacts each writer commits before the backup may begin
MAX_CONTACTS_EACH = 5000  # a bound on each writer, should the stop signal never come
GARBAGE = b"This is not a database, just some bytes.\n" * 200


def dump(connection) -> dict[str, list[tuple]]:
    """Every row of every table (sqlite3 connection or sqlite-utils Database), for whole-database comparisons."""
    names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: sorted(connection.execute(f"SELECT * FROM [{name}]").fetchall(), key=repr) for name in names}


def dump_file(path: Path) -> dict[str, list[tuple]]:
    with closing(sqlite3.connect(path)) as connection:
        return dump(connection)


def integrity(path: Path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as connection:
        return connection.execute("PRAGMA integrity_check").fetchall()


def applied_steps(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as connection:
        return [r[0] for r in connection.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]


def columns(path: Path, table: str) -> list[str]:
    with closing(sqlite3.connect(path)) as connection:
        return [r[1] for r in connection.execute(f"PRAGMA table_info([{table}])")]


def database_in(archive: Path) -> Path:
    """The database file inside a backup archive, unpacked beside it (for reading with sqlite3)."""
    unpacked = archive.with_name(archive.name + ".database.db")
    with zipfile.ZipFile(archive) as opened:
        unpacked.write_bytes(opened.read(backups.DATABASE))
    return unpacked


def listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def region_names(path: Path) -> list[str]:
    with closing(sqlite3.connect(path)) as connection:
        return [r[0] for r in connection.execute("SELECT name FROM regions ORDER BY id")]


@pytest.fixture
def frozen(monkeypatch):
    """The clock stopped at FROZEN, so backup and restore file names are known in advance."""
    monkeypatch.setattr(clock, "now", lambda: FROZEN)


@pytest.fixture
def offered(tmp_path: Path) -> Path:
    """A folder, away from the live database, for files offered for restore."""
    folder = tmp_path / "offered"
    folder.mkdir()
    return folder


@pytest.fixture
def good_backup(world, offered: Path) -> Path:
    """A backup of the world with two contacts as older releases wrote them: a plain database file (VACUUM INTO),
    which restore still takes."""
    world.contact(world.leeds, "Priya Patel", job_title="Practice Manager", email="priya@example.nhs.uk")
    world.contact(world.bristol, "Sam Social", organisation_id=world.council, phone="0117 496 0000")
    target = offered / "good.db"
    world.db.execute("VACUUM INTO ?", [str(target)])
    return target


# backup(): a consistent copy, admins only, audited, never overwriting a file.


def test_backup_is_a_copy_of_the_live_database(world, tmp_path, frozen):
    """Test that a backup holds every row of every table as it stood, passes the integrity check, and is audited
    (action "backup", the file's name, the administrator) in the live database only."""
    world.contact(world.leeds, "Priya Patel", email="priya@example.nhs.uk")
    before = dump(world.db)
    target = tmp_path / "backup.db"

    returned = backups.backup(world.db, world.admin, target)

    assert returned == target
    assert integrity(database_in(target)) == [("ok",)]
    assert dump_file(database_in(target)) == before
    entries = audit.entries(world.db, "database")
    assert entries == [
        {
            "id": entries[0]["id"],
            "at": "2026-03-14T09:26:53Z",
            "user_id": world.admin.id,
            "username": "ada",
            "action": "backup",
            "table_name": "database",
            "row_id": None,
            "changes": {"file": "backup.db"},
        }
    ]


def test_backup_refuses_an_existing_file(world, tmp_path):
    """Test that a backup onto a file that already exists is refused with the file's name, leaving it as it was
    and writing no audit entry."""
    target = tmp_path / "precious.db"
    target.write_bytes(b"someone's other file")

    with pytest.raises(BackupError) as caught:
        backups.backup(world.db, world.admin, target)

    assert str(caught.value) == f"{target} already exists; choose a new file name."
    assert target.read_bytes() == b"someone's other file"
    assert audit.entries(world.db, "database") == []


def test_backup_refuses_a_missing_folder(world, tmp_path):
    """Test that a backup into a folder that does not exist is refused with the folder's name, creating nothing."""
    target = tmp_path / "no such folder" / "backup.db"

    with pytest.raises(BackupError) as caught:
        backups.backup(world.db, world.admin, target)

    assert str(caught.value) == f"The folder {tmp_path / 'no such folder'} does not exist."
    assert not target.parent.exists()
    assert audit.entries(world.db, "database") == []


@pytest.mark.parametrize("who", ["manager_leeds", "lead_north"])
def test_backup_is_for_administrators_only(world, tmp_path, who):
    """Test that a branch manager or regional lead asking for a backup is refused, and no file is written."""
    target = tmp_path / "backup.db"

    with pytest.raises(PermissionDenied) as caught:
        backups.backup(world.db, getattr(world, who), target)

    assert str(caught.value) == "Your role does not allow this."
    assert not target.exists()
    assert audit.entries(world.db, "database") == []


def _write_contacts(
    path: str, worker: int, branch_id: int, organisation_id: int, start, stop, progress, results
) -> None:
    """One writer process: add contacts one transaction at a time until told to stop; report the ids committed."""
    added: list[int] = []
    errors: list[str] = []
    try:
        database = db.connect(path)
        start.wait(timeout=60)
        while not stop.is_set() and len(added) < MAX_CONTACTS_EACH:
            values = {
                "name": f"Writer {worker} Person {len(added)}",
                "organisation_id": organisation_id,
                "branch_id": branch_id,
                "email": f"w{worker}.p{len(added)}@example.nhs.uk",
            }
            added.append(contacts.add(database, COMMAND_LINE, values))
            if len(added) == FIRST_BATCH:
                progress.put(worker)
        database.close()
    except Exception:  # reported to the parent: a test failure, not a hung test
        errors.append(traceback.format_exc())
        progress.put(worker)
    results.put((worker, added, errors))


def test_backup_while_several_processes_write(tmp_path):
    """Test that a backup taken while 4 processes keep adding contacts passes the integrity check, holds every
    contact committed before it began, holds only committed contacts, each exactly as stored, and holds each
    contact's audit entry with it (whole transactions, never half of one)."""
    path = tmp_path / "crm.db"
    setup = db.connect(path)
    north = branches.add_region(setup, COMMAND_LINE, "North")
    branch_ids = [branches.add_branch(setup, COMMAND_LINE, name, north) for name in ("Leeds", "York")]
    organisation_id = organisations.add(setup, COMMAND_LINE, {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE"})

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(WRITERS)
    stop = context.Event()
    progress = context.Queue()
    results = context.Queue()
    processes = [
        context.Process(
            target=_write_contacts,
            args=(str(path), worker, branch_ids[worker % 2], organisation_id, start, stop, progress, results),
        )
        for worker in range(WRITERS)
    ]
    for process in processes:
        process.start()
    try:
        for _ in processes:
            progress.get(timeout=120)  # every writer is under way
        with closing(sqlite3.connect(path)) as watcher:
            committed_before = {r[0] for r in watcher.execute("SELECT id FROM contacts")}
        target = backups.backup(setup, COMMAND_LINE, tmp_path / "backup.db")
    finally:
        stop.set()
        reports = [results.get(timeout=120) for _ in processes]
        for process in processes:
            process.join(timeout=30)

    assert [errors for _, _, errors in sorted(reports, key=lambda r: r[0])] == [[]] * WRITERS
    assert [process.exitcode for process in processes] == [0] * WRITERS
    committed = {contact_id for _, added, _ in reports for contact_id in added}
    assert len(committed_before) >= WRITERS * FIRST_BATCH
    assert integrity(database_in(target)) == [("ok",)]
    with closing(sqlite3.connect(database_in(target))) as copy:
        in_copy = {r[0]: r for r in copy.execute("SELECT * FROM contacts")}
        audited = {r[0] for r in copy.execute("SELECT row_id FROM audit_log WHERE table_name = 'contacts'")}
    live = {r[0]: r for r in setup.execute("SELECT * FROM contacts")}
    setup.close()
    assert sorted(committed_before - set(in_copy)) == []
    assert sorted(set(in_copy) - committed) == []
    assert in_copy == {contact_id: live[contact_id] for contact_id in in_copy}
    assert audited == set(in_copy)
    assert sorted(live) == sorted(committed)


# check() and restore(): refuse anything that is not a sound Partner CRM database of a schema this app knows.


def _garbage(good: Path, target: Path) -> None:
    target.write_bytes(GARBAGE)


def _page_header_overwritten(good: Path, target: Path) -> None:
    """A real backup with the first bytes of its middle page (a b-tree page header) overwritten."""
    data = bytearray(good.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    middle = (len(data) // page_size // 2) * page_size
    data[middle : middle + 8] = b"\xff" * 8
    target.write_bytes(bytes(data))


def _index_entry_changed(good: Path, target: Path) -> None:
    """A real backup whose unique index on user names says "adb" where the users table says "ada"."""
    with closing(sqlite3.connect(good)) as connection:
        page_size = connection.execute("PRAGMA page_size").fetchone()[0]
        root = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'sqlite_autoindex_users_1'"
        ).fetchone()[0]
    data = bytearray(good.read_bytes())
    page = (root - 1) * page_size
    at = data.index(b"ada", page, page + page_size)
    data[at : at + 3] = b"adb"
    target.write_bytes(bytes(data))


def _newer_schema(good: Path, target: Path) -> None:
    """A real backup made by a later release, with a schema step this one does not know."""
    target.write_bytes(good.read_bytes())
    with closing(sqlite3.connect(target)) as connection, connection:
        connection.execute(
            "INSERT INTO _sqlite_migrations (migration_set, name, applied_at) "
            "VALUES ('crm', '9999_later_release', '2027-01-01 09:00:00.000000+00:00')"
        )


def _another_database(good: Path, target: Path) -> None:
    with closing(sqlite3.connect(target)) as connection, connection:
        connection.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        connection.execute("INSERT INTO notes (body) VALUES ('shopping list')")


def _empty_file(good: Path, target: Path) -> None:
    target.write_bytes(b"")


def _nothing(good: Path, target: Path) -> None:
    pass


BAD_FILES = [
    (_garbage, "The file is not a database this app can read (file is not a database)."),
    (_page_header_overwritten, "The file is not a database this app can read (database disk image is malformed)."),
    (_index_entry_changed, "The file is damaged: row 1 missing from index sqlite_autoindex_users_1"),
    (
        _newer_schema,
        "The file comes from a newer version of the app (schema steps 9999_later_release); upgrade the app first.",
    ),
    (_another_database, "The file is an SQLite database but not a Partner CRM one."),
    (_empty_file, "The file is an SQLite database but not a Partner CRM one."),
    (_nothing, "{path} does not exist."),
]


@pytest.mark.parametrize("make, message", BAD_FILES, ids=[make.__name__.strip("_") for make, _ in BAD_FILES])
def test_restore_refuses_a_bad_file(world, good_backup, db_path, offered, make, message):
    """Test that a file that is damaged, not a database, not a Partner CRM one, from a newer schema or missing is
    refused with a message saying which, and that the live database is left exactly as it was, with no copy of
    it kept aside."""
    bad = offered / "offered.db"
    make(good_backup, bad)
    before, files_before = dump(world.db), listing(db_path.parent)

    assert backups.check(bad) == [message.format(path=bad)]
    with pytest.raises(BackupError) as caught:
        backups.restore(db_path, bad)

    assert str(caught.value) == message.format(path=bad)
    assert dump(world.db) == before
    assert dump_file(db_path) == before
    assert listing(db_path.parent) == files_before
    assert [name for name in listing(db_path.parent) if ".replaced-" in name] == []


def test_restore_refuses_a_schema_that_is_not_utf8(world, good_backup, db_path, offered):
    """Test that a backup whose schema text holds bytes that are not UTF-8 is refused as unreadable, the live
    database untouched. Regression: SQLite's error message quoted the bytes, and the UnicodeDecodeError raised
    while reading it escaped check() and restore() (a traceback on the command line)."""
    data = bytearray(good_backup.read_bytes())
    at = data.index(b"CREATE TABLE interaction_kinds")
    at = data.index(b"DEFAULT 100", at) + len(b"DEFAULT 1")
    data[at : at + 2] = b"\xff\xfe"  # "1\xff\xfe": an unrecognised token, which SQLite quotes in its error
    bad = offered / "offered.db"
    bad.write_bytes(bytes(data))
    before, files_before = dump(world.db), listing(db_path.parent)

    with pytest.raises(BackupError) as caught:
        backups.restore(db_path, bad)

    assert str(caught.value).startswith("The file is not a database this app can read (")
    assert dump(world.db) == before
    assert listing(db_path.parent) == files_before


def test_good_restore(world, good_backup, db_path, frozen):
    """Test that a restore makes the live database hold exactly the backup's rows, keeps the database it replaced
    beside it as crm.replaced-<date>-<time>.db with the old rows, and that a connection open all along sees the
    restored rows."""
    world.contact(world.york, "Added After The Backup", organisation_id=world.ot)
    world.db.execute("DELETE FROM contacts WHERE name = 'Priya Patel'")
    replaced = dump(world.db)
    restored = dump_file(good_backup)
    assert replaced != restored

    kept = backups.restore(db_path, good_backup)

    assert kept == db_path.parent / f"crm.replaced-{STAMP}.db"
    assert dump_file(kept) == replaced
    assert integrity(kept) == [("ok",)]
    assert dump_file(db_path) == restored
    assert dump(world.db) == restored
    assert [r[0] for r in world.db.execute("SELECT name FROM contacts ORDER BY id")] == ["Priya Patel", "Sam Social"]
    assert integrity(db_path) == [("ok",)]
    reopened = db.connect(db_path)
    assert dump(reopened) == restored
    assert users.sign_in(reopened, "manager.leeds", PASSWORD).username == "manager.leeds"
    reopened.close()


def test_restore_of_an_older_backup_then_upgrades(db_path, tmp_path, frozen):
    """Test that a backup from an older release restores, and the next connection upgrades it keeping its rows
    (with a copy of the restored database taken before the upgrade)."""
    old = tmp_path / "offered" / "old.db"
    old.parent.mkdir()
    raw = Database(old)
    raw.execute("PRAGMA foreign_keys = ON")
    schema.migrations.apply(raw, stop_before=OLD_STEP)
    raw.execute("INSERT INTO regions (id, name, created_at) VALUES (7, 'Old North', '2025-01-01T09:00:00Z')")
    raw.close()
    db.connect(db_path).close()

    backups.restore(db_path, old)
    upgraded = db.connect(db_path)

    assert schema.pending(upgraded) == []
    assert [tuple(r) for r in upgraded.execute("SELECT id, name FROM regions")] == [(7, "Old North")]
    upgraded.close()
    assert sorted(p.name for p in db_path.parent.glob("crm.*.db")) == [
        f"crm.before-{OLD_STEP}-{STAMP}.db",
        f"crm.replaced-{STAMP}.db",
    ]


@pytest.mark.parametrize("name", ["backup #2.db", "backup?.db", "backup%41.db"])
def test_restore_whatever_the_file_is_called(world, good_backup, db_path, offered, name):
    """Test that a backup restores whatever characters its file name holds. Regression: check() and restore() put
    the path into an SQLite URI ("file:{path}?mode=ro") unescaped, so "#" and "?" cut the name short and "%41"
    was decoded, and a sound backup was refused or a different file read."""
    renamed = offered / name
    renamed.write_bytes(good_backup.read_bytes())
    restored = dump_file(good_backup)

    assert backups.check(renamed) == []
    backups.restore(db_path, renamed)

    assert dump_file(db_path) == restored
    assert listing(offered) == sorted(["good.db", name])  # and no stray file made under a shortened name


# before_upgrade(): a copy of the database before a schema upgrade changes it.


def _old_database(path: Path) -> dict[str, list[tuple]]:
    """A database as an older release left it (every step before OLD_STEP) holding a region; returns its rows."""
    raw = Database(path)
    raw.execute("PRAGMA foreign_keys = ON")
    raw.execute("PRAGMA journal_mode = WAL")  # as crm.db.connect has left every database since the first release
    schema.migrations.apply(raw, stop_before=OLD_STEP)
    raw.execute("INSERT INTO regions (id, name, created_at) VALUES (1, 'North', '2025-01-01T09:00:00Z')")
    rows = dump(raw)
    raw.close()
    return rows


def test_upgrade_keeps_a_copy_first(db_path, frozen):
    """Test that opening a database of an older release keeps a copy named after the first pending step, holding
    the old schema and every old row, before upgrading the database itself."""
    old_rows = _old_database(db_path)
    old_steps = schema.step_names()[: schema.step_names().index(OLD_STEP)]
    assert applied_steps(db_path) == old_steps

    database = db.connect(db_path)

    copies = sorted(db_path.parent.glob(f"crm.before-{OLD_STEP}-*.db"))
    assert [p.name for p in copies] == [f"crm.before-{OLD_STEP}-{STAMP}.db"]
    assert applied_steps(copies[0]) == old_steps
    assert columns(copies[0], "interaction_contacts") == ["interaction_id", "contact_id"]  # before OLD_STEP's
    assert dump_file(copies[0]) == old_rows
    assert integrity(copies[0]) == [("ok",)]
    assert schema.pending(database) == []
    assert columns(db_path, "interaction_contacts") == ["interaction_id", "contact_id", "occurred_on", "branch_id"]
    assert [tuple(r) for r in database.execute("SELECT id, name FROM regions")] == [(1, "North")]
    database.close()


def test_new_or_current_database_gets_no_copy(db_path):
    """Test that creating a brand-new database, or opening one already up to date, keeps no pre-upgrade copy."""
    db.connect(db_path).close()
    assert listing(db_path.parent) == ["crm.db"]

    db.connect(db_path).close()
    assert listing(db_path.parent) == ["crm.db"]


def _open(path: str, start, results) -> None:
    """One process opening (and so upgrading) a database at the same moment as the others."""
    try:
        start.wait(timeout=60)
        db.connect(path).close()
        results.put("")
    except Exception:
        results.put(traceback.format_exc())


def test_old_database_opened_by_several_processes_at_once(db_path):
    """Test that 4 processes opening an older release's database at once all succeed, the upgrade is applied once
    and one pre-upgrade copy holds the old rows. Regression: before_upgrade ran before the write lock was taken,
    so every process that saw the steps pending ran VACUUM INTO the same file name at once, and all but one failed
    with "output file already exists" or (two writing the new file together) 'table "_sqlite_migrations" already
    exists'."""
    old_rows = _old_database(db_path)
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    results = context.Queue()
    processes = [context.Process(target=_open, args=(str(db_path), start, results)) for _ in range(4)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert [report.splitlines()[-1:] for report in reports] == [[]] * 4  # the last line of any traceback
    assert applied_steps(db_path) == schema.step_names()
    copies = sorted(db_path.parent.glob(f"crm.before-{OLD_STEP}-*.db"))
    assert [dump_file(copy) for copy in copies] == [old_rows]


# The command line: python -m crm backup FILE / restore FILE.


def run(*args: str, db_path: Path) -> subprocess.CompletedProcess:
    """Run ``python -m crm`` from the repository root with CRM_DB and CRM_ADMIN_PASSWORD set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["CRM_DB"] = str(db_path)
    env["CRM_ADMIN_PASSWORD"] = PASSWORD
    return subprocess.run(
        [sys.executable, "-m", "crm", *args],
        cwd=REPO,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def initialised(db_path: Path) -> Path:
    """A database set up through ``python -m crm init``, holding the region North."""
    result = run("init", "--admin", "ada", db_path=db_path)
    assert (result.returncode, result.stderr) == (0, "")
    database = db.connect(db_path)
    branches.add_region(database, COMMAND_LINE, "North")
    database.close()
    return db_path


def test_cli_backup_then_restore(initialised, offered):
    """Test that ``backup FILE`` writes a copy and says so, and that ``restore FILE`` puts it back, keeping the
    replaced database beside the live one under the name it prints."""
    target = offered / "backup.db"

    backed_up = run("backup", str(target), db_path=initialised)

    assert (backed_up.returncode, backed_up.stdout, backed_up.stderr) == (
        0,
        f"backed up {initialised} to {target}\n",
        "",
    )
    assert integrity(database_in(target)) == [("ok",)]
    backup_rows = dump_file(database_in(target))
    database = db.connect(initialised)
    assert [(e["username"], e["action"], e["changes"]) for e in audit.entries(database, "database")] == [
        ("command line", "backup", {"file": "backup.db"})
    ]
    branches.add_region(database, COMMAND_LINE, "South")
    database.close()
    replaced_rows = dump_file(initialised)

    restored = run("restore", str(target), db_path=initialised)

    prefix = f"restored {initialised} from {target}; the database it replaced is kept as "
    assert (restored.returncode, restored.stderr, restored.stdout[: len(prefix)]) == (0, "", prefix)
    kept = Path(restored.stdout[len(prefix) :].removesuffix("\n"))
    assert restored.stdout == f"{prefix}{kept}\n"
    assert kept.parent == initialised.parent
    assert re.fullmatch(r"crm\.replaced-\d{8}-\d{6}\.db", kept.name)
    assert dump_file(kept) == replaced_rows
    assert region_names(kept) == ["North", "South"]
    assert dump_file(initialised) == backup_rows
    assert region_names(initialised) == ["North"]


def test_cli_restore_of_garbage(initialised, offered):
    """Test that ``restore`` of a file that is not a database fails with one error line and no traceback, and
    leaves the live database and its folder as they were."""
    garbage = offered / "garbage.db"
    garbage.write_bytes(GARBAGE)
    before, files_before = dump_file(initialised), listing(initialised.parent)

    result = run("restore", str(garbage), db_path=initialised)

    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        "",
        "error: The file is not a database this app can read (file is not a database).\n",
    )
    assert dump_file(initialised) == before
    assert listing(initialised.parent) == files_before


def test_cli_backup_onto_an_existing_file(initialised, offered):
    """Test that ``backup`` onto a file that exists fails with one error line and leaves the file as it was."""
    target = offered / "precious.db"
    target.write_bytes(b"someone's other file")

    result = run("backup", str(target), db_path=initialised)

    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        f"error: {target} already exists; add --force to replace it\n",
    )
    assert target.read_bytes() == b"someone's other file"
