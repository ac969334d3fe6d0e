"""User accounts: argon2id passwords, sign-in with throttling, roles and their scope."""

import hashlib
import secrets
import unicodedata
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlite_utils import Database

from crm import audit, clock, fields
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD, ROLES, Actor, require_role
from crm.db import insert, transaction
from crm.errors import AlreadyExists, NotFound, PermissionDenied, SessionEnded, SignInFailed, ValidationError

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024
WRONG_CREDENTIALS = "Incorrect user name or password."
# Failed sign-ins are throttled, not locked: past a number of free failures, each further attempt waits a delay
# that doubles (2 s, 4 s, 8 s...) up to MAX_DELAY_SECONDS. Counted per user name and client address (one person
# guessing), per user name (guesses spread over many addresses) and per address (one address trying many names),
# so a stranger guessing at someone's name from elsewhere does not hold up their own sign-in for long.
MAX_FAILED_ATTEMPTS = 5  # free failures for one user name from one address
MAX_FAILED_PER_ACCOUNT = 20  # free failures for one user name from all addresses together
MAX_FAILED_PER_ADDRESS = 20  # free failures from one address, whatever the names
MAX_DELAY_SECONDS = 15 * 60
FORGET_FAILURES_AFTER = timedelta(hours=1)  # a quiet hour wipes the slate (and the addresses kept)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
# Verified against when the user name is unknown, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")


def _normalise_password(password: str) -> str:
    # The same password typed on different keyboards may arrive composed or decomposed (é vs e + ´).
    return unicodedata.normalize("NFC", password)


def check_password(password: str, field: str = "Password") -> str:
    """The password to hash, if it is acceptable.

    :raises ValidationError: when too short or too long.
    """
    password = _normalise_password(password or "")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError(field, f"must be at least {MIN_PASSWORD_LENGTH} characters long.")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError(field, f"must be at most {MAX_PASSWORD_LENGTH} characters long.")
    return password


def _username(value: str) -> str:
    name = fields.text(value, "User name", required=True, max_length=64)
    if any(c.isspace() for c in name):
        raise ValidationError("User name", "cannot contain spaces (try a dot: jo.bloggs).")
    return name


def _actor(row: dict) -> Actor:
    return Actor(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"],
        role=row["role"],
        region_id=row["region_id"],
        branch_id=row["branch_id"],
        session_version=row["session_version"],
    )


def count(db: Database) -> int:
    """How many user accounts exist (zero means the app still needs setting up)."""
    return db.execute("SELECT count(*) FROM users").fetchone()[0]


def _insert_user(
    db: Database,
    actor: Actor,
    username: str,
    display_name: str,
    role: str,
    password: str,
    region_id: int | None,
    branch_id: int | None,
) -> int:
    if role not in ROLES:
        raise ValidationError("Role", f"must be one of: {', '.join(ROLES)}.")
    if role == REGIONAL_LEAD and region_id is None:
        raise ValidationError("Region", "is required for a regional lead.")
    if role == BRANCH_MANAGER and branch_id is None:
        raise ValidationError("Branch", "is required for a branch manager.")
    if role != REGIONAL_LEAD:
        region_id = None
    if role != BRANCH_MANAGER:
        branch_id = None
    if region_id is not None and not db.execute("SELECT 1 FROM regions WHERE id = ?", [region_id]).fetchone():
        raise ValidationError("Region", "does not exist.")
    if branch_id is not None and not db.execute("SELECT 1 FROM branches WHERE id = ?", [branch_id]).fetchone():
        raise ValidationError("Branch", "does not exist.")
    if db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
        raise AlreadyExists(f"User name “{username}” is already taken.")
    values = {
        "username": username,
        "display_name": display_name,
        "password_hash": _hasher.hash(password),
        "role": role,
        "region_id": region_id,
        "branch_id": branch_id,
        "created_at": clock.stamp(),
    }
    user_id = insert(db, "users", values)
    audit.record(db, actor, "create", "users", user_id, values)
    return int(user_id)


def create_first_admin(db: Database, username: str, display_name: str, password: str) -> Actor:
    """Create the first administrator of a new database.

    :raises PermissionDenied: when any user already exists (set-up has been done).
    """
    username = _username(username)
    display_name = fields.text(display_name or username, "Full name", required=True)
    password = check_password(password)
    with transaction(db):
        if count(db):
            raise PermissionDenied("This app has already been set up. Sign in instead.")
        founder = Actor(id=None, username=username, display_name=display_name, role=ADMIN)
        user_id = _insert_user(db, founder, username, display_name, ADMIN, password, None, None)
    return get(db, user_id)


