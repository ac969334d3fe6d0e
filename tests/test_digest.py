"""The weekly digest: each user's week in their own scope, written as files (dry run) or sent through a real local
SMTP server (aiosmtpd) and read back; refused connections, bad credentials, refused recipients and a server that
gives up part-way each give one clear line and a non-zero exit, and only messages the server accepted are
recorded as sent."""

import email
import email.policy
import socket
from datetime import UTC, date, datetime, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from crm import __main__ as cli
from crm import clock, digest, interactions, referrals, users
from crm.errors import PermissionDenied
from tests.conftest import PASSWORD, World, copy_world

FROZEN = datetime(2026, 4, 15, 10, 0, tzinfo=UTC)  # a Wednesday: the week of Monday 13 April
TODAY = date(2026, 4, 15)
ADDRESSES = {
    "ada": "ada@provider.example",
    "lead.north": "nia@provider.example",
    "lead.south": "sol@provider.example",
    "manager.leeds": "lee@provider.example",
    "manager.york": "yan@provider.example",
    "manager.bristol": "bea@provider.example",
}
SENDER = "crm@provider.example"


class Mailbox:
    """An aiosmtpd handler keeping every message it accepts; it can refuse addresses, or give up on a message."""

    def __init__(self, refuse: tuple[str, ...] = (), give_up_on: int | None = None):
        self.messages: list[email.message.EmailMessage] = []
        self.refuse = refuse
        self.give_up_on = give_up_on
        self.data_commands = 0

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_commands += 1
        if self.data_commands == self.give_up_on:
            return "421 4.3.2 Shutting down"
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"

    def to(self, address: str) -> email.message.EmailMessage:
        [found] = [m for m in self.messages if m["To"] == address]
        return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def smtp_server(monkeypatch):
    """Start a local SMTP server with a given handler (and optional login check); point CRM_SMTP_* at it."""
    started = []

    def start(handler: Mailbox, *, login: tuple[str, str] | None = None) -> int:
        port = free_port()
        options = {}
        if login:

            def check(server, session, envelope, mechanism, auth_data):
                ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
                    login[0].encode(),
                    login[1].encode(),
                )
                return AuthResult(success=ok, handled=False)  # aiosmtpd then answers 535 itself

            options = {"authenticator": check, "auth_required": True, "auth_require_tls": False}
        controller = Controller(handler, hostname="127.0.0.1", port=port, **options)
        controller.start()
        started.append(controller)
        monkeypatch.setenv("CRM_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("CRM_SMTP_PORT", str(port))
        monkeypatch.setenv("CRM_SMTP_STARTTLS", "no")
        monkeypatch.setenv("CRM_SMTP_FROM", SENDER)
        monkeypatch.delenv("CRM_SMTP_USER", raising=False)
        monkeypatch.delenv("CRM_SMTP_PASSWORD", raising=False)
        return port

    yield start
    for controller in started:
        controller.stop()


@pytest.fixture
def world(template, tmp_path, monkeypatch) -> World:
    """Each branch's week: Leeds has an overdue follow-up with Priya and an open referral from her; York a
    follow-up with Yan due on Friday; Bristol a named contact never contacted (Cara). Every account has an
    address except York's manager... who has one too; Bristol's manager has opted out."""
    path, built = template
    monkeypatch.setattr(clock, "now", lambda: FROZEN)
    scene = copy_world(path, built, tmp_path / "crm.db")
    priya = scene.contact(scene.leeds, "Priya Patel")
    yan = scene.contact(scene.york, "Yan Yates", scene.ot)
    scene.contact(scene.bristol, "Cara Council", scene.council)

    def follow_up(branch_id, contact_id, on, action):
        values = {"branch_id": branch_id, "kind_code": "PHONE_CALL", "occurred_on": TODAY - timedelta(days=3)}
        values |= {"summary": "Call", "contact_ids": [contact_id], "follow_up_on": on, "follow_up_action": action}
        interactions.log(scene.db, scene.admin, values)

    follow_up(scene.leeds, priya, TODAY - timedelta(days=1), "Send availability")
    follow_up(scene.york, yan, TODAY + timedelta(days=2), "Arrange a visit")
    referrals.log(
        scene.db,
        scene.admin,
        {"branch_id": scene.leeds, "received_at": datetime(2026, 4, 14, 9, 30), "contact_id": priya}
        | {"channel": "phone", "urgency": "hospital_discharge"},
    )
    for username, address in ADDRESSES.items():
        digest.set_address(scene.db, scene.admin, username, address, opt_out=username == "manager.bristol")
    scene.path = tmp_path / "crm.db"
    yield scene
    scene.db.close()


def run(world: World, capsys, *args: str) -> tuple[int, str, str]:
    code = cli.main(["--db", str(world.path), "digest", *args])
    out, err = capsys.readouterr()
    return code, out, err


def sends(world: World) -> list[tuple[str, str, str]]:
    return world.db.execute(
        "SELECT u.username, s.week_of, s.address FROM digest_sends s JOIN users u ON u.id = s.user_id ORDER BY 1"
    ).fetchall()


def bodies(message: email.message.EmailMessage) -> tuple[str, str]:
    return (
        message.get_body(("plain",)).get_content(),
        message.get_body(("html",)).get_content(),
    )


# What each role's digest holds: their scope and nothing else.
SEES = {
    "ada@provider.example": {"Priya Patel", "Yan Yates", "Cara Council"},
    "nia@provider.example": {"Priya Patel", "Yan Yates"},
    "sol@provider.example": {"Cara Council"},
    "lee@provider.example": {"Priya Patel"},
    "yan@provider.example": {"Yan Yates"},
}


def test_send_delivers_each_user_their_own_scope_and_records_it(world, smtp_server, capsys):
    """Test that --send delivers one plain-text-and-HTML message per user with an address who has not opted out,
    each holding only that user's branches, and records each send; a second run this week sends nothing."""
    mailbox = Mailbox()
    smtp_server(mailbox)

    code, out, err = run(world, capsys, "--send")

    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "5 sent, 0 refused, 1 skipped"
    assert "skipped manager.bristol: opted out" in out.splitlines()
    assert sorted(m["To"] for m in mailbox.messages) == sorted(SEES)
    for address, names in SEES.items():
        message = mailbox.to(address)
        assert message["From"] == SENDER
        text, page = bodies(message)
        for name in {"Priya Patel", "Yan Yates", "Cara Council"}:
            assert (name in text, name in page) == (name in names, name in names), (address, name)
    text, page = bodies(mailbox.to("lee@provider.example"))
    assert mailbox.to("lee@provider.example")["Subject"] == (
        "Your week in Partner CRM: 1 follow-ups (1 overdue), 0 contacts lapsing, 1 open referrals"
    )
    assert "- OVERDUE 2026-04-14: Send availability with Priya Patel (Leeds)" in text
    assert "- Received 14 Apr 2026 09:30 from Priya Patel (Hospital discharge; Leeds)" in text
    assert "<li>Received 14 Apr 2026 09:30 from Priya Patel (Hospital discharge; Leeds)</li>" in page
    assert sends(world) == [
        (name, "2026-04-13", ADDRESSES[name])
        for name in ("ada", "lead.north", "lead.south", "manager.leeds", "manager.york")
    ]

    code, out, _ = run(world, capsys, "--send")
    assert (code, out.splitlines()[-1]) == (0, "0 sent, 0 refused, 6 skipped")
    assert len(mailbox.messages) == 5


def test_dry_run_writes_the_emails_and_sends_nothing(world, tmp_path, capsys):
    """Test that --dry-run --out DIR writes each message as a .eml file, records nothing, and needs no SMTP
    server; --branch narrows to the branch's managers and its region's leads."""
    folder = tmp_path / "out"

    code, out, _ = run(world, capsys, "--dry-run", "--out", str(folder), "--branch", "York")

    assert code == 0
    assert out.splitlines()[-1] == f"dry run, nothing sent: wrote 2 emails to {folder}"
    assert sorted(p.name for p in folder.iterdir()) == ["lead.north.eml", "manager.york.eml"]
    message = email.message_from_bytes((folder / "manager.york.eml").read_bytes(), policy=email.policy.default)
    text, _ = bodies(message)
    assert "- Due 2026-04-17: Arrange a visit with Yan Yates (York)" in text
    assert "Coverage score" in text
    assert sends(world) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "error: choose --dry-run --out DIR (write the emails) or --send\n"),
        (("--dry-run", "--send"), "error: choose --dry-run --out DIR (write the emails) or --send\n"),
        (("--dry-run",), "error: --dry-run needs --out DIR\n"),
    ],
)
def test_refused_options(world, capsys, args, message):
    """Test that a run that is neither a dry run with a folder nor a send is refused with one line."""
    code, _, err = run(world, capsys, *args)
    assert (code, err) == (2, message)


