"""Suppressions: people erased at their request, remembered only as salted hashes so they are not added again."""

import hashlib
import secrets

from sqlite_utils import Database

from crm import clock, settings
from crm.access import Actor
from crm.errors import ValidationError

SALT_SETTING = "suppression_salt"


def _salt(db: Database, actor: Actor) -> str:
    salt = settings.get(db, SALT_SETTING)
    if not salt:
        salt = secrets.token_hex(16)
        settings.put(db, actor, SALT_SETTING, salt)
    return salt


def _digest(salt: str, kind: str, value: str) -> str:
    return hashlib.sha256(f"{salt}:{kind}:{value.strip().casefold()}".encode()).hexdigest()


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


def is_suppressed(db: Database, values: dict) -> bool:
    """True when cleaned contact ``values`` match someone who was erased (same email, phone, or name there)."""
    salt = settings.get(db, SALT_SETTING)
    if not salt:
        return False
    for kind, value in _keys(values):
        if db.execute(
            "SELECT 1 FROM suppressions WHERE kind = ? AND digest = ?", [kind, _digest(salt, kind, value)]
        ).fetchone():
            return True
    return False


def refuse(db: Database, values: dict) -> None:
    """:raises ValidationError: when ``values`` are those of an erased person."""
    if is_suppressed(db, values):
        raise ValidationError(
            "Name", "this person asked for their details to be erased, so they cannot be added again."
        )


def add(db: Database, actor: Actor, values: dict) -> None:
    """Remember a person (their email, numbers, and name at their organisation) as not to be added again."""
    salt = _salt(db, actor)
    for kind, value in _keys(values):
        db.execute(
            "INSERT OR IGNORE INTO suppressions (kind, digest, created_at) VALUES (?, ?, ?)",
            [kind, _digest(salt, kind, value), clock.stamp()],
        )