def add_user(
    db: Database,
    actor: Actor,
    username: str,
    display_name: str,
    role: str,
    password: str,
    region_id: int | None = None,
    branch_id: int | None = None,
) -> Actor:
    """Create an account (administrators only).

    :raises AlreadyExists: when the user name is taken.
    """
    require_role(actor, ADMIN)
    username = _username(username)
    display_name = fields.text(display_name, "Full name", required=True)
    password = check_password(password)
    with transaction(db):
        user_id = _insert_user(db, actor, username, display_name, role, password, region_id, branch_id)
    return get(db, user_id)


def get(db: Database, user_id: int) -> Actor:
    """:raises NotFound: when there is no such user."""
    rows = db.execute_returning_dicts("SELECT * FROM users WHERE id = ?", [user_id])
    if not rows:
        raise NotFound("No such user.")
    return _actor(rows[0])


def _typed_name(username: str | None) -> str:
    # Stored names are NFC (fields.text); a name typed in decomposed form must still match.
    return unicodedata.normalize("NFC", (username or "").strip())


def _row_by_name(db: Database, username: str) -> dict:
    rows = db.execute_returning_dicts("SELECT * FROM users WHERE username = ?", [_typed_name(username)])
    if not rows:
        raise NotFound(f"No user called “{_typed_name(username)}”.")
    return rows[0]


def sign_in(
    db: Database, username: str, password: str, now: datetime | None = None, address: str | None = None
) -> Actor:
    """Check a user name and password, throttling repeated failures (counted in the database).

    ``address`` is the client's network address where known (the web app passes it; the command line has none).
    An attempt is counted as a failure before the password is checked, in the same write transaction that reads
    the counts, so simultaneous guesses cannot get more checks than the limit; a right password gives it back.

    :raises SignInFailed: with the message to show: the same for unknown and existing user names, whether the
        password was wrong or the attempt came too soon (never saying which name exists).
    """
    now = now or clock.now()
    password = _normalise_password(password or "")
    name = _typed_name(username)
    keys = _throttle_keys(name, address)
    _reserve_attempt(db, name, keys, now)
    rows = db.execute_returning_dicts("SELECT * FROM users WHERE username = ?", [name])
    if not rows or len(password) > MAX_PASSWORD_LENGTH:
        _verify(_DUMMY_HASH, password)  # as slow as a real check, so a wrong name cannot be told by its speed
        raise SignInFailed(WRONG_CREDENTIALS)
    row = rows[0]
    if not _verify(row["password_hash"], password):
        with transaction(db):
            failures = db.execute("SELECT failed_attempts FROM users WHERE id = ?", [row["id"]]).fetchone()[0]
            audit.record(db, _actor(row), "sign_in_failed", "users", row["id"], {"failed_attempts": failures})
        raise SignInFailed(WRONG_CREDENTIALS)
    if row["disabled"]:
        raise SignInFailed("This account has been disabled. Ask an administrator.")
    actor = _actor(row)
    with transaction(db):
        db.execute(
            "UPDATE users SET failed_attempts = 0, locked_until = NULL, last_sign_in = ? WHERE id = ?",
            [clock.stamp(now), row["id"]],
        )
        _forgive(db, keys)
        audit.record(db, actor, "sign_in", "users", row["id"])
        if _hasher.check_needs_rehash(row["password_hash"]):
            db.execute("UPDATE users SET password_hash = ? WHERE id = ?", [_hasher.hash(password), row["id"]])
    return actor


def _throttle_keys(name: str, address: str | None) -> list[tuple[str, int]]:
    """The counters an attempt for user name ``name`` from ``address`` counts against, each with its free
    failures. Known and unknown names alike: a name that exists must not be told apart by being throttled."""
    account = name.lower()
    keys = [
        (f"account:{account}", MAX_FAILED_PER_ACCOUNT),
        (f"account+address:{account}|{address or ''}", MAX_FAILED_ATTEMPTS),
    ]
    if address:
        keys.append((f"address:{address}", MAX_FAILED_PER_ADDRESS))
    return keys


