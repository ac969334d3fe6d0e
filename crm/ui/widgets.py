"""Small shared Streamlit helpers: error display, safe text, option pickers."""

import re
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

import pyarrow as pa
import streamlit as st

from crm import branches, charts, clock, dates, exports, fields, interactions, organisations
from crm.errors import CRMError, InvalidFields, PossibleClientData
from crm.ui import layout
from crm.ui.downloads import deferred_download

T = TypeVar("T")

# What Streamlit's markdown would read as formatting anywhere in a line: emphasis, code, strikethrough, links and
# images, HTML and autolinks in <...>, LaTeX, tables, escapes. A backslash makes each one plain text.
_INLINE_SPECIAL = re.compile(r"([\\`*_~\[\]<>$|])")
# An entity (&amp; &#60;) would render as the character it names, not as typed.
_ENTITY_START = re.compile(r"&(?=#?[A-Za-z0-9]+;)")
# What starts a block at the beginning of a line: heading, quote, list item, setext underline, thematic break.
_LINE_START_SPECIAL = re.compile(r"^([#+=-]|\d{1,9}(?=[.)]))")
# Streamlit links bare URLs (https://..., www.x), email addresses and :emoji: shortcodes after escapes are
# resolved, so a backslash cannot stop them: an invisible WORD JOINER (U+2060) after ":" "@" and "www" breaks
# each pattern while the text reads, wraps and looks exactly as typed.
_WORD_JOINER = "\u2060"
_AUTOLINK_PARTS = re.compile(r"(:(?=\S)|(?<=[\w.+-])@(?=[\w-])|(?<![A-Za-z0-9])www(?=\S))", re.IGNORECASE)


def rows_table(rows: list[dict], **options: Any) -> Any:
    """st.dataframe of ``rows`` (pass ``hide_index=True``), sent as an Arrow table, as Streamlit sends one: given a
    list of dicts, it builds a pandas DataFrame and converts that to Arrow on every rerun, 8% of all the app's
    script time under load (BENCHMARKS.md). Rows Arrow cannot type (a column of mixed values, rows with different
    columns) go as they are, for Streamlit's own conversion."""
    data: pa.Table | list[dict] = rows
    if rows and all(row.keys() == rows[0].keys() for row in rows):
        try:
            data = pa.Table.from_pylist(rows)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            pass
    return st.dataframe(data, **options)


def md(text: str | None) -> str:
    """User-entered text for any element that renders markdown (titles, captions, messages, labels, buttons,
    tabs, expanders, toasts, radio options), shown as typed: never a link, image, heading, list or emoji.

    Each line keeps its break (as a markdown hard line break). Leading spaces are dropped: a browser would
    not show them, and four of them would start a code block.
    """
    lines = []
    for line in (text or "").splitlines() or [""]:
        line = _INLINE_SPECIAL.sub(r"\\\1", line.lstrip(" \t"))
        line = _ENTITY_START.sub(r"\\&", line)
        line = _AUTOLINK_PARTS.sub(lambda m: m.group(1) + _WORD_JOINER, line)
        line = _LINE_START_SPECIAL.sub(_escape_line_start, line)
        lines.append(line)
    return "  \n".join(lines)


def _escape_line_start(match: re.Match) -> str:
    marker = match.group(1)
    if marker.isdigit():  # "1." or "1)" would start a numbered list: escape the "." or ")" after the number
        return marker + "\\"
    return "\\" + marker


INVALID_LINK = "That link is not valid."
_RECORD_ID = re.compile(r"[1-9][0-9]{0,18}")  # a positive whole number; SQLite's ids stop at 2**63 - 1
_MAX_RECORD_ID = 2**63 - 1


def query_id(name: str) -> int | None:
    """The record id in the address's ``?name=`` parameter, or None (with a plain message) when it is not one.

    Ids come from links people can edit: anything but a positive whole number SQLite can hold gets the
    message, never a traceback (a larger number overflows SQLite's integer and raises in the query).
    """
    raw = st.query_params.get(name, "")
    if _RECORD_ID.fullmatch(raw) and int(raw) <= _MAX_RECORD_ID:
        return int(raw)
    st.error(INVALID_LINK)
    return None


def search_box(label: str, key: str, *, placeholder: str | None = None, container: Any = None) -> str:
    """A search text box, as long as crm's searches accept (fields.SEARCH_MAX characters)."""
    return (container or st).text_input(label, key=key, placeholder=placeholder, max_chars=fields.SEARCH_MAX)


def day(iso_date: str | None) -> str:
    """A stored date (or timestamp) as people in the UK write it: 14 Dec 2025 (crm.dates, the one date style)."""
    return dates.day(iso_date)


