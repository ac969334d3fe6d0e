"""Small shared Streamlit helpers: error display, safe text, option pickers."""

import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any, Literal, TypeVar

import streamlit as st

from crm import branches, charts, clock, exports, interactions, organisations
from crm.errors import CRMError, InvalidFields, PossibleClientData

T = TypeVar("T")

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def day(iso_date: str | None) -> str:
    """A stored date as people in the UK write it: 14 Dec 2025."""
    return date.fromisoformat(iso_date).strftime("%-d %b %Y") if iso_date else ""


def show_error(error: CRMError) -> None:
    """One plain-English error box per problem."""
    problems = error.errors if isinstance(error, InvalidFields) else [error]
    for problem in problems:
        st.error(str(problem))


def md(text: str | None) -> str:
    """Escape user-entered text for st.markdown, so a name can never become a link, image or heading."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text or "")


def choice(
    label: str,
    options: Sequence[dict],
    key: str,
    *,
    value: str = "id",
    text: str = "name",
    blank: str | None = None,
    index_of: object = None,
    disabled: bool = False,
) -> Any:
    """A selectbox over rows, returning the chosen row's ``value`` (or None for the ``blank`` option)."""
    values: list = ([None] if blank is not None else []) + [row[value] for row in options]
    labels = {row[value]: str(row[text]) for row in options}
    index = values.index(index_of) if index_of in values else 0
    return st.selectbox(
        label,
        values,
        index=index,
        format_func=lambda v: str(blank) if v is None else labels[v],
        key=key,
        disabled=disabled,
    )


def flash(message: str | None = None) -> None:
    """Keep a success message across a rerun (``flash("Saved.")``), or show and forget it (``flash()``)."""
    if message is not None:
        st.session_state["crm_flash"] = message
    elif text := st.session_state.pop("crm_flash", None):
        st.success(text)


def organisation_picker(database, key: str, current: int | None = None, *, optional: bool = False) -> int | None:
    """Search the organisation directory by name, postcode or ODS code, and pick one; returns its id."""
    query = st.text_input(
        "Find organisation", key=f"{key}_search", placeholder="Name, postcode or ODS code, e.g. Hyde Park or LS6"
    )
    matches = organisations.search(database, query, limit=50)
    if current is not None and all(m["id"] != current for m in matches):
        matches = [organisations.get(database, current), *matches]
    if not matches:
        st.warning("No organisation matches that search.")
        return None
    for m in matches:
        closed = "" if m["status"] == "active" else f", {m['status']}"
        m["label"] = f"{m['name']} ({m['type_label']}{', ' + m['postcode'] if m['postcode'] else ''}{closed})"
    return choice(
        "Organisation",
        matches,
        key=f"{key}_choice",
        text="label",
        index_of=current,
        blank="(any organisation)" if optional else None,
    )


def guarded_save(
    key: str, submitted: bool, save: Callable[[bool], T], *, scope: Literal["app", "fragment"] = "app"
) -> T | None:
    """Run ``save(confirmed)`` for a submitted form, asking first when the text looks like client data.

    ``save`` raises PossibleClientData when free text holds what looks like an NHS number; the user then sees
    the warning with "Save anyway" and "Cancel", and the form's values (kept by Streamlit) are saved with
    ``confirmed=True`` only on "Save anyway". Returns what ``save`` returned, or None when nothing was saved.
    In a dialog pass ``scope="fragment"``: a rerun of the whole app would close the dialog and lose the warning.
    """
    pending = f"{key}_confirm_message"
    confirmed = False
    if submitted:
        st.session_state.pop(pending, None)
    elif pending in st.session_state:
        st.warning(st.session_state[pending])
        left, right = st.columns(2)
        if right.button("Cancel", key=f"{key}_cancel"):
            del st.session_state[pending]
            st.rerun(scope=scope)
        if not left.button("It is not client data: save anyway", key=f"{key}_confirm", type="primary"):
            return None
        del st.session_state[pending]
        confirmed = True
    else:
        return None
    try:
        return save(confirmed)
    except PossibleClientData as error:
        st.session_state[pending] = str(error)
        st.rerun(scope=scope)
    except CRMError as error:
        show_error(error)
    return None


