"""The weekly email digest: each user's week (follow-ups due and overdue, named contacts lapsing, open referrals,
coverage scores and their change over the week), in their own scope, as a plain-text and HTML email.

Messages go through an SMTP server (settings from the environment, read by the command line). Each message the
server accepts is recorded at once in digest_sends (one per user and week), and only then: a failure part-way
leaves the messages not yet accepted unrecorded, so running the command again sends exactly those.
"""

import html
import smtplib
import ssl
import statistics
from dataclasses import dataclass
from datetime import date, timedelta
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from sqlite_utils import Database

from crm import audit, clock, contacts, coverage, fields, interactions, referrals, settings, users
from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD, Actor
from crm.db import transaction
from crm.errors import CRMError, NotFound, PermissionDenied

LIST_LIMIT = 25  # rows per section in an email; the rest are counted
SMTP_TIMEOUT_SECONDS = 20


class DigestError(CRMError):
    """The digest could not be sent: missing settings, the mail server unreachable or refusing us."""


@dataclass(frozen=True)
class Smtp:
    """How to reach the mail server (CRM_SMTP_* environment variables)."""

    host: str
    port: int
    starttls: bool
    user: str
    password: str
    sender: str


def smtp_from_env(environ: dict[str, str]) -> Smtp:
    """SMTP settings from CRM_SMTP_HOST, _PORT (default 587 with STARTTLS, else 25), _STARTTLS (default yes),
    _USER and _PASSWORD (log in only when a user is set) and _FROM; :raises DigestError: naming what is missing."""
    host = environ.get("CRM_SMTP_HOST", "").strip()
    sender = environ.get("CRM_SMTP_FROM", "").strip()
    missing = [name for name, value in (("CRM_SMTP_HOST", host), ("CRM_SMTP_FROM", sender)) if not value]
    if missing:
        raise DigestError(f"set {' and '.join(missing)} to send the digest (see README, Configuration)")
    flag = environ.get("CRM_SMTP_STARTTLS", "yes").strip().lower()
    if flag not in ("yes", "no", "true", "false", "1", "0"):
        raise DigestError(f"CRM_SMTP_STARTTLS must be yes or no, not “{flag}”")
    starttls = flag in ("yes", "true", "1")
    port_text = environ.get("CRM_SMTP_PORT", "").strip() or ("587" if starttls else "25")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise DigestError(f"CRM_SMTP_PORT must be a port number, not “{port_text}”")
    try:
        fields.email(sender, "CRM_SMTP_FROM")
    except CRMError as error:
        raise DigestError(str(error)) from None
    return Smtp(
        host,
        int(port_text),
        starttls,
        environ.get("CRM_SMTP_USER", ""),
        environ.get("CRM_SMTP_PASSWORD", ""),
        sender,
    )


# Addresses and opting out.


def set_address(db: Database, actor: Actor, username: str, email: str | None, *, opt_out: bool | None = None) -> int:
    """Set a user's digest address (blank removes it) and, when given, whether they opt out; returns the user's
    id. Administrators set anyone's; everyone else only their own."""
    if actor.role != ADMIN and actor.username.lower() != username.lower():
        raise PermissionDenied("You can only change your own email address.")
    address = fields.email(email, "Email")
    with transaction(db):
        row = db.execute_returning_dicts(
            "SELECT id, email, digest_opt_out FROM users WHERE username = ?", [username.strip()]
        )
        if not row:
            raise NotFound(f"There is no user called “{username}”.")
        values: dict[str, object] = {"email": address}
        if opt_out is not None:
            values["digest_opt_out"] = int(opt_out)
        changes = audit.diff(row[0], values)
        if changes:
            db.execute(
                f"UPDATE users SET {', '.join(f'{c} = ?' for c in values)} WHERE id = ?",
                [*values.values(), row[0]["id"]],
            )
            audit.record(db, actor, "update", "users", row[0]["id"], changes)
    return row[0]["id"]


def address_of(db: Database, user_id: int) -> tuple[str | None, bool]:
    """A user's digest address and whether they opted out."""
    email, opt_out = db.execute("SELECT email, digest_opt_out FROM users WHERE id = ?", [user_id]).fetchone()
    return email, bool(opt_out)


def recipients(db: Database, *, branch_id: int | None = None) -> list[dict]:
    """Enabled users, each with their address and opt-out; with ``branch_id`` only those whose scope is that
    branch (its managers and its region's leads)."""
    where, params = "u.disabled = 0", []
    if branch_id is not None:
        where += (
            " AND ((u.role = ? AND u.branch_id = ?) OR (u.role = ? AND u.region_id = "
            "(SELECT region_id FROM branches WHERE id = ?)))"
        )
        params = [BRANCH_MANAGER, branch_id, REGIONAL_LEAD, branch_id]
    return db.execute_returning_dicts(
        f"SELECT u.id, u.username, u.display_name, u.email, u.digest_opt_out FROM users u WHERE {where} "
        "ORDER BY u.username COLLATE NOCASE",
        params,
    )


