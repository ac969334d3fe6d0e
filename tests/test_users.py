"""User accounts: set-up, adding users, sign-in with lockout, disabling, password changes, what is stored."""

import threading
import time
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from crm import audit, branches, clock, db, users
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD, Actor
from crm.errors import AlreadyExists, CRMError, PermissionDenied, SessionEnded, SignInFailed, ValidationError
from tests.conftest import PASSWORD

WRONG = "Incorrect user name or password."
THROTTLED = "Too many failed sign-ins. Wait {} before trying again."
SIGNED_OUT = "You are signed out. Sign in to continue."
IDLE = 30  # minutes
MOMENT = datetime(2030, 5, 6, 9, 0, 0, tzinfo=UTC)


@pytest.fixture
def places(database, admin) -> dict[str, int]:
    """A region with a branch in it (no users, so no password hashing)."""
    north = branches.add_region(database, admin, "North")
    return {"north": north, "leeds": branches.add_branch(database, admin, "Leeds", north)}


@pytest.fixture
def manager(database, admin, places) -> Actor:
    return users.add_user(
        database, admin, "manager.leeds", "Lee Leeds", BRANCH_MANAGER, PASSWORD, branch_id=places["leeds"]
    )


def _user_row(path, username: str) -> dict:
    """The user's row as another connection (another browser tab, after a refresh) sees it."""
    other = db.connect(path)
    try:
        return other.execute_returning_dicts("SELECT * FROM users WHERE username = ?", [username])[0]
    finally:
        other.close()


def test_create_first_admin(database):
    """Test that the first administrator is created with the details given and an audit entry."""
    admin = users.create_first_admin(database, " ada ", "Ada Admin", PASSWORD)

    assert admin == Actor(id=1, username="ada", display_name="Ada Admin", role=ADMIN, session_version=1)
    assert users.count(database) == 1
    [entry] = audit.entries(database, "users", 1)
    assert (entry["username"], entry["action"], entry["user_id"]) == ("ada", "create", None)
    assert entry["changes"] == {
        "username": "ada",
        "display_name": "Ada Admin",
        "role": "admin",
        "region_id": None,
        "branch_id": None,
        "created_at": entry["changes"]["created_at"],
    }


def test_create_first_admin_defaults_full_name(database):
    """Test that the first administrator's full name defaults to the user name."""
    assert users.create_first_admin(database, "ada", "", PASSWORD).display_name == "ada"


def test_create_first_admin_refused_second_time(database, admin):
    """Test that set-up cannot be run again once a user exists, and nothing is written."""
    with pytest.raises(PermissionDenied) as caught:
        users.create_first_admin(database, "mallory", "Mallory", "another good password")

    assert str(caught.value) == "This app has already been set up. Sign in instead."
    assert users.count(database) == 1
    assert [e["action"] for e in audit.entries(database)] == ["create"]


def test_create_first_admin_checks_password(database):
    """Test that set-up refuses a short password and creates nobody."""
    with pytest.raises(ValidationError) as caught:
        users.create_first_admin(database, "ada", "Ada", "short")

    assert str(caught.value) == "Password: must be at least 10 characters long."
    assert users.count(database) == 0