def test_missing_smtp_settings_are_named(world, capsys, monkeypatch):
    """Test that --send without CRM_SMTP_HOST and CRM_SMTP_FROM says which to set, and records nothing."""
    for name in ("CRM_SMTP_HOST", "CRM_SMTP_FROM", "CRM_SMTP_PORT"):
        monkeypatch.delenv(name, raising=False)

    code, out, err = run(world, capsys, "--send")

    assert (code, out, err) == (
        1,
        "",
        "error: set CRM_SMTP_HOST and CRM_SMTP_FROM to send the digest (see README, Configuration)\n",
    )
    assert sends(world) == []


def test_refused_connection_is_one_line_and_nothing_is_recorded(world, capsys, monkeypatch):
    """Test that a mail server that refuses the connection gives one clear line, a non-zero exit, no sends."""
    port = free_port()  # nothing listens there
    for name, value in (("HOST", "127.0.0.1"), ("PORT", str(port)), ("STARTTLS", "no"), ("FROM", SENDER)):
        monkeypatch.setenv(f"CRM_SMTP_{name}", value)

    code, _, err = run(world, capsys, "--send")

    assert (code, err) == (1, f"error: cannot reach the mail server 127.0.0.1:{port}: Connection refused\n")
    assert sends(world) == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # loopback only, in a test