# What a user's week holds.


def week_of(today: date) -> date:
    """The Monday of ``today``'s week: one digest per user per week."""
    return today - timedelta(days=today.weekday())


def week(db: Database, actor: Actor, today: date) -> dict:
    """Everything in one user's digest, within their scope."""
    ends = [today - timedelta(days=7), today]
    before, now = coverage.history(db, actor, ends)
    earlier = {b["branch_id"]: b["score"] for b in coverage.scores(before)}
    branch_scores = [
        {"branch": b["branch"], "score": b["score"], "change": b["score"] - earlier.get(b["branch_id"], 0.0)}
        for b in coverage.scores(now)
    ]
    return {
        "today": today,
        "follow_ups": interactions.follow_ups(db, actor, today=today),
        "lapsing": contacts.lapsing(db, actor, today=today),
        "open_referrals": referrals.search(db, actor, outcome="open"),
        "scores": branch_scores,
        "median": statistics.median(b["score"] for b in branch_scores) if branch_scores else None,
    }


def _percent(score: float) -> str:
    return f"{round(100 * score)}%"


def _change(change: float) -> str:
    points = round(100 * change)
    return "no change" if points == 0 else f"{'up' if points > 0 else 'down'} {abs(points)} points"


def _sections(data: dict) -> list[tuple[str, list[str], int]]:
    """(heading, lines, how many in all) per section, shared by the text and HTML bodies."""
    follow_ups = [
        f"{'OVERDUE' if r['state'] == 'overdue' else 'Due'} {r['follow_up_on']}: "
        f"{r['follow_up_action'] or 'Follow up'} with {r['contacts'] or r['organisation'] or 'a partner'}"
        f" ({r['branch']})"
        for r in data["follow_ups"]
    ]
    lapsing = [
        f"{contacts.RELATIONSHIPS[r['relationship']]}: {r['name']}, {r['job_title'] or 'no job title'} at "
        f"{r['organisation']} (last touched {r['last_touched_on'] or 'never'}; {r['branch']})"
        for r in data["lapsing"]
    ]
    open_referrals = [
        f"Received {r['received']} from {r['contact'] or r['organisation']} "
        f"({r['urgency_label'] or 'urgency not recorded'}; {r['branch']})"
        for r in data["open_referrals"]
    ]
    scores = [f"{b['branch']}: {_percent(b['score'])} ({_change(b['change'])} on a week ago)" for b in data["scores"]]
    return [
        ("Follow-ups due this week and overdue", follow_ups, len(follow_ups)),
        ("Named contacts lapsing", lapsing, len(lapsing)),
        ("Open referrals", open_referrals, len(open_referrals)),
        ("Coverage score", scores, len(scores)),
    ]


def subject(data: dict) -> str:
    """The subject line: the week's counts at a glance."""
    overdue = sum(r["state"] == "overdue" for r in data["follow_ups"])
    return (
        f"Your week in Partner CRM: {len(data['follow_ups'])} follow-ups ({overdue} overdue), "
        f"{len(data['lapsing'])} contacts lapsing, {len(data['open_referrals'])} open referrals"
    )


def text_body(user: dict, data: dict, provider: str) -> str:
    """The plain-text body."""
    lines = [f"Hello {user['display_name']},", "", f"Your week from {data['today']:%-d %B %Y} ({provider}).", ""]
    for heading, items, total in _sections(data):
        lines += [heading, "-" * len(heading)]
        lines += [f"- {item}" for item in items[:LIST_LIMIT]] or ["Nothing this week."]
        if total > LIST_LIMIT:
            lines.append(f"... and {total - LIST_LIMIT} more in the app.")
        lines.append("")
    if data["median"] is not None and len(data["scores"]) > 1:
        lines += [f"Median coverage score: {_percent(data['median'])}.", ""]
    lines.append("You receive this because you have an account in Partner CRM. To stop it, untick the weekly")
    lines.append("digest under My account.")
    return "\n".join(lines) + "\n"


def html_body(user: dict, data: dict, provider: str) -> str:
    """The HTML body; every piece of data is escaped."""
    e = html.escape
    parts = [
        '<!DOCTYPE html><html><body style="font-family: sans-serif">',
        f"<p>Hello {e(user['display_name'])},</p>",
        f"<p>Your week from {data['today']:%-d %B %Y} ({e(provider)}).</p>",
    ]
    for heading, items, total in _sections(data):
        parts.append(f"<h2>{e(heading)}</h2>")
        if items:
            parts.append("<ul>" + "".join(f"<li>{e(item)}</li>" for item in items[:LIST_LIMIT]) + "</ul>")
        else:
            parts.append("<p>Nothing this week.</p>")
        if total > LIST_LIMIT:
            parts.append(f"<p>... and {total - LIST_LIMIT} more in the app.</p>")
    if data["median"] is not None and len(data["scores"]) > 1:
        parts.append(f"<p>Median coverage score: {_percent(data['median'])}.</p>")
    parts.append(
        "<p><small>You receive this because you have an account in Partner CRM. To stop it, untick the weekly "
        "digest under My account.</small></p></body></html>"
    )
    return "\n".join(parts)