def test_add_user_each_role(database, admin, places):
    """Test that a user of each role is created with the scope that role needs (and only that scope)."""
    lead = users.add_user(
        database, admin, "lead.north", "Nia North", REGIONAL_LEAD, PASSWORD, region_id=places["north"], branch_id=9
    )
    manager = users.add_user(
        database, admin, "manager.leeds", "Lee Leeds", BRANCH_MANAGER, PASSWORD, region_id=9, branch_id=places["leeds"]
    )
    other_admin = users.add_user(database, admin, "bo", "Bo Admin", ADMIN, PASSWORD, region_id=9, branch_id=9)

    assert lead == Actor(id=2, username="lead.north", display_name="Nia North", role=REGIONAL_LEAD, region_id=1)
    assert manager == Actor(id=3, username="manager.leeds", display_name="Lee Leeds", role=BRANCH_MANAGER, branch_id=1)
    assert other_admin == Actor(id=4, username="bo", display_name="Bo Admin", role=ADMIN)
    assert users.list_users(database, admin) == [
        {
            "id": 1,
            "username": "ada",
            "display_name": "Ada Admin",
            "role": "admin",
            "region": None,
            "branch": None,
            "disabled": 0,
            "locked_until": None,
            "last_sign_in": None,
        },
        {
            "id": 4,
            "username": "bo",
            "display_name": "Bo Admin",
            "role": "admin",
            "region": None,
            "branch": None,
            "disabled": 0,
            "locked_until": None,
            "last_sign_in": None,
        },
        {
            "id": 2,
            "username": "lead.north",
            "display_name": "Nia North",
            "role": "regional_lead",
            "region": "North",
            "branch": None,
            "disabled": 0,
            "locked_until": None,
            "last_sign_in": None,
        },
        {
            "id": 3,
            "username": "manager.leeds",
            "display_name": "Lee Leeds",
            "role": "branch_manager",
            "region": None,
            "branch": "Leeds",
            "disabled": 0,
            "locked_until": None,
            "last_sign_in": None,
        },
    ]


@pytest.mark.parametrize(
    ("username", "full_name", "role", "password", "scope", "error", "message"),
    [
        (
            "jo",
            "Jo",
            "superuser",
            PASSWORD,
            {},
            ValidationError,
            "Role: must be one of: admin, regional_lead, branch_manager.",
        ),
        ("jo", "Jo", REGIONAL_LEAD, PASSWORD, {}, ValidationError, "Region: is required for a regional lead."),
        (
            "jo",
            "Jo",
            REGIONAL_LEAD,
            PASSWORD,
            {"branch_id": 1},
            ValidationError,
            "Region: is required for a regional lead.",
        ),
        ("jo", "Jo", BRANCH_MANAGER, PASSWORD, {}, ValidationError, "Branch: is required for a branch manager."),
        (
            "jo",
            "Jo",
            BRANCH_MANAGER,
            PASSWORD,
            {"region_id": 1},
            ValidationError,
            "Branch: is required for a branch manager.",
        ),
        ("", "Jo", ADMIN, PASSWORD, {}, ValidationError, "User name: is required."),
        (
            "jo bloggs",
            "Jo",
            ADMIN,
            PASSWORD,
            {},
            ValidationError,
            "User name: cannot contain spaces (try a dot: jo.bloggs).",
        ),
        (
            "jo\u00a0bloggs",
            "Jo",
            ADMIN,
            PASSWORD,
            {},
            ValidationError,
            "User name: cannot contain spaces (try a dot: jo.bloggs).",
        ),
        (
            "j" * 65,
            "Jo",
            ADMIN,
            PASSWORD,
            {},
            ValidationError,
            "User name: is too long (65 characters; the limit is 64).",
        ),
        ("jo", "", ADMIN, PASSWORD, {}, ValidationError, "Full name: is required."),
        ("jo", "Jo", ADMIN, "short", {}, ValidationError, "Password: must be at least 10 characters long."),
        ("jo", "Jo", ADMIN, "123456789", {}, ValidationError, "Password: must be at least 10 characters long."),
        ("jo", "Jo", ADMIN, "", {}, ValidationError, "Password: must be at least 10 characters long."),
        ("jo", "Jo", ADMIN, "x" * 1025, {}, ValidationError, "Password: must be at most 1024 characters long."),
        ("ada", "Ada Again", ADMIN, PASSWORD, {}, AlreadyExists, "User name “ada” is already taken."),
        ("ADA", "Ada Again", ADMIN, PASSWORD, {}, AlreadyExists, "User name “ADA” is already taken."),
        (" ada ", "Ada Again", ADMIN, PASSWORD, {}, AlreadyExists, "User name “ada” is already taken."),
    ],
)
def test_add_user_refused(database, admin, places, username, full_name, role, password, scope, error, message):
    """Test that an account with a bad role, scope, name or password is refused with the exact message."""
    with pytest.raises(error) as caught:
        users.add_user(database, admin, username, full_name, role, password, **scope)

    assert str(caught.value) == message
    assert users.count(database) == 1