def throttle_delay(failures: int, free: int = MAX_FAILED_ATTEMPTS) -> int:
    """Seconds the next attempt must wait after ``failures`` failures: none within ``free``, then 2, 4, 8...
    up to MAX_DELAY_SECONDS."""
    if failures < free:
        return 0
    return min(2 ** (failures - free + 1), MAX_DELAY_SECONDS)


def _reserve_attempt(db: Database, name: str, keys: list[tuple[str, int]], now: datetime) -> None:
    """Count this attempt as a failure on every counter, unless one of them says to wait.

    :raises SignInFailed: when the attempt comes before a counter's delay has passed (it is not counted, so
        hammering does not lengthen the wait).
    """
    stamp = clock.stamp(now)
    forget_before = clock.stamp(now - FORGET_FAILURES_AFTER)
    with transaction(db):
        db.execute("DELETE FROM sign_in_throttle WHERE last_failure_at < ?", [forget_before])
        marks = ", ".join("?" for _ in keys)
        counts = {
            key: (failures, not_before)
            for key, failures, not_before in db.execute(
                f"SELECT key, failures, not_before FROM sign_in_throttle WHERE key IN ({marks})", [k for k, _ in keys]
            )
        }
        waits = [not_before for _, not_before in counts.values() if not_before and not_before > stamp]
        if waits:
            raise SignInFailed(_wait_message(_parse_stamp(max(waits), now) - now))
        for key, free in keys:
            failures = counts.get(key, (0, None))[0] + 1
            delay = throttle_delay(failures, free)
            not_before = clock.stamp(now + timedelta(seconds=delay)) if delay else None
            db.execute(
                "INSERT INTO sign_in_throttle (key, failures, not_before, last_failure_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, not_before = excluded.not_before, "
                "last_failure_at = excluded.last_failure_at",
                [key, failures, not_before, stamp],
            )
            if key.startswith("account:"):
                # Shown on the Users page (when the name is an account): failures and wait across all addresses.
                db.execute(
                    "UPDATE users SET failed_attempts = ?, locked_until = ? WHERE username = ?",
                    [failures, not_before, name],
                )


def _forgive(db: Database, keys: list[tuple[str, int]]) -> None:
    """After a right password: the user name's counters are cleared, and the address gets its attempt back."""
    for key, _ in keys:
        if key.startswith("address:"):
            db.execute("UPDATE sign_in_throttle SET failures = max(failures - 1, 0) WHERE key = ?", [key])
        else:
            db.execute("DELETE FROM sign_in_throttle WHERE key = ?", [key])


def _clear_throttle(db: Database, username: str) -> None:
    """Let an account sign in at once (an administrator re-enabled it or set its password)."""
    account = username.lower()
    db.execute(
        "DELETE FROM sign_in_throttle WHERE key = ? OR substr(key, 1, ?) = ?",
        [f"account:{account}", len(f"account+address:{account}|"), f"account+address:{account}|"],
    )


def _parse_stamp(stamp: str, like: datetime) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=like.tzinfo)


