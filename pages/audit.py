"""Audit log: who changed what and when (administrators: everything; regional leads: their region)."""

from datetime import timedelta

import streamlit as st
from sqlite_utils import Database

from crm import audit, clock, exports
from crm.access import Actor
from crm.ui import session
from crm.ui.downloads import deferred_download
from crm.ui.widgets import rows_table

database, actor = session.require(__file__)
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
entries = audit.history(database, actor, **filters)
table_rows = [{k: v for k, v in e.items() if k != "at"} for e in entries]
CSV_COLUMNS = ["At (UTC)", "Who", "Did", "Record", "Changes"]


def as_csv(database: Database, actor: Actor) -> str:
    """The entries listed, searched again for the one pressing Export (made when the button is pressed). The file
    keeps the UTC time in ISO 8601 for machines, beside what people read."""
    found = audit.history(database, actor, **filters)
    return "\ufeff" + exports.to_csv([{"At (UTC)": e["at"], **e} for e in found], CSV_COLUMNS)


st.caption(
    f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}" + (" (newest 1,000)" if len(entries) == 1000 else "")
)
rows_table(table_rows, hide_index=True, width="stretch")
deferred_download(
    "Export (CSV)", as_csv, file_name=f"audit-{today.isoformat()}.csv", mime="text/csv", key="audit_export"
)