@pytest.mark.parametrize(("role", "scope"), [(REGIONAL_LEAD, {"region_id": 999}), (BRANCH_MANAGER, {"branch_id": 999})])
def test_add_user_unknown_region_or_branch(database, admin, places, role, scope):
    """Test that a region or branch that does not exist is refused with a CRMError (regression: IntegrityError)."""
    with pytest.raises(CRMError):
        users.add_user(database, admin, "jo", "Jo", role, PASSWORD, **scope)

    assert users.count(database) == 1


def test_add_user_admins_only(database, admin, manager):
    """Test that only administrators may add users."""
    with pytest.raises(PermissionDenied) as caught:
        users.add_user(database, manager, "jo", "Jo", ADMIN, PASSWORD)

    assert str(caught.value) == "Your role does not allow this."
    assert users.count(database) == 2


def test_sign_in(database, admin, db_path):
    """Test that the right password signs in, records the time and writes an audit entry."""
    actor = users.sign_in(database, "ada", PASSWORD, now=MOMENT)

    assert actor == admin
    row = _user_row(db_path, "ada")
    assert (row["failed_attempts"], row["locked_until"], row["last_sign_in"]) == (0, None, "2030-05-06T09:00:00Z")
    assert [(e["action"], e["user_id"], e["row_id"]) for e in audit.entries(database, "users")][0] == ("sign_in", 1, 1)


def test_sign_in_user_name_ignores_case_and_spaces(database, admin):
    """Test that the user name is matched without regard to case or surrounding spaces."""
    assert users.sign_in(database, "  ADA ", PASSWORD) == admin


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("ada", "wrong password!"),
        ("ada", ""),
        ("ada", PASSWORD.upper()),
        ("ada", PASSWORD + " "),
        ("nobody", PASSWORD),
        ("", PASSWORD),
        ("ada", "x" * 1025),
    ],
)
def test_sign_in_refused_with_one_message(database, admin, username, password):
    """Test that a wrong password and an unknown user get the same message, never saying which was wrong."""
    with pytest.raises(SignInFailed) as caught:
        users.sign_in(database, username, password)

    assert str(caught.value) == WRONG


def test_failures_counted_in_database(database, admin, db_path):
    """Test that each wrong password is counted in the database, where every connection sees it."""
    for _ in range(3):
        with pytest.raises(SignInFailed):
            users.sign_in(database, "ada", "wrong password!", now=MOMENT)

    assert _user_row(db_path, "ada")["failed_attempts"] == 3
    assert [e["changes"] for e in audit.entries(database, "users") if e["action"] == "sign_in_failed"] == [
        {"failed_attempts": 3},
        {"failed_attempts": 2},
        {"failed_attempts": 1},
    ]


def test_five_failures_make_the_next_attempt_wait_and_survive_refresh(database, admin, db_path):
    """Test that after five failures the next attempt must wait, and a new connection (a refreshed page) still
    has to: the counts are in the database."""
    for attempt in range(5):
        with pytest.raises(SignInFailed) as caught:
            users.sign_in(database, "ada", "wrong password!", now=MOMENT)
        assert str(caught.value) == WRONG, attempt

    refreshed = db.connect(db_path)
    try:
        with pytest.raises(SignInFailed) as caught:
            users.sign_in(refreshed, "ada", PASSWORD, now=MOMENT + timedelta(seconds=1))
    finally:
        refreshed.close()
    assert str(caught.value) == THROTTLED.format("1 second")


def test_failures_from_several_connections_add_up(database, admin, db_path):
    """Test that failures from different connections (tabs, processes) are all counted towards the wait."""
    other = db.connect(db_path)
    try:
        for connection in (database, other, database, other, database):
            with pytest.raises(SignInFailed):
                users.sign_in(connection, "ada", "wrong password!", now=MOMENT)
        with pytest.raises(SignInFailed) as caught:
            users.sign_in(other, "ada", PASSWORD, now=MOMENT)
    finally:
        other.close()

    assert str(caught.value) == THROTTLED.format("2 seconds")


