"""Referral pieces shared by the Referrals page and the contact and organisation pages: the "Log a referral" form,
the outcome form and the table of referrals."""

from datetime import datetime, time

import streamlit as st

from crm import branches, clock, contacts, referrals
from crm.ui.widgets import choice, flash, guarded_save, rows_table

NO_CLIENT_IDENTITY = (
    "No client identity here: never the person's name, address, date of birth or NHS number. "
    "At most your care management system's own reference for them."
)


def now_local() -> datetime:
    """The current UK local time, to the minute, without a time zone (as the form shows it)."""
    return clock.now().astimezone(referrals.UK).replace(second=0, tzinfo=None)


def when_inputs(label: str, key: str, *, default: datetime | None) -> datetime | None:
    """A date and a time (UK local) side by side; None when the date is left blank."""
    left, right = st.columns(2)
    day = left.date_input(
        f"{label} (date)", value=default.date() if default else None, key=f"{key}_date", format="DD/MM/YYYY"
    )
    moment = right.time_input(
        f"{label} (time, UK)", value=default.time() if default else time(9, 0), key=f"{key}_time", step=300
    )
    return datetime.combine(day, moment) if day else None


def log_form(
    database,
    actor,
    key: str,
    *,
    branch_id: int | None,
    contact_id: int | None = None,
    organisation_id: int | None = None,
) -> int | None:
    """The "Log a referral" form (the referrer already chosen); returns the new referral's id once saved."""
    with st.form(f"{key}_form", clear_on_submit=False):
        if branch_id is None:
            branch_id = choice("Branch", branches.branch_choices(database, actor), key=f"{key}_branch")
        received_at = when_inputs("Received", f"{key}_received", default=now_local())
        left, right = st.columns(2)
        channel = left.selectbox(
            "How it came",
            list(referrals.CHANNELS),
            format_func=lambda code: referrals.CHANNELS[code],
            key=f"{key}_channel",
        )
        urgency = right.selectbox(
            "Urgency",
            list(referrals.URGENCIES),
            format_func=lambda code: referrals.URGENCIES[code],
            key=f"{key}_urgency",
        )
        left, right = st.columns(2)
        hours = left.number_input(
            "Hours of care per week", min_value=0.5, max_value=168.0, value=None, step=0.5, key=f"{key}_hours"
        )
        start_wanted = right.date_input("Start wanted", value=None, key=f"{key}_start", format="DD/MM/YYYY")
        area = st.text_input("Area", key=f"{key}_area", placeholder="e.g. LS6, Headingley")
        reference = st.text_input(
            "Your reference (optional)", key=f"{key}_reference", max_chars=referrals.REFERENCE_MAX
        )
        st.caption(NO_CLIENT_IDENTITY)
        submitted = st.form_submit_button("Save referral", type="primary")
    values = {
        "branch_id": branch_id,
        "received_at": received_at,
        "contact_id": contact_id,
        "organisation_id": organisation_id,
        "channel": channel,
        "urgency": urgency,
        "hours_per_week": hours,
        "start_wanted_on": start_wanted,
        "area": area,
        "provider_reference": reference,
    }
    saved = guarded_save(key, submitted, lambda confirmed: referrals.log(database, actor, values, confirmed=confirmed))
    if saved is not None:
        for widget in (f"{key}_hours", f"{key}_start", f"{key}_area", f"{key}_reference"):
            st.session_state.pop(widget, None)
    return saved


def log_popover(database, actor, key: str, **referrer) -> None:
    """A "Log a referral" pop-over for a contact's or an organisation's page."""
    with st.popover("Log a referral", icon=":material/assignment_ind:"):
        saved = log_form(database, actor, key, **referrer)
    if saved is not None:
        flash("Referral logged. Record its outcome on the Referrals page once you have answered.")
        st.rerun()


