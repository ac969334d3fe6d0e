"""Import contacts: bring in a branch's existing spreadsheet of contacts (CSV or Excel), checked row by row."""

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from crm import branches, imports
from crm.access import BRANCH_MANAGER
from crm.errors import CRMError
from crm.ui import session
from crm.ui.widgets import choice, md, rows_table, show_error

database, actor = session.require(__file__)

st.title("Import contacts")
st.write(
    "Upload the spreadsheet you keep your partner contacts in (CSV or Excel .xlsx). Check how its columns match, "
    "look at the preview, then import. Nothing is written until you press Import, and then all at once."
)
if actor.role == BRANCH_MANAGER:
    branch_id = actor.branch_id
else:
    branch_id = choice("Import into branch", branches.branch_choices(database, actor), key="import_branch")
upload = st.file_uploader("Spreadsheet", type=["csv", "xlsx", "txt", "tsv"], key="import_file")
if upload is None or branch_id is None:
    st.stop()

# A file that has just been imported shows what was done, not its preview again ("2 to import" with the button
# still enabled, after the import had run).
done = st.session_state.get("import_done")
if done and done["file_id"] == upload.file_id:
    st.success(md(done["message"]))
    st.download_button(
        "Download the report (JSON)",
        done["report_json"],
        file_name="import-report.json",
        mime="application/json",
        key="import_report",
    )
    st.info("To import more, upload another file.")
    st.stop()

try:
    table = imports.read_table(upload.getvalue(), upload.name)
except CRMError as error:
    show_error(error)
    st.stop()

st.subheader("Columns")
guessed = imports.guess_mapping(table.headers)
NOT_IN_FILE = "(not in the file)"
columns = st.columns(3)
mapping: dict[str, str | None] = {}
for i, (name, label) in enumerate(imports.FIELDS.items()):
    options = [NOT_IN_FILE, *table.headers]
    picked = columns[i % 3].selectbox(
        label, options, index=options.index(guessed[name]) if guessed[name] else 0, key=f"import_map_{name}"
    )
    mapping[name] = None if picked == NOT_IN_FILE else picked
on_duplicate = st.radio(
    "When a row is a contact the branch already has, or repeats an earlier row",
    list(imports.ON_DUPLICATE),
    format_func=imports.ON_DUPLICATE.get,
    horizontal=True,
    key="import_on_duplicate",
)


def progress_bar(verb: str) -> tuple[DeltaGenerator, imports.Progress | None]:
    """A placeholder and a callback drawing "<verb> 1,500 of 3,000 rows" in it; no bar for a short file (it would
    only flash)."""
    bar = st.empty()
    if len(table.rows) < imports.PROGRESS_EVERY:
        return bar, None

    def show(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"{verb} {done:,} of {total:,} rows")

    return bar, show


checking, show_checking = progress_bar("Checked")
try:
    plan = imports.plan(database, actor, table, mapping, branch_id, on_duplicate, progress=show_checking)
except CRMError as error:
    show_error(error)
    st.stop()
finally:
    checking.empty()

summary = plan.summary()
st.subheader("Preview")
st.write(
    f"{len(plan.rows)} rows: **{summary['imported']} to import**, {summary['updated']} to update, "
    f"{summary['skipped']} to skip, **{summary['errors']} with problems** (not imported; fix them in the file "
    "and upload it again)."
)
outcome_words = {"imported": "Import", "updated": "Update", "skipped": "Skip", "error": "Problem"}
name_column = table.headers.index(mapping["name"]) if mapping["name"] else None
org_column = table.headers.index(mapping["organisation"]) if mapping["organisation"] else None
rows_table(
    [
        {
            "Line": row.line,
            "Will": outcome_words[row.outcome],
            "Name": table.rows[i][name_column] if name_column is not None else "",
            "Organisation": table.rows[i][org_column] if org_column is not None else "",
            "Problems and notes": " ".join(row.messages),
        }
        for i, row in enumerate(plan.rows)
    ],
    hide_index=True,
    width="stretch",
)
to_write = summary["imported"] + summary["updated"]
if st.button(
    f"Import {to_write:,} contact{'s' if to_write != 1 else ''}", type="primary", disabled=not to_write, key="import_go"
):
    importing, show_importing = progress_bar("Imported")
    try:
        report = imports.apply(database, actor, plan, progress=show_importing)
    except CRMError as error:
        importing.empty()
        show_error(error)
    else:
        counts = report["summary"]
        st.session_state["import_done"] = {
            "file_id": upload.file_id,
            "message": (
                f"Imported {counts['imported']:,} and updated {counts['updated']:,} contacts from {upload.name}."
            ),
            "report_json": imports.report_json(report),
        }
        st.rerun()