def test_the_wait_doubles_with_each_failure_and_the_right_password_works_after_it(database, admin):
    """Test that past five failures each wrong password doubles the wait (2 s, 4 s, 8 s... at most 15 minutes),
    the message says how long is left, and the right password works once the wait is over, clearing the count.
    Regression: five failures locked the account for 15 minutes, again and again, for anyone who knew its name."""
    for _ in range(5):
        with pytest.raises(SignInFailed):
            users.sign_in(database, "ada", "wrong password!", now=MOMENT)
    at = MOMENT
    for wait in (2, 4, 8):
        with pytest.raises(SignInFailed) as too_soon:
            users.sign_in(database, "ada", PASSWORD, now=at + timedelta(seconds=wait - 1))
        assert str(too_soon.value) == THROTTLED.format("1 second")
        at += timedelta(seconds=wait)
        with pytest.raises(SignInFailed) as wrong:
            users.sign_in(database, "ada", "wrong password!", now=at)
        assert str(wrong.value) == WRONG
    with pytest.raises(SignInFailed) as too_soon:
        users.sign_in(database, "ada", PASSWORD, now=at)
    assert str(too_soon.value) == THROTTLED.format("16 seconds")

    assert users.sign_in(database, "ada", PASSWORD, now=at + timedelta(seconds=16)) == admin
    assert [users.throttle_delay(n) for n in (4, 5, 6, 7, 14, 15, 40)] == [0, 2, 4, 8, 900, 900, 900]
    row = database.execute_returning_dicts("SELECT failed_attempts, locked_until FROM users WHERE id = 1")[0]
    assert row == {"failed_attempts": 0, "locked_until": None}
    assert database.execute("SELECT count(*) FROM sign_in_throttle").fetchone()[0] == 0


def test_attempts_during_the_wait_do_not_lengthen_it(database, admin):
    """Test that attempts refused for coming too soon are not counted: hammering does not extend the wait."""
    for _ in range(5):
        with pytest.raises(SignInFailed):
            users.sign_in(database, "ada", "wrong password!", now=MOMENT)
    for _ in range(10):
        with pytest.raises(SignInFailed) as caught:
            users.sign_in(database, "ada", "wrong password!", now=MOMENT + timedelta(seconds=1))
        assert str(caught.value) == THROTTLED.format("1 second")

    assert users.sign_in(database, "ada", PASSWORD, now=MOMENT + timedelta(seconds=2)) == admin


def test_success_resets_failure_count(database, admin):
    """Test that a successful sign-in clears earlier failures, so they do not add up across days."""
    for _ in range(4):
        with pytest.raises(SignInFailed):
            users.sign_in(database, "ada", "wrong password!", now=MOMENT)
    users.sign_in(database, "ada", PASSWORD, now=MOMENT)
    for _ in range(4):
        with pytest.raises(SignInFailed) as caught:
            users.sign_in(database, "ada", "wrong password!", now=MOMENT)

    assert str(caught.value) == WRONG
    assert database.execute("SELECT failed_attempts, locked_until FROM users WHERE id = 1").fetchone() == (4, None)


def test_disabled_user_refused_and_session_ended(database, admin, manager):
    """Test that a disabled account cannot sign in and its open session ends; re-enabled, it signs in again."""
    token = users.start_session(database, users.sign_in(database, "manager.leeds", PASSWORD))
    assert users.resume_session(database, token, IDLE) == manager

    users.set_disabled(database, admin, "manager.leeds")

    with pytest.raises(SessionEnded) as caught:
        users.resume_session(database, token, IDLE)
    assert str(caught.value) == "This account has been disabled. Ask an administrator."
    with pytest.raises(SessionEnded) as caught:  # the ended session is gone for good
        users.resume_session(database, token, IDLE)
    assert str(caught.value) == SIGNED_OUT
    with pytest.raises(SignInFailed) as caught:
        users.sign_in(database, "manager.leeds", PASSWORD)
    assert str(caught.value) == "This account has been disabled. Ask an administrator."

    users.set_disabled(database, admin, "manager.leeds", False)

    with pytest.raises(SessionEnded):  # the old session stays ended
        users.resume_session(database, token, IDLE)
    again = users.sign_in(database, "manager.leeds", PASSWORD)
    assert again == Actor(
        id=2, username="manager.leeds", display_name="Lee Leeds", role=BRANCH_MANAGER, branch_id=1, session_version=3
    )
    assert users.resume_session(database, users.start_session(database, again), IDLE) == again
    assert [e["changes"] for e in audit.entries(database, "users", manager.id) if e["action"] == "update"] == [
        {"disabled": [True, False]},
        {"disabled": [False, True]},
    ]


