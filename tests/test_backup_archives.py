"""Backups as one archive: the database snapshot, the evidence files of its testimonials and a manifest of SHA-256s.
Regressions: evidence files were not in backups at all, so evidence downloads failed after a restore; a backup
killed part-way left a partial file under the final name."""

import hashlib
import json
import sqlite3
import zipfile
from contextlib import closing
from pathlib import Path

import pytest

from crm import audit, backups, testimonials
from crm.backups import BackupError
from tests.conftest import World, copy_world

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + b"evidence " * 300


def dump(connection) -> dict[str, list[tuple]]:
    names = [r[0] for r in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {name: sorted(connection.execute(f"SELECT * FROM [{name}]").fetchall(), key=repr) for name in names}


def listing(folder: Path) -> list[str]:
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*"))


def add_testimonial(world: World, evidence: tuple[str, bytes]) -> int:
    gp_contact = world.contact(world.leeds, f"Giver {evidence[0]}")
    return testimonials.add(
        world.db,
        world.admin,
        {
            "branch_id": world.leeds,
            "quote": "The carers made the discharge home safe and calm.",
            "contact_id": gp_contact,
            "source": "email",
            "received_on": "2026-02-20",
        },
        evidence,
    )


@pytest.fixture
def world(template, db_path) -> World:
    scene = copy_world(*template, db_path)
    yield scene
    scene.db.close()


@pytest.fixture
def with_evidence(world) -> dict[int, bytes]:
    """Two testimonials of the world, each with an evidence file: {testimonial id: its bytes}."""
    return {add_testimonial(world, ("card.png", PNG)): PNG, add_testimonial(world, ("email.pdf", PDF)): PDF}


@pytest.fixture
def offered(tmp_path: Path) -> Path:
    folder = tmp_path / "offered"
    folder.mkdir()
    return folder


def test_a_backup_is_an_archive_of_the_database_and_its_evidence_with_a_manifest(world, with_evidence, offered):
    """Test that a backup is a zip holding the database, each evidence file its testimonials name (under its
    SHA-256) and a manifest listing every file with its SHA-256."""
    target = backups.backup(world.db, world.admin, offered / "backup.zip")

    with zipfile.ZipFile(target) as archive:
        names = sorted(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        contents = {name: archive.read(name) for name in names if name != "manifest.json"}
    digests = {hashlib.sha256(data).hexdigest() for data in with_evidence.values()}
    assert names == sorted(["database.db", "manifest.json", *(f"evidence/{d}" for d in digests)])
    assert manifest["format"] == "partner-crm-backup"
    assert manifest["version"] == 1
    assert manifest["evidence_missing_when_taken"] == []
    assert manifest["files"] == {name: hashlib.sha256(data).hexdigest() for name, data in contents.items()}
    assert backups.check(target) == []


def test_backup_and_restore_bring_back_the_evidence_files(world, with_evidence, db_path, offered):
    """Test that after a restore from a backup onto a server that has lost its evidence folder, every
    testimonial's evidence downloads again, byte for byte, and the database holds the backup's rows."""
    backed_up = dump(world.db)
    target = backups.backup(world.db, world.admin, offered / "backup.zip")
    evidence = backups.evidence_folder(db_path)
    for file in evidence.iterdir():
        file.unlink()
    evidence.rmdir()
    world.db.execute("DELETE FROM testimonial_statements")

    backups.restore(db_path, target)

    assert dump(world.db) == backed_up
    for testimonial_id, data in with_evidence.items():
        assert testimonials.evidence(world.db, world.admin, testimonial_id)[2] == data
    assert sorted(p.name for p in evidence.iterdir()) == sorted(
        hashlib.sha256(d).hexdigest() for d in with_evidence.values()
    )


def test_a_backup_killed_part_way_leaves_no_file_under_its_name(world, with_evidence, offered, monkeypatch):
    """Test that a backup failing while it writes the archive (simulated: the second file raises after half of
    it is written) leaves nothing under the final name and no partial file in the folder, and is not audited."""
    real_add = backups._add_file
    calls = []

    def dies_on_the_second_file(archive, source, name):
        calls.append(name)
        if len(calls) == 2:
            with archive.open(name, "w") as writing:
                writing.write(source.read_bytes()[:100])
            raise OSError(28, "No space left on device")
        return real_add(archive, source, name)

    monkeypatch.setattr(backups, "_add_file", dies_on_the_second_file)
    target = offered / "backup.zip"

    with pytest.raises(OSError):
        backups.backup(world.db, world.admin, target)

    assert len(calls) == 2
    assert listing(offered) == []
    assert audit.entries(world.db, "database") == []


def _rewrite(archive: Path, target: Path, change) -> None:
    """A copy of ``archive`` at ``target`` with its members passed through ``change(members) -> members``."""
    with zipfile.ZipFile(archive) as source:
        members = {name: source.read(name) for name in source.namelist()}
    with zipfile.ZipFile(target, "w") as written:
        for name, data in change(members).items():
            written.writestr(name, data)


def _flip_a_database_byte(members):
    data = bytearray(members["database.db"])
    data[len(data) // 2] ^= 0xFF
    return {**members, "database.db": bytes(data)}


def _evidence_replaced(members):
    name = next(n for n in members if n.startswith("evidence/"))
    return {**members, name: b"\x89PNG\r\n\x1a\n someone else's picture"}


def _evidence_renamed_with_its_hash(members):
    """Different evidence bytes, the manifest's hash updated to match, under the old (content-hash) name."""
    name = next(n for n in members if n.startswith("evidence/"))
    forged = b"\x89PNG\r\n\x1a\n someone else's picture"
    manifest = json.loads(members["manifest.json"])
    manifest["files"][name] = hashlib.sha256(forged).hexdigest()
    return {**members, name: forged, "manifest.json": json.dumps(manifest)}


def _no_manifest(members):
    return {name: data for name, data in members.items() if name != "manifest.json"}


def _extra_file(members):
    return {**members, f"evidence/{'0' * 64}": b"not listed"}


def _outside_name(members):
    manifest = json.loads(members["manifest.json"])
    manifest["files"]["../escape.txt"] = hashlib.sha256(b"x").hexdigest()
    return {**members, "../escape.txt": b"x", "manifest.json": json.dumps(manifest)}


def _evidence_missing(members):
    name = next(n for n in members if n.startswith("evidence/"))
    return {n: d for n, d in members.items() if n != name}


def _damaged_database_with_its_hash(members):
    data = b"This is not a database, just some bytes.\n" * 200
    manifest = json.loads(members["manifest.json"])
    manifest["files"]["database.db"] = hashlib.sha256(data).hexdigest()
    return {**members, "database.db": data, "manifest.json": json.dumps(manifest)}


CORRUPTED = [
    (_flip_a_database_byte, "The backup is damaged: database.db does not match its SHA-256 in the manifest."),
    (_evidence_replaced, "The backup is damaged: evidence/{name} does not match its SHA-256 in the manifest."),
    (_evidence_renamed_with_its_hash, "The backup is damaged: evidence/{name} does not hold the file its name says."),
    (_no_manifest, "The archive is not a Partner CRM backup (it has no manifest)."),
    (_extra_file, f"The backup holds evidence/{'0' * 64}, which its manifest does not list."),
    (_outside_name, "The backup holds a file this app does not know: ../escape.txt"),
    (_evidence_missing, "The backup lacks evidence/{name}, which its manifest lists."),
    (_damaged_database_with_its_hash, "The file is not a database this app can read (file is not a database)."),
]


@pytest.mark.parametrize("change, message", CORRUPTED, ids=[c.__name__.strip("_") for c, _ in CORRUPTED])
def test_a_corrupted_archive_is_refused_and_nothing_changes(world, with_evidence, db_path, offered, change, message):
    """Test that an archive whose database or evidence does not match its manifest (or that lacks a manifest,
    holds an unlisted or foreign file, or lacks a listed one, or whose database is not one) is refused with a
    message saying which, and that the live database, its evidence folder and its folder are left as they were."""
    good = backups.backup(world.db, world.admin, offered / "good.zip")
    bad = offered / "bad.zip"
    _rewrite(good, bad, change)
    evidence_name = sorted(hashlib.sha256(d).hexdigest() for d in with_evidence.values())
    with zipfile.ZipFile(good) as archive:
        first = next(n for n in sorted(archive.namelist()) if n.startswith("evidence/"))
    expected = message.format(name=first.removeprefix("evidence/"))
    world.db.execute("DELETE FROM testimonial_statements")  # the live database differs from the backup
    before, files_before = dump(world.db), listing(db_path.parent)

    assert backups.check(bad) == [expected]
    with pytest.raises(BackupError) as caught:
        backups.restore(db_path, bad)

    assert str(caught.value) == expected
    assert dump(world.db) == before
    assert listing(db_path.parent) == files_before
    assert sorted(p.name for p in backups.evidence_folder(db_path).iterdir()) == evidence_name


def test_a_truncated_archive_is_refused(world, with_evidence, db_path, offered):
    """Test that an archive cut short (a copy that stopped part-way) is refused as damaged, nothing changed."""
    good = backups.backup(world.db, world.admin, offered / "good.zip")
    bad = offered / "bad.zip"
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    before, files_before = dump(world.db), listing(db_path.parent)

    with pytest.raises(BackupError):
        backups.restore(db_path, bad)

    assert dump(world.db) == before
    assert listing(db_path.parent) == files_before


def test_a_plain_database_backup_from_an_older_release_still_restores(world, db_path, offered):
    """Test that a backup written by an older release (a plain database file) restores as before."""
    world.contact(world.leeds, "Priya Patel")
    old = offered / "old.db"
    world.db.execute("VACUUM INTO ?", [str(old)])
    with closing(sqlite3.connect(old)) as connection:
        wanted = dump(connection)
    world.contact(world.leeds, "Added Later")

    backups.restore(db_path, old)

    assert dump(world.db) == wanted