def message(db: Database, user: dict, sender: str, today: date) -> EmailMessage:
    """One user's digest as an email (plain text with an HTML alternative)."""
    actor = users.get(db, user["id"])
    data = week(db, actor, today)
    provider = settings.get(db, "provider_name", "") or "Partner CRM"
    email = EmailMessage()
    email["Subject"] = subject(data)
    email["From"] = sender
    email["To"] = user["email"]
    email["Date"] = format_datetime(clock.now())
    email["Message-ID"] = make_msgid("digest", domain=sender.rpartition("@")[2] or None)
    email.set_content(text_body(user, data, provider))
    email.add_alternative(html_body(user, data, provider), subtype="html")
    return email


@dataclass
class Plan:
    """Who gets a digest this run, and who does not and why."""

    messages: list[tuple[dict, EmailMessage]]
    skipped: list[tuple[dict, str]]


def plan(db: Database, *, sender: str, branch_id: int | None = None, today: date | None = None) -> Plan:
    """Build this week's messages for every user with an address who has not opted out (and, when sending, not
    yet been sent this week's)."""
    today = today or clock.now().astimezone(referrals.UK).date()
    sent = {
        row[0] for row in db.execute("SELECT user_id FROM digest_sends WHERE week_of = ?", [week_of(today).isoformat()])
    }
    out = Plan([], [])
    for user in recipients(db, branch_id=branch_id):
        if not user["email"]:
            out.skipped.append((user, "no email address"))
        elif user["digest_opt_out"]:
            out.skipped.append((user, "opted out"))
        elif user["id"] in sent:
            out.skipped.append((user, "already sent this week"))
        else:
            out.messages.append((user, message(db, user, sender, today)))
    return out


def write(messages: list[tuple[dict, EmailMessage]], folder: Path) -> list[Path]:
    """Write each message as <user name>.eml in ``folder`` (a dry run: nothing is sent or recorded)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for user, email in messages:
        path = folder / f"{user['username']}.eml"
        path.write_bytes(bytes(email))
        paths.append(path)
    return paths


def send(
    db: Database, smtp: Smtp, messages: list[tuple[dict, EmailMessage]], today: date | None = None
) -> tuple[list[dict], list[tuple[dict, str]]]:
    """Send the messages over one SMTP connection, recording each as it is accepted; returns (sent, refused).

    :raises DigestError: when the server cannot be reached, refuses the login or drops the connection; the
        messages accepted before that stay recorded, the rest are not.
    """
    today = today or clock.now().astimezone(referrals.UK).date()
    where = f"{smtp.host}:{smtp.port}"
    sent: list[dict] = []
    refused: list[tuple[dict, str]] = []
    if not messages:
        return sent, refused
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=SMTP_TIMEOUT_SECONDS) as server:
            if smtp.starttls:
                server.starttls(context=ssl.create_default_context())
            if smtp.user:
                server.login(smtp.user, smtp.password)
            for user, email in messages:
                try:
                    server.send_message(email)
                except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
                    refused.append((user, _reason(error)))
                    continue
                _record(db, user, email, today)
                sent.append(user)
    except smtplib.SMTPAuthenticationError as error:
        raise DigestError(f"the mail server {where} refused the user name or password ({_reason(error)})") from None
    except smtplib.SMTPNotSupportedError as error:
        raise DigestError(f"the mail server {where} does not support {error} (try CRM_SMTP_STARTTLS=no)") from None
    except (smtplib.SMTPException, ssl.SSLError) as error:
        raise DigestError(f"the mail server {where} failed: {_reason(error)}{_sent_note(sent)}") from None
    except OSError as error:
        raise DigestError(
            f"cannot reach the mail server {where}: {error.strerror or error}{_sent_note(sent)}"
        ) from None
    return sent, refused


def _sent_note(sent: list[dict]) -> str:
    return f" ({len(sent)} sent before that, recorded)" if sent else ""


def _reason(error: Exception) -> str:
    code = getattr(error, "smtp_code", None)
    text = getattr(error, "smtp_error", None)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if code and text:
        return f"{code} {text}"
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{who}: {c} {t.decode('utf-8', 'replace')}" for who, (c, t) in error.recipients.items())
    return str(error) or type(error).__name__


def _record(db: Database, user: dict, email: EmailMessage, today: date) -> None:
    with transaction(db):
        db.execute(
            "INSERT INTO digest_sends (user_id, week_of, sent_at, address, message_id) VALUES (?, ?, ?, ?, ?)",
            [user["id"], week_of(today).isoformat(), clock.stamp(), user["email"], email["Message-ID"]],
        )
