"""Audit log: who changed what and when (administrators: everything; regional leads: their region)."""

from datetime import timedelta

import streamlit as st
from sqlite_utils import Database

from crm import audit, clock, exports
from crm.access import Actor
from crm.ui import paging, session
from crm.ui.downloads import deferred_download
from crm.ui.widgets import rows_table

database, actor = session.require(__file__)
PAGE_ROWS = 100  # entries listed per page, newest first
COUNTED = 10_000  # counted at most: beyond, the caption says "more than" (and the filters narrow it)
EXPORTED = 100_000  # entries in an export at most, newest first
CSV_COLUMNS = ["At (UTC)", "Who", "Did", "Record", "Changes"]
today = clock.now().date()

st.title("Audit log")
columns = st.columns(4)
username = columns[0].text_input("User name", key="audit_user")
table = columns[1].selectbox(
    "Record type",
    [
        None,
        "contacts",
        "interactions",
        "organisations",
        "testimonials",
        "referrals",
        "users",
        "branches",
        "regions",
        "settings",
        "organisation_types",
        "database",
    ],
    format_func=lambda t: "All" if t is None else audit.RECORDS.get(t, t).removesuffix(" of"),
    key="audit_table",
)
row_id = columns[2].number_input("Record id", min_value=1, value=None, step=1, key="audit_row")
period = columns[3].date_input(
    "Between", value=(today - timedelta(days=30), today), format="DD/MM/YYYY", key="audit_period"
)
since, until = (period[0].isoformat(), period[1].isoformat()) if len(period) == 2 else (None, None)
hide_demo = st.checkbox("Hide the demo data's set-up", value=True, key="audit_hide_demo")
filters = {
    "username": username,
    "table": table,
    "row_id": row_id,
    "since": since,
    "until": until,
    "hide_demo": hide_demo,
}


def as_csv(database: Database, actor: Actor) -> str:
    """Every entry the filters find (up to EXPORTED, newest first), searched again for the one pressing Export
    (made when the button is pressed). The file keeps the UTC time in ISO 8601 for machines, beside what people
    read."""
    found = audit.history(database, actor, **filters, limit=EXPORTED)
    return "\ufeff" + exports.to_csv([{"At (UTC)": e["at"], **e} for e in found], CSV_COLUMNS)


# One page of entries and a count, both in SQL: a rerun costs the same for a region and a whole provider's log.
total = audit.count(database, actor, **filters, at_most=COUNTED)
# Beyond COUNTED the pages stop at COUNTED's: the caption and the pager say there are more, and the filters narrow.
page, pages = paging.page_of("audit", min(total, COUNTED), PAGE_ROWS, filters)
entries = audit.history(database, actor, **filters, limit=PAGE_ROWS, offset=page * PAGE_ROWS)
counted = paging.count_label(total, COUNTED)
shown = paging.range_shown(page, pages, PAGE_ROWS, len(entries))
paging.count_caption("audit", f"{counted} entr{'y' if total == 1 else 'ies'}{shown}")
rows_table([{k: v for k, v in e.items() if k != "at"} for e in entries], hide_index=True, width="stretch")
paging.pager("audit", page, pages, more=total > COUNTED)
deferred_download(
    "Export (CSV)",
    as_csv,
    file_name=f"audit-{today.isoformat()}.csv",
    mime="text/csv",
    key="audit_export",
    help=f"Every entry the filters find, newest first (up to {EXPORTED:,}).",
)
