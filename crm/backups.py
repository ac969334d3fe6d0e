"""Backups and restores: consistent copies of the live database and its evidence files, taken safely while people
are working.

A copy of the file itself can miss commits still in the write-ahead log, or catch a page half-written.
``VACUUM INTO`` writes a consistent snapshot (as of one read transaction) into a new, compact file. A backup is
one zip archive: that snapshot, the evidence files its testimonials name, and a manifest of every file's SHA-256,
checked in full before a restore changes anything. A plain database file (a backup from an older release) still
restores.
"""

import hashlib
import json
import os
import re
import shutil
import sqlite3
import tempfile
import zipfile
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database

from crm import audit, clock, schema
from crm.access import ADMIN, Actor, require_role
from crm.db import transaction
from crm.errors import CRMError

FORMAT = "partner-crm-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DATABASE = "database.db"
EVIDENCE = "evidence/"
_EVIDENCE_NAME = re.compile(r"[0-9a-f]{64}")  # evidence files are stored under the SHA-256 of their content
_CHUNK = 1 << 20


class BackupError(CRMError):
    """A backup could not be written, or a file offered for restore is not a usable Partner CRM database."""


def evidence_folder(db_path: Path) -> Path:
    """Where the evidence files of the database at ``db_path`` live (as crm.testimonials keeps them)."""
    db_path = Path(db_path)
    return db_path.parent / f"{db_path.stem}-evidence"


def backup(db: Database, actor: Actor, target: Path, *, replace: bool = False) -> Path:
    """Write a backup archive of the live database and its evidence files to ``target``; audited.

    The archive is written under a temporary name in the same folder and renamed when complete, so a backup
    that is interrupted leaves nothing under ``target``. ``target`` must not exist unless ``replace``.
    """
    require_role(actor, ADMIN)
    target = Path(target)
    if target.exists() and not replace:
        raise BackupError(f"{target} already exists; choose a new file name.")
    if not target.parent.is_dir():
        raise BackupError(f"The folder {target.parent} does not exist.")
    live_path = Path(db.execute("PRAGMA database_list").fetchone()[2])
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as work:
        snapshot = Path(work) / DATABASE
        db.execute("VACUUM INTO ?", [str(snapshot)])
        partial = Path(work) / "archive.partial"
        _write_archive(partial, snapshot, evidence_folder(live_path))
        if replace:
            os.replace(partial, target)
        else:
            try:  # a hard link never replaces a file that appeared meanwhile, and appears complete at once
                os.link(partial, target)
            except FileExistsError:
                raise BackupError(f"{target} already exists; choose a new file name.") from None
            except OSError:  # a file system without hard links: checked just above, then an atomic rename
                os.replace(partial, target)
    with transaction(db):
        audit.record(db, actor, "backup", "database", None, {"file": target.name})
    return target


def _write_archive(path: Path, snapshot: Path, evidence: Path) -> None:
    """The archive at ``path``: the snapshot, the evidence files it names, and the manifest (written last)."""
    with closing(sqlite3.connect(snapshot)) as connection:
        named = sorted(
            {
                row[0]
                for row in connection.execute("SELECT evidence_file FROM testimonials WHERE evidence_file IS NOT NULL")
            }
        )
    hashes: dict[str, str] = {}
    missing: list[str] = []
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
        hashes[DATABASE] = _add_file(archive, snapshot, DATABASE)
        for name in named:
            source = evidence / name
            if _EVIDENCE_NAME.fullmatch(name) and source.is_file():
                hashes[EVIDENCE + name] = _add_file(archive, source, EVIDENCE + name)
            else:
                missing.append(name)
        manifest = {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "created_at": clock.now().isoformat(),
            "files": hashes,
            "evidence_missing_when_taken": missing,
        }
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True))
    with open(path, "rb") as written:
        os.fsync(written.fileno())


def _add_file(archive: zipfile.ZipFile, source: Path, name: str) -> str:
    digest = hashlib.sha256()
    with open(source, "rb") as reading, archive.open(name, "w", force_zip64=True) as writing:
        while chunk := reading.read(_CHUNK):
            digest.update(chunk)
            writing.write(chunk)
    return digest.hexdigest()


def is_archive(path: Path) -> bool:
    """Whether ``path`` is a backup archive (a zip file) rather than a plain database file."""
    return Path(path).is_file() and zipfile.is_zipfile(path)


