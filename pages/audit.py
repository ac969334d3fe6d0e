"""Audit log: who changed what and when (administrators: everything; regional leads: their region)."""

from datetime import timedelta

import streamlit as st
from sqlite_utils import Database

from crm import audit, clock, exports
from crm.access import Actor
from crm.ui import session
from crm.ui.downloads import deferred_download

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
        "users",
        "branches",
        "regions",
        "settings",
        "organisation_types",
        "database",
    ],
    format_func=lambda t: "All" if t is None else t.replace("_", " ").capitalize(),
    key="audit_table",
)
row_id = columns[2].number_input("Record id", min_value=1, value=None, step=1, key="audit_row")
period = columns[3].date_input(
    "Between", value=(today - timedelta(days=30), today), format="DD/MM/YYYY", key="audit_period"
)
since, until = (period[0].isoformat(), period[1].isoformat()) if len(period) == 2 else (None, None)
entries = audit.search(database, actor, username=username, table=table, row_id=row_id, since=since, until=until)
COLUMNS = ["When", "Who", "Did", "Record", "Id", "Changes"]


def as_rows(entries: list[dict]) -> list[dict]:
    """Audit entries as the table (and CSV) shows them."""
    return [
        {
            "When": e["at"],
            "Who": e["username"],
            "Did": e["action"].replace("_", " "),
            "Record": e["table_name"],
            "Id": e["row_id"],
            "Changes": exports.to_json(e["changes"]) if e["changes"] else "",
        }
        for e in entries
    ]


def as_csv(database: Database, actor: Actor) -> str:
    """The entries listed, searched again for the one pressing Export (made when the button is pressed)."""
    found = audit.search(database, actor, username=username, table=table, row_id=row_id, since=since, until=until)
    return "\ufeff" + exports.to_csv(as_rows(found), COLUMNS)


st.caption(
    f"{len(entries)} entr{'y' if len(entries) == 1 else 'ies'}" + (" (newest 1,000)" if len(entries) == 1000 else "")
)
st.dataframe(as_rows(entries), hide_index=True, width="stretch")
deferred_download(
    "Export (CSV)", as_csv, file_name=f"audit-{today.isoformat()}.csv", mime="text/csv", key="audit_export"
)