def quick_log(
    database,
    actor,
    key: str,
    *,
    subject: str,
    contact_ids: list[int] | None = None,
    organisation_id: int | None = None,
    branch_id: int | None = None,
) -> None:
    """A "Log an interaction" pop-over: two clicks (open, Save) record a phone call with today's date."""
    with st.popover("Log an interaction", icon=":material/add_call:"):
        with st.form(f"{key}_form", clear_on_submit=False):
            kinds = interactions.kinds(database)
            kind = choice("Kind", kinds, key=f"{key}_kind", value="code", text="label", index_of="PHONE_CALL")
            today = clock.now().date()  # the same "today" crm checks dates against
            occurred_on = st.date_input("Date", value=today, key=f"{key}_date", format="DD/MM/YYYY", max_value=today)
            if branch_id is None:
                branch_id = choice("Branch", branches.branches(database, actor), key=f"{key}_branch")
            summary = st.text_input(
                "Summary",
                key=f"{key}_summary",
                placeholder=f"Leave blank for “{interactions.default_summary('Phone call', subject)}”",
            )
            notes = st.text_area("Notes", key=f"{key}_notes", height=80)
            follow_up_on = st.date_input("Follow up on", value=None, key=f"{key}_follow_up", format="DD/MM/YYYY")
            follow_up_action = st.text_input("Follow-up action", key=f"{key}_follow_up_action")
            submitted = st.form_submit_button("Save", type="primary")
        kind_label = next(k["label"] for k in kinds if k["code"] == kind)
        values = {
            "branch_id": branch_id,
            "kind_code": kind,
            "occurred_on": occurred_on,
            "summary": summary.strip() or interactions.default_summary(kind_label, subject),
            "notes": notes,
            "follow_up_on": follow_up_on,
            "follow_up_action": follow_up_action,
            "contact_ids": contact_ids or [],
            "organisation_id": organisation_id,
        }
        saved = guarded_save(
            key, submitted, lambda confirmed: interactions.log(database, actor, values, confirmed=confirmed)
        )
    if saved is not None:
        for widget in (f"{key}_summary", f"{key}_notes", f"{key}_follow_up", f"{key}_follow_up_action"):
            st.session_state.pop(widget, None)
        flash(f"Logged: {values['summary']}.")
        st.rerun()


def timeline(rows: list[dict], *, show_contacts: bool = True) -> None:
    """Interactions newest first, with who logged each."""
    if not rows:
        st.info("Nothing logged yet.")
        return
    st.dataframe(
        [
            {
                "Date": r["occurred_on"],
                "Kind": r["kind"],
                "Summary": r["summary"],
                **({"With": r["contacts"] or r["organisation"] or ""} if show_contacts else {}),
                "Follow-up": _follow_up_text(r),
                "Logged by": r["logged_by"],
                "Notes": r["notes"],
            }
            for r in rows
        ],
        hide_index=True,
        width="stretch",
    )


def _follow_up_text(row: dict) -> str:
    if not row["follow_up_on"]:
        return ""
    done = f" (done {row['follow_up_done_on']})" if row["follow_up_done_on"] else ""
    return f"{row['follow_up_on']}: {row['follow_up_action']}{done}".strip()


def chart_with_data(chart, rows: list[dict], columns: dict[str, str], name: str, key: str, **chart_options):
    """A chart, its data as a table under it, and downloads: the data as CSV, the chart as PNG and SVG.

    ``columns`` maps row keys to the headings shown. The images are rendered only when a download is clicked.
    Returns what st.altair_chart returns (the selection, when ``on_select`` is passed).
    """
    event = st.altair_chart(chart, key=key, **chart_options)
    table = [{heading: row.get(column) for column, heading in columns.items()} for row in rows]
    with st.expander(f"{name}: data as a table", expanded=False):
        st.dataframe(table, hide_index=True, width="stretch")
    left, middle, right, _ = st.columns([1, 1, 1, 3])
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    left.download_button(
        "Data (CSV)",
        lambda: "\ufeff" + exports.to_csv(table, list(columns.values())),
        file_name=f"{slug}.csv",
        mime="text/csv",
        key=f"{key}_csv",
        on_click="ignore",
    )
    middle.download_button(
        "Chart (PNG)",
        lambda: charts.to_png(chart),
        file_name=f"{slug}.png",
        mime="image/png",
        key=f"{key}_png",
        on_click="ignore",
    )
    right.download_button(
        "Chart (SVG)",
        lambda: charts.to_svg(chart),
        file_name=f"{slug}.svg",
        mime="image/svg+xml",
        key=f"{key}_svg",
        on_click="ignore",
    )
    return event


def edit_version(prefix: str, current: int) -> int:
    """The version of a record this user started editing from (kept until ``end_edit``).

    Saving sends it back, so a save over someone else's newer change is refused instead of overwriting it.
    When the record has changed since, the user is offered the latest version.
    """
    key = f"{prefix}_version"
    st.session_state.setdefault(key, current)
    if st.session_state[key] != current:
        st.info("Someone has changed this record since you opened it.")
        if st.button("Reload", key=f"{prefix}_reload", help="Show their changes; yours are discarded"):
            end_edit(prefix)
            st.rerun()
    return st.session_state[key]


def end_edit(prefix: str) -> None:
    """Forget an edit in progress: its version and the form's values (the next view reads the record afresh)."""
    for key in [k for k in st.session_state if str(k).startswith(f"{prefix}_")]:
        del st.session_state[key]