def test_bad_credentials_are_one_line_and_nothing_is_sent(world, smtp_server, capsys, monkeypatch):
    """Test that a wrong password gives one clear line and a non-zero exit, with nothing sent or recorded, and
    that the right one sends."""
    mailbox = Mailbox()
    port = smtp_server(mailbox, login=("crm", "right password"))
    monkeypatch.setenv("CRM_SMTP_USER", "crm")
    monkeypatch.setenv("CRM_SMTP_PASSWORD", "wrong password")

    code, _, err = run(world, capsys, "--send")

    assert (code, err) == (
        1,
        f"error: the mail server 127.0.0.1:{port} refused the user name or password "
        "(535 5.7.8 Authentication credentials invalid)\n",
    )
    assert (mailbox.messages, sends(world)) == ([], [])
    monkeypatch.setenv("CRM_SMTP_PASSWORD", "right password")
    code, out, _ = run(world, capsys, "--send")
    assert (code, out.splitlines()[-1], len(mailbox.messages), len(sends(world))) == (
        0,
        "5 sent, 0 refused, 1 skipped",
        5,
        5,
    )


def test_a_refused_recipient_is_not_recorded_and_the_others_are_sent(world, smtp_server, capsys):
    """Test that an address the server refuses is reported (non-zero exit) and not recorded, while the others
    are sent and recorded; the next run sends only the one left."""
    mailbox = Mailbox(refuse=("sol@provider.example",))
    smtp_server(mailbox)

    code, out, err = run(world, capsys, "--send")

    assert code == 1
    assert (
        err == "error: not sent to lead.south <sol@provider.example>: sol@provider.example: 550 5.1.1 No such mailbox\n"
    )
    assert out.splitlines()[-1] == "4 sent, 1 refused, 1 skipped"
    assert [name for name, _, _ in sends(world)] == ["ada", "lead.north", "manager.leeds", "manager.york"]
    mailbox.refuse = ()
    code, out, _ = run(world, capsys, "--send")
    assert (code, out.splitlines()[-1]) == (0, "1 sent, 0 refused, 5 skipped")
    assert sorted(m["To"] for m in mailbox.messages) == sorted(SEES)


def test_a_server_giving_up_part_way_leaves_only_accepted_messages_recorded(world, smtp_server, capsys):
    """Test that when the server closes after accepting the first message, only that one is recorded as sent,
    the run exits non-zero with one line, and the next run sends the rest."""
    mailbox = Mailbox(give_up_on=2)
    port = smtp_server(mailbox)

    code, out, err = run(world, capsys, "--send")

    assert code == 1
    assert err == (
        f"error: the mail server 127.0.0.1:{port} failed: please run connect() first (1 sent before that, recorded)\n"
    )
    assert [name for name, _, _ in sends(world)] == ["ada"]
    assert [m["To"] for m in mailbox.messages] == ["ada@provider.example"]
    mailbox.give_up_on = None
    code, out, _ = run(world, capsys, "--send")
    assert (code, out.splitlines()[-1]) == (0, "4 sent, 0 refused, 2 skipped")
    assert sorted(m["To"] for m in mailbox.messages) == sorted(SEES)


def test_addresses_and_opting_out(world, capsys):
    """Test that users set only their own address and opt-out (administrators anyone's), that a bad address is
    refused, and the users email command."""
    lee = users.sign_in(world.db, "manager.leeds", PASSWORD)
    digest.set_address(world.db, lee, "manager.leeds", "lee.new@provider.example", opt_out=True)
    assert digest.address_of(world.db, lee.id) == ("lee.new@provider.example", True)
    with pytest.raises(PermissionDenied):
        digest.set_address(world.db, lee, "manager.york", "x@provider.example")
    with pytest.raises(Exception, match="^Email: “not an address” is not a valid email address"):
        digest.set_address(world.db, lee, "manager.leeds", "not an address")

    code = cli.main(["--db", str(world.path), "users", "email", "manager.leeds", "lee@provider.example", "--opt-in"])
    assert (code, capsys.readouterr().out) == (0, "manager.leeds: lee@provider.example; weekly digest on\n")
    code = cli.main(["--db", str(world.path), "users", "email", "manager.york", ""])
    assert (code, capsys.readouterr().out) == (0, "manager.york: no email address; weekly digest on\n")