def test_disabled_user_wrong_password_gets_the_usual_message(database, admin, manager):
    """Test that a wrong password for a disabled account does not reveal that the account exists."""
    users.set_disabled(database, admin, "manager.leeds")

    with pytest.raises(SignInFailed) as caught:
        users.sign_in(database, "manager.leeds", "wrong password!")

    assert str(caught.value) == WRONG


def test_admin_cannot_disable_self(database, admin):
    """Test that an administrator cannot lock themselves (and possibly everyone) out."""
    token = users.start_session(database, admin)
    with pytest.raises(PermissionDenied) as caught:
        users.set_disabled(database, admin, "ada")

    assert str(caught.value) == "You cannot disable your own account."
    assert users.resume_session(database, token, IDLE) == admin


def test_disable_only_by_admin(database, admin, manager):
    """Test that a branch manager cannot disable anyone."""
    with pytest.raises(PermissionDenied) as caught:
        users.set_disabled(database, manager, "ada")

    assert str(caught.value) == "Your role does not allow this."


def test_set_password_ends_sessions(database, admin, manager):
    """Test that a new password works, the old one does not, and sessions opened before are ended."""
    session = users.sign_in(database, "manager.leeds", PASSWORD)
    tokens = [users.start_session(database, session) for _ in range(2)]  # two tabs, or two computers

    users.set_password(database, session, "manager.leeds", "a brand new password")

    for token in tokens:
        with pytest.raises(SessionEnded) as caught:
            users.resume_session(database, token, IDLE)
        assert str(caught.value) == "Your password or account was changed, so you were signed out. Sign in again."
    with pytest.raises(SignInFailed):
        users.sign_in(database, "manager.leeds", PASSWORD)
    assert users.sign_in(database, "manager.leeds", "a brand new password").session_version == 2
    assert [
        e["changes"] for e in audit.entries(database, "users", manager.id) if e["action"] == "password_changed"
    ] == [{}]


def test_session_from_before_a_password_change_refused(database, admin, manager):
    """Test that a session started for the account as it was before a password change is refused, saying why."""
    before = users.sign_in(database, "manager.leeds", PASSWORD)
    users.set_password(database, admin, "manager.leeds", "a brand new password")
    token = users.start_session(database, before)

    with pytest.raises(SessionEnded) as caught:
        users.resume_session(database, token, IDLE)

    assert str(caught.value) == "Your password or account was changed, so you were signed out. Sign in again."


def test_session_resumes_after_reload(database, admin, manager):
    """Test that a resumed session re-reads the user, so a reload finds the same actor without a password."""
    token = users.start_session(database, manager, now=MOMENT)

    assert users.resume_session(database, token, IDLE, now=MOMENT + timedelta(minutes=29)) == manager


def test_idle_session_ends(database, admin):
    """Test that a session unused for longer than the idle limit ends, and stays ended."""
    token = users.start_session(database, admin, now=MOMENT)

    with pytest.raises(SessionEnded) as caught:
        users.resume_session(database, token, IDLE, now=MOMENT + timedelta(minutes=IDLE, seconds=1))
    assert str(caught.value) == "You were signed out after 30 minutes without activity. Sign in again."
    with pytest.raises(SessionEnded) as caught:
        users.resume_session(database, token, IDLE, now=MOMENT + timedelta(minutes=IDLE, seconds=2))
    assert str(caught.value) == SIGNED_OUT


