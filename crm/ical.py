"""Follow-ups as an iCalendar file (RFC 5545), for people's own calendars.

Each open follow-up is an all-day event on its date, named after the follow-up and the people it is with. Its
UID is fixed by the interaction's id (followup-<id>@partner-crm) and its SEQUENCE is the interaction's version, so
importing a newer file updates the events already imported instead of adding copies.
"""

from datetime import date, datetime, timedelta

from icalendar import Calendar, Event
from sqlite_utils import Database

from crm import clock, phones
from crm.access import Actor, branch_clause

UID_DOMAIN = "partner-crm"
PRODUCT = "-//Partner CRM//Follow-ups//EN"


def uid(interaction_id: int) -> str:
    """The stable UID of a follow-up's event."""
    return f"followup-{interaction_id}@{UID_DOMAIN}"


def open_follow_ups(db: Database, actor: Actor, *, branch_id: int | None = None) -> list[dict]:
    """Every follow-up not yet done within scope, soonest first, with the people and organisation it is with;
    those whose people are all do-not-contact or erased are left out (as on This week)."""
    where, params = branch_clause(actor, "i.branch_id")
    return db.execute_returning_dicts(
        f"""
        SELECT i.id, i.branch_id, b.name AS branch, i.occurred_on, k.label AS kind, i.summary, i.follow_up_on,
               i.follow_up_action, i.version, i.updated_at, o.name AS organisation,
               (SELECT group_concat(c.name, ', ') FROM interaction_contacts l JOIN contacts c ON c.id = l.contact_id
                WHERE l.interaction_id = i.id) AS contacts,
               (SELECT c.phone || char(31) || coalesce(c.phone_ext, '') FROM interaction_contacts l
                JOIN contacts c ON c.id = l.contact_id
                WHERE l.interaction_id = i.id AND c.phone IS NOT NULL AND c.do_not_contact = 0
                ORDER BY c.id LIMIT 1) AS phone
        FROM interactions i
        JOIN branches b ON b.id = i.branch_id
        JOIN interaction_kinds k ON k.code = i.kind_code
        LEFT JOIN organisations o ON o.id = i.organisation_id
        WHERE i.follow_up_on IS NOT NULL AND i.follow_up_done_on IS NULL AND {where}
          AND (? IS NULL OR i.branch_id = ?)
          AND (NOT EXISTS (SELECT 1 FROM interaction_contacts l WHERE l.interaction_id = i.id)
               OR EXISTS (SELECT 1 FROM interaction_contacts l JOIN contacts c ON c.id = l.contact_id
                          WHERE l.interaction_id = i.id AND c.do_not_contact = 0 AND c.erased_at IS NULL))
        ORDER BY i.follow_up_on, i.id
        """,
        [*params, branch_id, branch_id],
    )


def follow_ups_calendar(
    db: Database, actor: Actor, *, branch_id: int | None = None, name: str = "Partner CRM follow-ups"
) -> bytes:
    """The open follow-ups within scope as an iCalendar file."""
    calendar = Calendar()
    calendar.add("prodid", PRODUCT)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", name)
    stamp = clock.now()
    for row in open_follow_ups(db, actor, branch_id=branch_id):
        calendar.add_component(_event(row, stamp))
    return calendar.to_ical()


def _event(row: dict, stamp: datetime) -> Event:
    who = row["contacts"] or row["organisation"] or "a partner"
    action = row["follow_up_action"] or "Follow up"
    day = date.fromisoformat(row["follow_up_on"])
    lines = [
        f"{action} with {who}" + (f" ({row['organisation']})" if row["contacts"] and row["organisation"] else ""),
        f"After: {row['summary']} ({row['kind'].lower()}, {row['occurred_on']})",
        f"Branch: {row['branch']}",
    ]
    if row["phone"]:
        number, _, extension = row["phone"].partition("\x1f")
        lines.append(f"Phone: {phones.national(number, extension or None)}")
    event = Event()
    event.add("uid", uid(row["id"]))
    event.add("dtstamp", stamp)
    event.add("last-modified", datetime.fromisoformat(row["updated_at"].replace("Z", "+00:00")))
    event.add("sequence", row["version"])
    event.add("summary", f"{action}: {who}")
    event.add("description", "\n".join(lines))
    event.add("dtstart", day)
    event.add("dtend", day + timedelta(days=1))
    event.add("transp", "TRANSPARENT")  # a reminder, not a meeting: it does not make the day look busy
    event.add("categories", ["Partner CRM"])
    return event