def _wait_message(wait: timedelta) -> str:
    seconds = max(1, int(wait.total_seconds()))
    if seconds < 60:
        left = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        minutes = -(-seconds // 60)
        left = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"Too many failed sign-ins. Wait {left} before trying again."


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


SESSION_HOURS = 12  # a working day; after that, sign in again whatever the activity
_TOUCH_SECONDS = 60  # how stale last_seen_at may get before a rerun writes it again


def _token_hash(token: str) -> str:
    # Only a hash is stored: a copy of the database does not give anyone a way into live sessions.
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(db: Database, actor: Actor, now: datetime | None = None) -> str:
    """Open a server-side session for a signed-in user (recorded as their last sign-in); returns the secret token
    for the browser cookie."""
    token = secrets.token_urlsafe(32)
    stamp = clock.stamp(now)
    with transaction(db):
        # Sessions nobody came back to: gone once they could no longer be resumed anyway.
        db.execute(
            "DELETE FROM sessions WHERE created_at < ?",
            [clock.stamp((now or clock.now()) - timedelta(hours=SESSION_HOURS))],
        )
        db.execute(
            "INSERT INTO sessions (token_hash, user_id, session_version, created_at, last_seen_at) "
            "VALUES (?, ?, ?, ?, ?)",
            [_token_hash(token), actor.id, actor.session_version, stamp, stamp],
        )
        # Every way in counts as a sign-in, also the first administrator's session straight after set-up.
        db.execute("UPDATE users SET last_sign_in = ? WHERE id = ?", [stamp, actor.id])
    return token


def resume_session(db: Database, token: str, idle_minutes: int, now: datetime | None = None) -> Actor:
    """The user of a session token, re-read from the database (role and scope as they are now).

    :raises SessionEnded: with the reason to show, when the token is unknown, idle longer than
        ``idle_minutes``, older than SESSION_HOURS, or the account was disabled or its password changed.
    """
    now = now or clock.now()
    rows = db.execute_returning_dicts(
        "SELECT s.id AS session_id, s.session_version AS token_version, s.created_at AS started, s.last_seen_at, "
        "u.* FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.token_hash = ?",
        [_token_hash(token)],
    )
    if not rows:
        raise SessionEnded("You are signed out. Sign in to continue.")
    row = rows[0]
    reason = None
    if row["disabled"]:
        reason = "This account has been disabled. Ask an administrator."
    elif row["token_version"] != row["session_version"]:
        reason = "Your password or account was changed, so you were signed out. Sign in again."
    elif row["last_seen_at"] < clock.stamp(now - timedelta(minutes=idle_minutes)):
        reason = f"You were signed out after {idle_minutes} minutes without activity. Sign in again."
    elif row["started"] < clock.stamp(now - timedelta(hours=SESSION_HOURS)):
        reason = f"Sessions last {SESSION_HOURS} hours. Sign in again."
    if reason:
        end_session(db, token)
        raise SessionEnded(reason)
    if row["last_seen_at"] < clock.stamp(now - timedelta(seconds=_TOUCH_SECONDS)):
        with transaction(db):
            db.execute("UPDATE sessions SET last_seen_at = ? WHERE id = ?", [clock.stamp(now), row["session_id"]])
    return _actor(row)


def end_session(db: Database, token: str) -> None:
    """Sign a session out (no error if it has already gone)."""
    with transaction(db):
        db.execute("DELETE FROM sessions WHERE token_hash = ?", [_token_hash(token)])


def list_users(db: Database, actor: Actor) -> list[dict]:
    """Every account with its role and where it works (administrators only)."""
    require_role(actor, ADMIN)
    return db.execute_returning_dicts(
        """
        SELECT u.id, u.username, u.display_name, u.role, r.name AS region, b.name AS branch,
               u.disabled, CASE WHEN u.locked_until > ? THEN u.locked_until END AS locked_until, u.last_sign_in
        FROM users u
        LEFT JOIN regions r ON r.id = u.region_id
        LEFT JOIN branches b ON b.id = u.branch_id
        ORDER BY u.username COLLATE NOCASE
        """,
        [clock.stamp()],  # a wait that has passed is no longer worth showing
    )


def set_disabled(db: Database, actor: Actor, username: str, disabled: bool = True) -> None:
    """Disable (or re-enable) an account; a disabled user's open sessions end on their next action."""
    require_role(actor, ADMIN)
    with transaction(db):
        row = _row_by_name(db, username)
        if disabled and row["id"] == actor.id:
            raise PermissionDenied("You cannot disable your own account.")
        db.execute(
            "UPDATE users SET disabled = ?, session_version = session_version + 1, failed_attempts = 0, "
            "locked_until = NULL WHERE id = ?",
            [int(disabled), row["id"]],
        )
        _clear_throttle(db, row["username"])
        audit.record(db, actor, "update", "users", row["id"], {"disabled": [bool(row["disabled"]), disabled]})


def set_password(db: Database, actor: Actor, username: str, password: str) -> None:
    """Set a new password (administrators, or users for themselves); every open session of that user ends
    (their next action tells them why)."""
    row = _row_by_name(db, username)
    if actor.role != ADMIN and actor.id != row["id"]:
        raise PermissionDenied("You can only change your own password.")
    password = check_password(password, "New password")
    password_hash = _hasher.hash(password)
    with transaction(db):
        db.execute(
            "UPDATE users SET password_hash = ?, session_version = session_version + 1, failed_attempts = 0, "
            "locked_until = NULL WHERE id = ?",
            [password_hash, row["id"]],
        )
        _clear_throttle(db, row["username"])
        audit.record(db, actor, "password_changed", "users", row["id"])