def test_active_session_ends_after_its_lifetime(database, admin):
    """Test that a session in use all day still ends SESSION_HOURS after it started."""
    token = users.start_session(database, admin, now=MOMENT)
    moment = MOMENT
    while moment < MOMENT + timedelta(hours=users.SESSION_HOURS) - timedelta(minutes=20):
        moment += timedelta(minutes=20)
        assert users.resume_session(database, token, IDLE, now=moment) == admin

    with pytest.raises(SessionEnded) as caught:
        users.resume_session(database, token, IDLE, now=moment + timedelta(minutes=20, seconds=1))
    assert str(caught.value) == f"Sessions last {users.SESSION_HOURS} hours. Sign in again."


def test_signed_out_session_and_unknown_token_refused(database, admin):
    """Test that a signed-out token and a made-up one are both refused."""
    token = users.start_session(database, admin)
    users.end_session(database, token)
    users.end_session(database, token)  # twice is harmless

    for candidate in (token, "made-up-token", ""):
        with pytest.raises(SessionEnded) as caught:
            users.resume_session(database, candidate, IDLE)
        assert str(caught.value) == SIGNED_OUT


def test_set_password_rules(database, admin, manager):
    """Test that users change only their own password (administrators any), and short ones are refused."""
    with pytest.raises(PermissionDenied) as caught:
        users.set_password(database, manager, "ada", "a brand new password")
    assert str(caught.value) == "You can only change your own password."

    with pytest.raises(ValidationError) as caught:
        users.set_password(database, manager, "manager.leeds", "short")
    assert str(caught.value) == "New password: must be at least 10 characters long."

    users.set_password(database, admin, "manager.leeds", "set by the administrator")
    assert users.sign_in(database, "manager.leeds", "set by the administrator").username == "manager.leeds"


@pytest.mark.parametrize(
    "password",
    [
        "x" * 1000,
        "pässwörd-日本語-🙂🙂",
        "   spaces around   ",
        "\u202eright-to-left override",
        "'; DROP TABLE users; --",
    ],
)
def test_unusual_passwords_work(database, admin, password):
    """Test that long, non-ASCII and hostile-looking passwords are stored and accepted exactly."""
    users.add_user(database, admin, "jo", "Jo", ADMIN, password)

    assert users.sign_in(database, "jo", password).username == "jo"
    with pytest.raises(SignInFailed):
        users.sign_in(database, "jo", password[:-1])


def test_composed_and_decomposed_passwords_match(database, admin):
    """Test that the NFC and NFD forms of one password both sign in, whichever was set."""
    password = "pässwörd-日本語-🙂🙂"
    nfc, nfd = unicodedata.normalize("NFC", password), unicodedata.normalize("NFD", password)
    assert nfc != nfd
    users.add_user(database, admin, "set.nfc", "Set NFC", ADMIN, nfc)
    users.add_user(database, admin, "set.nfd", "Set NFD", ADMIN, nfd)

    for username in ("set.nfc", "set.nfd"):
        for typed in (nfc, nfd):
            assert users.sign_in(database, username, typed).username == username


def test_composed_and_decomposed_user_names_match(database, admin):
    """Test that a non-ASCII user name typed decomposed still signs in (regression: only passwords were NFC'd)."""
    users.add_user(database, admin, unicodedata.normalize("NFD", "zoë.smith"), "Zoë Smith", ADMIN, PASSWORD)

    assert users.sign_in(database, unicodedata.normalize("NFC", "zoë.smith"), PASSWORD).username == "zoë.smith"
    assert users.sign_in(database, unicodedata.normalize("NFD", "zoë.smith"), PASSWORD).username == "zoë.smith"


def test_password_stored_only_as_argon2id(database, admin, places):
    """Test that the hash is argon2id and neither password nor session token is in any table, audit log included."""
    password = "pässwörd-日本語-🙂🙂 secret"
    users.add_user(database, admin, "jo", "Jo", BRANCH_MANAGER, password, branch_id=places["leeds"])
    users.sign_in(database, "jo", password)
    with pytest.raises(SignInFailed):
        users.sign_in(database, "jo", password + "!")
    users.set_password(database, admin, "jo", password + " new")
    token = users.start_session(database, users.sign_in(database, "jo", password + " new"))

    hashes = [row[0] for row in database.execute("SELECT password_hash FROM users ORDER BY id")]
    assert [h.startswith("$argon2id$") for h in hashes] == [True, True]
    for table in database.table_names():
        for row in database.execute(f"SELECT * FROM [{table}]").fetchall():
            for value in row:
                for secret in (password, password + " new", password + "!", PASSWORD, token):
                    assert secret not in str(value), (table, row)
    for entry in database.execute("SELECT changes FROM audit_log").fetchall():
        assert not any(h in entry[0] for h in hashes)
        assert "password_hash" not in entry[0]