def outcome_form(database, actor, referral: dict, key: str) -> None:
    """Record or correct the outcome of one referral (named by id and version, never by a row position)."""
    with st.form(f"{key}_form"):
        outcome = st.radio(
            "Outcome",
            list(referrals.RECORDABLE),
            index=list(referrals.RECORDABLE).index(referral["outcome"])
            if referral["outcome"] in referrals.RECORDABLE
            else 0,
            format_func=lambda code: referrals.OUTCOMES[code],
            horizontal=True,
            key=f"{key}_outcome",
        )
        decided = (
            referrals.from_stamp(referral["decided_at"]).replace(tzinfo=None) if referral["decided_at"] else now_local()
        )
        decided_at = when_inputs("Decided", f"{key}_decided", default=decided)
        reasons = referrals.decline_reasons(database)
        left, right = st.columns(2)
        with left:
            reason = choice(
                "Reason declined",
                reasons,
                key=f"{key}_reason",
                value="code",
                text="label",
                blank="(not declined)",
                index_of=referral["decline_reason"],
            )
        started = right.date_input(
            "Care started on (accepted)",
            value=referral["care_started_on"],
            key=f"{key}_started",
            format="DD/MM/YYYY",
        )
        note = st.text_input("Note", value=referral["outcome_note"], key=f"{key}_note", max_chars=referrals.NOTE_MAX)
        st.caption("A reason only when declined; the care start date only when accepted. " + NO_CLIENT_IDENTITY)
        submitted = st.form_submit_button("Save outcome", type="primary")
    values = {
        "outcome": outcome,
        "decided_at": decided_at,
        "decline_reason": reason,
        "care_started_on": started,
        "outcome_note": note,
    }

    def save(confirmed: bool) -> bool:
        referrals.record_outcome(database, actor, referral["id"], values, referral["version"], confirmed=confirmed)
        return True

    saved = guarded_save(key, submitted, save)
    if saved:
        for widget in [k for k in st.session_state if str(k).startswith(f"{key}_")]:
            del st.session_state[widget]
        flash(f"Outcome saved: {referrals.OUTCOMES[outcome]}.")
        st.rerun()


def table(rows: list[dict], *, show_branch: bool, key: str | None = None):
    """Referrals newest first; with ``key``, one row can be selected (the event is returned)."""
    data = [
        {
            "Received": r["received"],
            **({"Branch": r["branch"]} if show_branch else {}),
            "From": r["contact"] or "",
            "Organisation": r["organisation"],
            "How": r["channel_label"],
            "Urgency": r["urgency_label"],
            "Hours a week": r["hours_per_week"],
            "Outcome": r["outcome_label"],
            "Reason declined": r["decline_reason_label"],
            "Care started": r["care_started_on"] or "",
            "Response (hours)": r["response_hours"],
            "Your reference": r["provider_reference"],
        }
        for r in rows
    ]
    if key is None:
        rows_table(data, hide_index=True, width="stretch")
        return None
    return rows_table(data, hide_index=True, width="stretch", key=key, on_select="rerun", selection_mode="single-row")


def sent_by(database, actor, key: str, *, contact: dict | None = None, organisation: dict | None = None) -> None:
    """A contact's or an organisation's page section: the referrals they sent, their outcomes, and a "Log a
    referral" pop-over."""
    st.subheader("Referrals sent")
    if contact is not None:
        rows = referrals.search(database, actor, contact_id=contact["id"])
        if contact["status"] == "active" and not contact["erased_at"]:
            log_popover(database, actor, key, branch_id=contact["branch_id"], contact_id=contact["id"])
    else:
        assert organisation is not None
        rows = referrals.search(database, actor, organisation_id=organisation["id"])
        log_popover(database, actor, key, branch_id=actor.branch_id, organisation_id=organisation["id"])
    if not rows:
        st.caption("No referrals from here yet.")
        return
    accepted = sum(r["outcome"] == "accepted" for r in rows)
    answered = sum(r["outcome"] in ("accepted", "declined") for r in rows)
    st.caption(f"{len(rows)} referrals; {accepted} of {answered} answered were accepted.")
    table(rows, show_branch=len({r["branch_id"] for r in rows}) > 1)


def contact_options(database, actor, branch_id: int) -> list[dict]:
    """The active contacts of a branch, labelled with their organisation, for the referrer picker."""
    return [
        {"id": c["id"], "label": f"{c['name']} ({c['organisation']})"}
        for c in contacts.search(database, actor, branch_id=branch_id)
    ]