def _unpack(path: Path, folder: Path) -> tuple[Path, list[Path]]:
    """Check a backup archive and unpack it into ``folder``: (the database, the evidence files).

    :raises BackupError: when the archive is unreadable, has no manifest, holds a file the manifest does not list
        (or a name that is not ours), lacks one it lists, or any file's SHA-256 differs from the manifest.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            try:
                manifest = json.loads(archive.read(MANIFEST))
            except KeyError:
                raise BackupError("The archive is not a Partner CRM backup (it has no manifest).") from None
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise BackupError("The archive is not a Partner CRM backup (its manifest is not ours).")
            if manifest.get("version") != FORMAT_VERSION:
                raise BackupError(
                    f"The backup was written in format version {manifest.get('version')}; "
                    f"this app reads version {FORMAT_VERSION}. Upgrade the app first."
                )
            listed = manifest.get("files")
            if not isinstance(listed, dict) or DATABASE not in listed:
                raise BackupError("The backup's manifest lists no database.")
            present = {info.filename for info in archive.infolist() if not info.is_dir()} - {MANIFEST}
            for name in sorted(present | set(listed)):
                if name != DATABASE and not (
                    name.startswith(EVIDENCE) and _EVIDENCE_NAME.fullmatch(name[len(EVIDENCE) :])
                ):
                    raise BackupError(f"The backup holds a file this app does not know: {name}")
                if name not in listed:
                    raise BackupError(f"The backup holds {name}, which its manifest does not list.")
                if name not in present:
                    raise BackupError(f"The backup lacks {name}, which its manifest lists.")
            evidence = []
            for name in sorted(listed):
                target = folder / name.replace("/", "_")
                digest = hashlib.sha256()
                with archive.open(name) as reading, open(target, "wb") as writing:
                    while chunk := reading.read(_CHUNK):
                        digest.update(chunk)
                        writing.write(chunk)
                if digest.hexdigest() != listed[name]:
                    raise BackupError(f"The backup is damaged: {name} does not match its SHA-256 in the manifest.")
                if name.startswith(EVIDENCE) and digest.hexdigest() != name[len(EVIDENCE) :]:
                    raise BackupError(f"The backup is damaged: {name} does not hold the file its name says.")
                if name != DATABASE:
                    evidence.append(target)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as error:
        raise BackupError(f"The backup archive is damaged or unreadable ({error}).") from None
    return folder / DATABASE, evidence


def check(path: Path) -> list[str]:
    """Why ``path`` cannot be restored (an empty list when it can): for an archive, its manifest and every file's
    SHA-256; then the database's integrity, and a schema this app knows."""
    path = Path(path)
    if not path.is_file():
        return [f"{path} does not exist."]
    if is_archive(path):
        with tempfile.TemporaryDirectory() as folder:
            try:
                database, _ = _unpack(path, Path(folder))
            except BackupError as error:
                return [str(error)]
            return _check_database(database)
    return _check_database(path)


def _check_database(path: Path) -> list[str]:
    try:
        conn = _read_only(path)
        try:
            integrity = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            if integrity != ["ok"]:
                return [f"The file is damaged: {integrity[0]}"]
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "_sqlite_migrations" not in tables or "contacts" not in tables:
                return ["The file is an SQLite database but not a Partner CRM one."]
            applied = [
                row[0]
                for row in conn.execute(
                    "SELECT name FROM _sqlite_migrations WHERE migration_set = ?", [schema.migrations.name]
                )
            ]
        finally:
            conn.close()
    except (sqlite3.DatabaseError, UnicodeDecodeError) as error:
        # A damaged schema can hold bytes that are not text; SQLite's message quoting them is then not UTF-8.
        return [f"The file is not a database this app can read ({error})."]
    known = set(schema.step_names())
    newer = [name for name in applied if name not in known]
    if newer:
        return [
            f"The file comes from a newer version of the app (schema steps {', '.join(newer)}); upgrade the app first."
        ]
    return []


def restore(live_path: Path, source: Path) -> Path:
    """Replace the live database with the backup ``source``, keeping the replaced one aside; returns where it was kept.

    An archive is checked in full first (manifest, every file's SHA-256, the database's integrity and schema);
    its evidence files are then added to the live evidence folder (files are named by their content, so none is
    overwritten by different bytes). The live file is overwritten through SQLite's backup API, so connections
    the app has open see either the old or the new database, never a mix. Nothing is changed when a check fails.
    """
    live_path = Path(live_path)
    source = Path(source)
    if not is_archive(source):
        problems = check(source)
        if problems:
            raise BackupError(" ".join(problems))
        return _replace_live(live_path, source)
    with tempfile.TemporaryDirectory(dir=live_path.parent, prefix=f".{live_path.name}.restore-") as folder:
        database, evidence = _unpack(source, Path(folder))
        problems = _check_database(database)
        if problems:
            raise BackupError(" ".join(problems))
        _add_evidence(evidence, evidence_folder(live_path))
        return _replace_live(live_path, database)


def _add_evidence(files: list[Path], folder: Path) -> None:
    folder.mkdir(exist_ok=True)
    for file in files:
        name = file.name.removeprefix(EVIDENCE.replace("/", "_"))
        target = folder / name
        if target.exists():
            continue  # the same name is the same content (files are named by their SHA-256)
        partial = folder / f"{name}.partial"
        shutil.copyfile(file, partial)
        partial.replace(target)


def _replace_live(live_path: Path, source: Path) -> Path:
    kept = _new_name(live_path, f"replaced-{clock.now():%Y%m%d-%H%M%S}")
    live = sqlite3.connect(str(live_path), timeout=10)
    try:
        live.execute("VACUUM INTO ?", [str(kept)])
        incoming = _read_only(source)
        try:
            incoming.backup(live)
        finally:
            incoming.close()
    finally:
        live.close()
    return kept


def before_upgrade(path: Path, first_step: str) -> Path:
    """Keep a copy of a database about to be upgraded, through a connection of its own (VACUUM INTO cannot run
    inside the caller's transaction, which holds the write lock so only one process upgrades)."""
    target = _new_name(path, f"before-{first_step}-{clock.now():%Y%m%d-%H%M%S}")
    conn = sqlite3.connect(str(path), timeout=10)
    try:
        conn.execute("VACUUM INTO ?", [str(target)])
    finally:
        conn.close()
    return target


def _new_name(path: Path, label: str) -> Path:
    """``<stem>.<label><suffix>`` beside ``path``, numbered if that name is taken."""
    candidate = path.with_name(f"{path.stem}.{label}{path.suffix}")
    number = 2
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}.{label}-{number}{path.suffix}")
        number += 1
    return candidate


def _read_only(path: Path) -> sqlite3.Connection:
    # A URI, so the file opens read-only; quoted, so "#", "?" or "%" in a file name stay part of the name.
    return sqlite3.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