# Throttling failed sign-ins: atomic counting, no telling names apart, per address.


@pytest.fixture
def quick_checks(monkeypatch):
    """Password checks without argon2's deliberate slowness, for tests making dozens of attempts: every account
    in them has PASSWORD, and an unknown name (checked against the dummy hash) never matches."""
    monkeypatch.setattr(
        users, "_verify", lambda password_hash, password: password_hash != users._DUMMY_HASH and password == PASSWORD
    )


def test_forty_simultaneous_guesses_get_at_most_five_checks(database, admin, db_path, monkeypatch):
    """Test that 40 wrong guesses fired at once from 40 connections get exactly five password checks and the
    other 35 are told to wait. Regression: the lock was read before the slow hash, outside the write lock, so
    all 40 guesses were checked (and a right one among them accepted) despite the limit of five."""
    checks: list[str] = []
    guard = threading.Lock()

    def slow_check(password_hash: str, password: str) -> bool:
        with guard:
            checks.append(password)
        time.sleep(0.05)  # as a real hash does, leave time for the other guesses to arrive
        return False

    monkeypatch.setattr(users, "_verify", slow_check)
    start = threading.Barrier(40)
    messages: list[str] = []

    def guess(n: int) -> None:
        connection = db.connect(db_path)
        try:
            start.wait()
            users.sign_in(connection, "ada", f"guess number {n}", now=MOMENT)
        except SignInFailed as refused:
            with guard:
                messages.append(str(refused))
        finally:
            connection.close()

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(checks) == 5
    assert Counter(messages) == {WRONG: 5, THROTTLED.format("2 seconds"): 35}
    assert database.execute("SELECT failed_attempts FROM users WHERE username = 'ada'").fetchone() == (5,)


def test_unknown_and_existing_names_get_the_same_answers(database, admin, monkeypatch):
    """Test that guessing at an unknown user name gets exactly the answers guessing at a real one gets, wrong
    password and wait messages alike, with a password hash checked each time either is checked. Regression:
    only real accounts were ever "locked", so the message told which names exist."""
    checked: list[str] = []
    real_check = users._verify
    monkeypatch.setattr(users, "_verify", lambda h, p: checked.append(p) or real_check(h, p))

    def answers(username: str) -> tuple[list[str], int]:
        checked.clear()
        said = []
        for second in (0, 0, 0, 0, 0, 1, 2, 3, 6):
            with pytest.raises(SignInFailed) as caught:
                users.sign_in(database, username, "wrong password!", now=MOMENT + timedelta(seconds=second))
            said.append(str(caught.value))
        return said, len(checked)

    real, unknown = answers("ada"), answers("nobody")

    assert real == unknown
    assert real == ([WRONG] * 5 + [THROTTLED.format("1 second"), WRONG, THROTTLED.format("3 seconds"), WRONG], 7)


def test_a_stranger_guessing_from_elsewhere_does_not_keep_the_user_out(database, admin, quick_checks):
    """Test that failures for a name from one address make that address wait, while the account's owner signing
    in from another address gets straight in."""
    for _ in range(8):
        with pytest.raises(SignInFailed):
            users.sign_in(database, "ada", "wrong password!", now=MOMENT, address="203.0.113.5")

    with pytest.raises(SignInFailed) as caught:
        users.sign_in(database, "ada", PASSWORD, now=MOMENT, address="203.0.113.5")
    assert str(caught.value) == THROTTLED.format("2 seconds")
    assert users.sign_in(database, "ada", PASSWORD, now=MOMENT, address="198.51.100.7") == admin


