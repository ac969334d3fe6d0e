"""Files the command line writes: never over the database or its files, never over an existing file without
--force, and a missing folder is one clear line, not a traceback. Regression: ``mailing-list --out`` pointed at the
live database overwrote it (exit 0), and ``--out`` into a missing folder ended in a traceback."""

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from crm import db, testimonials, users
from crm.__main__ import main
from tests.conftest import PASSWORD, World, copy_world


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> tuple[Path, World]:
    path = tmp_path_factory.mktemp("cli_outputs") / "crm.db"
    database = db.connect(path)
    world = World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))
    world.priya = world.contact(world.leeds, "Priya Patel", email="priya@example.nhs.uk")
    testimonials.add(
        database,
        world.admin,
        {
            "branch_id": world.leeds,
            "quote": "Calm and safe.",
            "contact_id": world.priya,
            "source": "email",
            "received_on": "2026-02-20",
        },
    )
    database.close()
    return path, world


@pytest.fixture
def world(template, db_path, monkeypatch) -> World:
    monkeypatch.delenv("CRM_DB", raising=False)
    scene = copy_world(*template, db_path)
    scene.db.close()  # the command opens its own connection, as from a shell
    return scene


def rows(path: Path) -> dict[str, list[tuple]]:
    with closing(sqlite3.connect(path)) as connection:
        names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {n: sorted(connection.execute(f"SELECT * FROM [{n}]").fetchall(), key=repr) for n in names}


COMMANDS = {
    "mailing-list csv": ["mailing-list", "--format", "csv", "--out", "{out}"],
    "mailing-list vcf": ["mailing-list", "--format", "vcf", "--out", "{out}"],
    "export-testimonials csv": ["export-testimonials", "--format", "csv", "--out", "{out}"],
    "export-testimonials xlsx": ["export-testimonials", "--format", "xlsx", "--out", "{out}"],
    "export-testimonials docx": ["export-testimonials", "--format", "docx", "--out", "{out}"],
    "export-testimonials md": ["export-testimonials", "--format", "md", "--out", "{out}"],
    "export-person": ["export-person", "{contact}", "--out", "{out}"],
    "import-contacts --report": ["import-contacts", "{csv}", "--branch", "Leeds", "--report", "{out}"],
    "backup": ["backup", "{out}"],
}


def run(capsys, world: World, db_path: Path, command: str, out: Path, *extra: str) -> tuple[int, str, str]:
    csv = db_path.parent / "contacts.csv"
    csv.write_text("Name,Organisation\nNew Person,Hyde Park Surgery\n", encoding="utf-8")
    argv = [a.format(out=out, contact=world.priya, csv=csv) for a in COMMANDS[command]]
    capsys.readouterr()
    status = main(["--db", str(db_path), *argv, *extra])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("force", [False, True])
@pytest.mark.parametrize("companion", ["", "-wal", "-shm"])
def test_no_command_writes_over_the_database(capsys, world, db_path, command, force, companion):
    """Test that an output file naming the live database (or its -wal or -shm file) is refused in one line with
    exit status 2, even with --force, and that the database keeps every row (and nothing was imported)."""
    before = rows(db_path)
    target = Path(f"{db_path}{companion}")

    status, out, err = run(capsys, world, db_path, command, target, *(["--force"] if force else []))

    assert (status, out, err) == (
        2,
        "",
        f"error: {target} is the database {db_path} or one of its files; choose another file\n",
    )
    assert rows(db_path) == before


@pytest.mark.parametrize("command", COMMANDS)
def test_an_existing_file_is_replaced_only_with_force(capsys, world, db_path, command, tmp_path):
    """Test that an output file that exists (say, an earlier backup) is refused in one line, left as it was and
    nothing imported; with --force it is replaced by the command's output."""
    target = tmp_path / "earlier-backup.db"
    target.write_bytes(b"an earlier backup")
    before = rows(db_path)

    status, out, err = run(capsys, world, db_path, command, target)

    assert (status, out, err) == (2, "", f"error: {target} already exists; add --force to replace it\n")
    assert target.read_bytes() == b"an earlier backup"
    assert rows(db_path) == before

    status, out, err = run(capsys, world, db_path, command, target, "--force")

    assert (status, err) == (0, "")
    assert target.read_bytes() != b"an earlier backup"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no partial file left


@pytest.mark.parametrize("command", COMMANDS)
def test_a_missing_folder_is_one_clear_line(capsys, world, db_path, command, tmp_path):
    """Test that an output file in a folder that does not exist is refused in one line with exit status 2 (no
    traceback), creating nothing and importing nothing."""
    target = tmp_path / "no such folder" / "out.file"
    before = rows(db_path)

    status, out, err = run(capsys, world, db_path, command, target)

    assert (status, out, err) == (2, "", f"error: the folder {target.parent} does not exist\n")
    assert not target.parent.exists()
    assert rows(db_path) == before


@pytest.mark.parametrize("command", ["mailing-list csv", "backup"])
def test_a_folder_is_not_an_output_file(capsys, world, db_path, command, tmp_path):
    """Test that an output path naming a folder is refused in one line."""
    status, out, err = run(capsys, world, db_path, command, tmp_path)

    assert (status, out, err) == (2, "", f"error: {tmp_path} is a folder; give a file name\n")


def test_an_output_inside_the_evidence_folder_is_refused(capsys, world, db_path):
    """Test that the evidence folder beside the database is as protected as the database itself."""
    evidence = db_path.parent / "crm-evidence"
    evidence.mkdir()
    target = evidence / "list.csv"

    status, out, err = run(capsys, world, db_path, "mailing-list csv", target, "--force")

    assert (status, out, err) == (
        2,
        "",
        f"error: {target} is the database {db_path} or one of its files; choose another file\n",
    )
    assert list(evidence.iterdir()) == []
