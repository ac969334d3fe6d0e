"""Short-lived handles the browser's cookie holds instead of the session token.

Streamlit cannot set an HttpOnly cookie, so the cookie is written by a script and readable by any script on the
page. It therefore holds a random handle that only the server can exchange for the session token. A handle lives as
long as the idle limit, is replaced every few minutes while the user is active and whenever it is exchanged (a
reload, a new tab), and the one it replaces stops working at once. Handles end with the session (sign-out, expiry).

Handles are kept in the database, so every app worker behind the proxy can exchange them (a reload may reach
another worker, and a restarted worker still knows them). The database keeps neither the handle nor the token:
a handle is found by its SHA-256, and the token is stored sealed with a key stream derived from the handle itself,
so a copy of the database (or a backup) gives no way into anyone's session.
"""

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable

from sqlite_utils import Database

from crm.db import transaction


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _seal(handle: str, token: str) -> str:
    """The token XOR a key stream drawn from the handle (only someone holding the handle can open it)."""
    data = token.encode()
    stream = hashlib.shake_256(b"crm-session-handle\0" + handle.encode()).digest(len(data))
    return bytes(a ^ b for a, b in zip(data, stream, strict=True)).hex()


def _open(handle: str, sealed: str) -> str | None:
    data = bytes.fromhex(sealed)
    stream = hashlib.shake_256(b"crm-session-handle\0" + handle.encode()).digest(len(data))
    try:
        return bytes(a ^ b for a, b in zip(data, stream, strict=True)).decode()
    except UnicodeDecodeError:
        return None


class Handles:
    """Issue, exchange and revoke handles in the ``session_handles`` table. ``clock`` gives seconds since the
    epoch (wall time, shared by every worker process)."""

    def __init__(self, clock: Callable[[], float] = time.time):
        self._clock = clock

    def issue(self, db: Database, token: str, lifetime_seconds: float) -> str:
        """A new handle for ``token``; every earlier handle of the same session (and every expired one) goes."""
        handle = secrets.token_urlsafe(32)
        now = self._clock()
        with transaction(db):
            db.execute("DELETE FROM session_handles WHERE token_hash = ? OR expires_at <= ?", [_digest(token), now])
            db.execute(
                "INSERT INTO session_handles (handle_hash, token_hash, sealed_token, expires_at) VALUES (?, ?, ?, ?)",
                [_digest(handle), _digest(token), _seal(handle, token), now + lifetime_seconds],
            )
        return handle

    def exchange(self, db: Database, handle: str) -> str | None:
        """The session token a live handle stands for, or None (unknown, replaced or expired)."""
        if not handle:
            return None
        row = db.execute(
            "SELECT token_hash, sealed_token, expires_at FROM session_handles WHERE handle_hash = ?",
            [_digest(handle)],
        ).fetchone()
        if row is None:
            return None
        if row[2] <= self._clock():
            with transaction(db):  # gone for good, whatever the clock says later
                db.execute("DELETE FROM session_handles WHERE handle_hash = ?", [_digest(handle)])
            return None
        token = _open(handle, row[1])
        if token is None or not hmac.compare_digest(_digest(token), row[0]):
            return None
        return token

    def revoke(self, db: Database, token: str) -> None:
        """End every handle of a session (sign-out, the session ended)."""
        with transaction(db):
            db.execute("DELETE FROM session_handles WHERE token_hash = ?", [_digest(token)])
