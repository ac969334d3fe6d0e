"""Suppressions: people erased at their request, remembered only as keyed hashes so they are not added again.

Each entry is an HMAC-SHA256 of one of the person's details under a secret key that never enters the database:
the environment variable CRM_SUPPRESSION_KEY when set, else a key file beside the database (``crm.db`` ->
``crm-suppression.key``, mode 0600, created on the first erasure). A copy of the database alone therefore cannot
be brute-forced back into phone numbers or emails.

Databases from before this scheme hold entries hashed with a salt kept in the ``settings`` table. Those cannot
be re-hashed (the details are gone), so they stay valid and are still checked with that legacy salt; they stay
as weak as they always were. New entries never use it, and the salt is kept out of the audit log (schema step
0010 removed the copy settings.put had written there).
"""

import functools
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from sqlite_utils import Database

from crm import clock, config, settings
from crm.errors import CRMError, ValidationError

LEGACY_SALT_SETTING = "suppression_salt"
KEY_FILE_SUFFIX = "-suppression.key"
MIN_KEY_LENGTH = 32
# Keyed digests are stored with this prefix, so they are never mistaken for legacy salted ones.
PREFIX = "hmac:"


class KeyUnavailable(CRMError):
    """The suppression key cannot be found or used, so erased people cannot be checked or remembered."""


def key_file(db: Database) -> Path | None:
    """Where the key file of ``db`` lives (beside the database file), or None for an in-memory database."""
    path = db.execute("PRAGMA database_list").fetchone()[2]
    if not path:
        return None
    database = Path(path)
    return database.with_name(database.stem + KEY_FILE_SUFFIX)


def _key(db: Database, *, create: bool) -> bytes | None:
    """The secret key: from CRM_SUPPRESSION_KEY, else the key file (made now if ``create``), else None."""
    from_env = config.suppression_key()
    if from_env is not None:
        if len(from_env) < MIN_KEY_LENGTH:
            raise KeyUnavailable(f"CRM_SUPPRESSION_KEY must be at least {MIN_KEY_LENGTH} characters long.")
        return from_env.encode()
    path = key_file(db)
    if path is None:
        if not create:
            return None
        raise KeyUnavailable("An in-memory database keeps no key file: set CRM_SUPPRESSION_KEY.")
    try:
        return _read_key(path)
    except FileNotFoundError:
        if not create:
            return None
        try:
            return _create_key_file(path)
        except OSError as error:
            raise KeyUnavailable(f"The suppression key file {path} could not be created: {error.strerror}.") from error
    except OSError as error:
        raise KeyUnavailable(f"The suppression key file {path} could not be read: {error.strerror}.") from error


def _read_key(path: Path) -> bytes:
    # An import checks every row, so the file is read once per version of it (a restored file is read afresh).
    status = path.stat()
    return _read_key_version(path, status.st_mtime_ns, status.st_size)


@functools.lru_cache(maxsize=16)
def _read_key_version(path: Path, mtime_ns: int, size: int) -> bytes:
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except ValueError:  # not hex digits, or not text at all
        key = b""
    if len(key) < MIN_KEY_LENGTH:
        raise KeyUnavailable(f"The suppression key file {path} is damaged; restore it from your backup.")
    return key


def _create_key_file(path: Path) -> bytes:
    """Write a new random key readable by its owner only. Written under a temporary name and linked into place,
    so nobody ever reads a half-written key, and when two processes race the first link wins for both."""
    key = secrets.token_bytes(32)
    partial = path.with_name(f".{path.name}.{secrets.token_hex(8)}.partial")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:
            file.write(key.hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(partial, path)
        except FileExistsError:
            return _read_key(path)
    finally:
        partial.unlink(missing_ok=True)
    return key


def _normal(kind: str, value: str) -> str:
    return f"{kind}:{value.strip().casefold()}"


def _digest(key: bytes, kind: str, value: str) -> str:
    return PREFIX + hmac.new(key, _normal(kind, value).encode(), hashlib.sha256).hexdigest()


def _legacy_digest(salt: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{salt}:{_normal(kind, value)}".encode()).hexdigest()


def _keys(values: dict) -> list[tuple[str, str]]:
    keys = []
    if values.get("email"):
        keys.append(("email", values["email"]))
    # A switchboard number with an extension is that person's line only, as contacts.similar treats it.
    if values.get("phone"):
        extension = values.get("phone_ext")
        keys.append(("phone", f"{values['phone']};ext={extension}" if extension else values["phone"]))
    if values.get("mobile"):
        keys.append(("phone", values["mobile"]))
    if values.get("name") and values.get("organisation_id"):
        keys.append(("name_at_organisation", f"{values['name']}@{values['organisation_id']}"))
    return keys


def is_suppressed(db: Database, values: dict, *, already: dict | None = None) -> bool:
    """True when cleaned contact ``values`` match someone who was erased (same email, phone, or name there).

    With ``already`` (the record as it was before an edit), only details the edit brings in are checked.

    :raises KeyUnavailable: when entries exist but the key that made them is missing.
    """
    keys = [k for k in _keys(values) if k not in _keys(already or {})]
    if not keys or not db.execute("SELECT 1 FROM suppressions LIMIT 1").fetchone():
        return False  # nobody erased yet (the usual case): no key to read, no digests to make, row after row
    digests = []
    salt = settings.get(db, LEGACY_SALT_SETTING)
    if salt:
        digests += [_legacy_digest(salt, kind, value) for kind, value in keys]
    key = _key(db, create=False)
    if key is not None:
        digests += [_digest(key, kind, value) for kind, value in keys]
    elif db.execute(
        "SELECT 1 FROM suppressions WHERE substr(digest, 1, ?) = ? LIMIT 1", [len(PREFIX), PREFIX]
    ).fetchone():
        raise KeyUnavailable(
            f"The suppression key file {key_file(db)} is missing, so erased people cannot be recognised. "
            "Restore it from your backup (or set CRM_SUPPRESSION_KEY) before adding or changing contacts."
        )
    marks = ", ".join("?" for _ in digests)
    return bool(digests) and bool(
        db.execute(f"SELECT 1 FROM suppressions WHERE digest IN ({marks}) LIMIT 1", digests).fetchone()
    )


def refuse(db: Database, values: dict, *, already: dict | None = None) -> None:
    """:raises ValidationError: when ``values`` are those of an erased person (see ``is_suppressed``)."""
    if is_suppressed(db, values, already=already):
        raise ValidationError(
            "Name", "this person asked for their details to be erased, so they cannot be added again."
        )


def add(db: Database, values: dict) -> None:
    """Remember a person (their email, numbers, and name at their organisation) as not to be added again."""
    key = _key(db, create=True)
    assert key is not None
    for kind, value in _keys(values):
        db.execute(
            "INSERT OR IGNORE INTO suppressions (kind, digest, created_at) VALUES (?, ?, ?)",
            [kind, _digest(key, kind, value), clock.stamp()],
        )
