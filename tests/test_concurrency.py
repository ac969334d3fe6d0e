"""Several processes writing to one database file at once, through the same crm functions the pages call."""

import multiprocessing
import traceback
from pathlib import Path

from sqlite_utils import Database

from crm import branches, contacts, db, organisations, schema
from crm.access import COMMAND_LINE, Actor

PROCESSES = 8
CONTACTS_EACH = 200
EDIT_EVERY = 4  # each process edits every fourth contact it added, right after adding the next one


def _work(path: str, worker: int, actor: Actor, branch_id: int, organisation_id: int, start, results) -> None:
    """One process: add CONTACTS_EACH contacts, editing some along the way with the version read just before."""
    edited: dict[int, str] = {}
    errors: list[str] = []
    try:
        database = db.connect(path)
        start.wait(timeout=60)  # every process begins writing at the same moment
        added: list[int] = []
        for number in range(CONTACTS_EACH):
            values = {
                "name": f"Worker {worker} Person {number}",
                "organisation_id": organisation_id,
                "branch_id": branch_id,
                "email": f"w{worker}.p{number}@example.nhs.uk",
            }
            added.append(contacts.add(database, actor, values))
            if number % EDIT_EVERY == 1:
                contact_id = added[-2]
                record = contacts.get(database, actor, contact_id)
                title = f"Edited by worker {worker}"
                contacts.update(
                    database,
                    actor,
                    contact_id,
                    {**values, "name": record["name"], "email": record["email"], "job_title": title},
                    expected_version=record["version"],
                )
                edited[contact_id] = title
        database.close()
    except Exception:  # reported to the parent: a test failure, not a hung pool
        errors.append(traceback.format_exc())
    results.put((worker, edited, errors))


def test_many_processes_add_and_edit(tmp_path: Path):
    """Test that 8 processes adding 200 contacts each and editing some get 1600 rows, every edit, no lock error."""
    path = tmp_path / "crm.db"
    setup = db.connect(path)
    north = branches.add_region(setup, COMMAND_LINE, "North")
    # Two branches, four processes each: duplicate checks and inserts contend within a branch too.
    branch_ids = [branches.add_branch(setup, COMMAND_LINE, name, north) for name in ("Leeds", "York")]
    organisation_id = organisations.add(setup, COMMAND_LINE, {"name": "Hyde Park Surgery", "type_code": "GP_PRACTICE"})
    setup.close()

    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(
            target=_work,
            args=(str(path), worker, COMMAND_LINE, branch_ids[worker % 2], organisation_id, start, results),
        )
        for worker in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert [errors for _, _, errors in sorted(reports, key=lambda r: r[0])] == [[]] * PROCESSES
    assert [process.exitcode for process in processes] == [0] * PROCESSES
    check = db.connect(path)
    assert check.table("contacts").count == PROCESSES * CONTACTS_EACH
    expected_edits = {contact_id: title for _, edited, _ in reports for contact_id, title in edited.items()}
    assert len(expected_edits) == PROCESSES * (CONTACTS_EACH // EDIT_EVERY)
    stored = dict(check.execute("SELECT id, job_title FROM contacts WHERE version = 2").fetchall())
    assert stored == expected_edits
    assert check.execute("SELECT count(*) FROM audit_log WHERE table_name = 'contacts'").fetchone()[0] == (
        PROCESSES * CONTACTS_EACH + len(expected_edits)
    )
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()


def _open(path: str, start, results) -> None:
    """One process opening (and so creating and migrating) a database at the same moment as the others."""
    try:
        start.wait(timeout=60)
        database = db.connect(path)
        database.close()
        results.put("")
    except Exception:
        results.put(traceback.format_exc())


def test_first_open_from_several_processes(tmp_path: Path):
    """Test that processes opening a new database file together create it once, each step applied once."""
    path = tmp_path / "crm.db"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    results = context.Queue()
    processes = [context.Process(target=_open, args=(str(path), start, results)) for _ in range(4)]
    for process in processes:
        process.start()
    reports = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=30)

    assert reports == [""] * 4
    check = db.connect(path, migrate=False)
    applied = [row[0] for row in check.execute("SELECT name FROM _sqlite_migrations ORDER BY id")]
    assert applied == [step.name for step in schema.migrations.pending(Database(memory=True))]
    alone = db.connect(tmp_path / "alone.db")
    reference = "SELECT * FROM organisation_types ORDER BY code"
    assert check.execute(reference).fetchall() == alone.execute(reference).fetchall()
    alone.close()
    check.close()