def show_error(error: CRMError) -> None:
    """One plain-English error box per problem (messages can quote what the user typed: shown as plain text)."""
    problems = error.errors if isinstance(error, InvalidFields) else [error]
    for problem in problems:
        st.error(md(str(problem)))


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
    """Keep a success message across a rerun (``flash("Saved.")``), or show and forget it (``flash()``).

    The message is plain text (it names records by what users typed): it is shown escaped, never as markdown.
    """
    if message is not None:
        st.session_state["crm_flash"] = message
    elif text := st.session_state.pop("crm_flash", None):
        st.success(md(text))


def organisation_picker(
    database, key: str, current: int | None = None, *, optional: bool = False, actor=None
) -> int | None:
    """Search the organisation directory and pick one; returns its id, or None until the user has chosen.

    Nothing is chosen for the user (a contact filed at the directory's first organisation by default was a bug):
    the list shows the matches at once, the ``actor``'s own patch first, and the user picks one.
    """
    query = search_box(
        "Find organisation",
        f"{key}_search",
        placeholder="Words of the name, postcode, ODS code or type, e.g. Leeds OT, GP LS6, SW",
    )
    try:
        matches = organisations.search(database, query, limit=50, actor=actor)
    except CRMError as error:
        show_error(error)
        return None
    if current is not None and all(m["id"] != current for m in matches):
        matches = [organisations.get(database, current), *matches]
    if not matches:
        st.warning("No organisation matches that search.")
        return None
    labels = {}
    for m in matches:
        closed = "" if m["status"] == "active" else f", {m['status']}"
        labels[m["id"]] = f"{m['name']} ({m['type_label']}{', ' + m['postcode'] if m['postcode'] else ''}{closed})"
    options: list = ([None] if optional else []) + list(labels)
    if query.strip():
        shown = f"{len(labels)}{'+' if len(labels) == 50 else ''}"
        matches_text = "organisation matches" if len(labels) == 1 else "organisations match"
        st.caption(f"{shown} {matches_text}; choose one in the list below.")
    return st.selectbox(
        "Organisation",
        options,
        index=options.index(current) if current in options else (0 if optional else None),
        format_func=lambda v: "(any organisation)" if v is None else labels[v],
        placeholder="Choose an organisation",
        key=f"{key}_choice",
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
        st.warning(md(st.session_state[pending]))
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
                branch_id = choice("Branch", branches.branch_choices(database, actor), key=f"{key}_branch")
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
    rows_table(
        [
            {
                "Date": day(r["occurred_on"]),
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
    done = f" (done {day(row['follow_up_done_on'])})" if row["follow_up_done_on"] else ""
    return f"{day(row['follow_up_on'])}: {row['follow_up_action']}{done}".strip()


def chart_with_data(
    build: Callable,
    args: tuple,
    rows: list[dict],
    columns: dict[str, str],
    name: str,
    key: str,
    report: dict | None = None,
    **chart_options,
):
    """The chart ``build(*args)`` (a crm.charts function and its arguments), its data as a table under it, and
    downloads: the data as CSV, the chart as PNG and SVG.

    The chart is built once for the same arguments (cached.chart_spec). ``columns`` maps row keys to the headings
    shown. The images are rendered only when a download is clicked, as a report's figure (charts.for_report,
    given ``report``: scope, as_of, window_days, required_types). Returns what st.vega_lite_chart returns (the
    selection, when ``on_select`` is passed).
    """
    from crm.ui import cached  # (crm.ui.cached imports streamlit's caching; pages import widgets first)

    figure = (lambda: charts.for_report(build(*args), **report)) if report else (lambda: build(*args))
    event = st.vega_lite_chart(spec=cached.chart_spec(build, *args), key=key, **chart_options)

    def table() -> list[dict]:
        # Made only when shown or downloaded: an administrator's heatmap has 3,250 rows (3 ms a rerun to copy).
        return [{heading: row.get(column) for column, heading in columns.items()} for row in rows]

    # Drawn only while open: sending the table (as Arrow) cost every rerun of a page of charts.
    layout.drawn_when_open(
        f"{name}: data as a table",
        f"{key}_table_open",
        lambda: rows_table(table(), hide_index=True, width="stretch"),
    )
    left, middle, right, _ = st.columns([1, 1, 1, 3])
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    with left:
        deferred_download(
            "Data (CSV)",
            lambda database, actor: "\ufeff" + exports.to_csv(table(), list(columns.values())),
            file_name=f"{slug}.csv",
            mime="text/csv",
            key=f"{key}_csv",
        )
    with middle:
        deferred_download(
            "Chart (PNG)",
            lambda database, actor: charts.to_png(figure()),
            file_name=f"{slug}.png",
            mime="image/png",
            key=f"{key}_png",
        )
    with right:
        deferred_download(
            "Chart (SVG)",
            lambda database, actor: charts.to_svg(figure()),
            file_name=f"{slug}.svg",
            mime="image/svg+xml",
            key=f"{key}_svg",
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
