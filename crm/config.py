"""Settings read from the environment. Only app.py, crm/__main__.py and the page gate call from_env();
crm.suppressions reads its key with suppression_key()."""

import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DB_PATH = Path(__file__).resolve().parent.parent / "data" / "crm.db"


@dataclass(frozen=True)
class Settings:
    db_path: Path
    idle_minutes: int


def from_env(environ: dict[str, str] | None = None) -> Settings:
    """Read CRM_DB (database file) and CRM_IDLE_MINUTES (idle sign-out, default 30)."""
    env = os.environ if environ is None else environ
    return Settings(
        db_path=Path(env.get("CRM_DB") or DEFAULT_DB_PATH),
        idle_minutes=int(env.get("CRM_IDLE_MINUTES") or 30),
    )


SUPPRESSION_KEY_ENV = "CRM_SUPPRESSION_KEY"


def suppression_key(environ: dict[str, str] | None = None) -> str | None:
    """CRM_SUPPRESSION_KEY: the secret that erased people's hashes are keyed with, when it is not kept in the
    key file beside the database (crm.suppressions). Read where it is needed, so it never travels in arguments
    that could end up in a log."""
    env = os.environ if environ is None else environ
    return env.get(SUPPRESSION_KEY_ENV) or None