def test_one_address_trying_many_names_is_throttled(database, admin, quick_checks):
    """Test that an address with 20 failures across 20 different user names must wait before trying any name,
    even a right password, while another address is not held up."""
    for n in range(users.MAX_FAILED_PER_ADDRESS):
        with pytest.raises(SignInFailed) as caught:
            users.sign_in(database, f"name{n}", "wrong password!", now=MOMENT, address="203.0.113.5")
        assert str(caught.value) == WRONG

    with pytest.raises(SignInFailed) as caught:
        users.sign_in(database, "ada", PASSWORD, now=MOMENT, address="203.0.113.5")
    assert str(caught.value) == THROTTLED.format("2 seconds")
    assert users.sign_in(database, "ada", PASSWORD, now=MOMENT, address="198.51.100.7") == admin
    assert users.sign_in(database, "ada", PASSWORD, now=MOMENT + timedelta(seconds=2), address="203.0.113.5") == admin


def test_guesses_spread_over_many_addresses_are_throttled_per_name(database, admin, quick_checks, monkeypatch):
    """Test that 20 failures for one name from 20 addresses make every address wait for that name, and the Users
    page shows the wait until it is over."""
    for n in range(users.MAX_FAILED_PER_ACCOUNT):
        with pytest.raises(SignInFailed):
            users.sign_in(database, "ada", "wrong password!", now=MOMENT, address=f"203.0.113.{n}")

    with pytest.raises(SignInFailed) as caught:
        users.sign_in(database, "ada", PASSWORD, now=MOMENT, address="198.51.100.7")
    assert str(caught.value) == THROTTLED.format("2 seconds")
    assert _locked_until(database) == "2030-05-06T09:00:02Z"
    shown = {}  # what the Users page lists, while the wait lasts and after it
    for second in (1, 2):
        monkeypatch.setattr(clock, "now", lambda second=second: MOMENT + timedelta(seconds=second))
        shown[second] = [u["locked_until"] for u in users.list_users(database, admin) if u["username"] == "ada"]
    assert shown == {1: ["2030-05-06T09:00:02Z"], 2: [None]}


def test_setting_a_password_lets_the_user_straight_in(database, admin, manager):
    """Test that an administrator setting a throttled user's password clears the wait, and that failures are
    forgotten after a quiet hour."""
    for _ in range(6):
        with pytest.raises(SignInFailed):
            users.sign_in(database, "manager.leeds", "wrong password!", now=MOMENT)
    users.set_password(database, admin, "manager.leeds", "a brand new password")
    assert users.sign_in(database, "manager.leeds", "a brand new password", now=MOMENT).username == "manager.leeds"

    for _ in range(6):
        with pytest.raises(SignInFailed):
            users.sign_in(database, "ada", "wrong password!", now=MOMENT)
    with pytest.raises(SignInFailed):
        users.sign_in(database, "ada", "wrong password!", now=MOMENT + timedelta(minutes=59))
    assert database.execute("SELECT count(*) FROM sign_in_throttle WHERE key LIKE 'account%ada%'").fetchone() == (2,)
    with pytest.raises(SignInFailed) as caught:
        users.sign_in(database, "ada", "wrong password!", now=MOMENT + timedelta(minutes=59, seconds=1, hours=1))
    assert str(caught.value) == WRONG
    assert database.execute("SELECT key, failures FROM sign_in_throttle ORDER BY key").fetchall() == [
        ("account+address:ada|", 1),
        ("account:ada", 1),
    ]


def _locked_until(database) -> str | None:
    return database.execute("SELECT locked_until FROM users WHERE username = 'ada'").fetchone()[0]


def test_a_session_started_straight_after_set_up_records_the_last_sign_in(database, admin):
    """Test that opening a session records it as the user's last sign-in, also for the first administrator,
    whose session starts at set-up without the sign-in form, so list_users shows it.

    Regression (issue 10, defect 6): the Users page said "Last sign-in: Never" for the administrator signed in."""
    when = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    assert [r["last_sign_in"] for r in users.list_users(database, admin)] == [None]

    users.start_session(database, admin, now=when)

    assert [(r["username"], r["last_sign_in"]) for r in users.list_users(database, admin)] == [
        ("ada", "2026-03-02T10:30:00Z")
    ]
