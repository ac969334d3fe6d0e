"""GP directory import (administrators only): load the NHS list of GP practices (the ODS epraccur file)."""

import streamlit as st

from crm import directory
from crm.errors import CRMError
from crm.ui import session
from crm.ui.widgets import md, show_error

database, actor = session.require(__file__)

st.title("GP directory import")
st.write(
    "Download the current GP practice file (epraccur) from NHS Digital's Organisation Data Service and upload it "
    "here. Practices are matched by ODS code: new ones are added, changed ones updated, closed ones marked closed "
    "(never deleted, they may have history). Uploading the same file again changes nothing."
)
# Drawn in a placeholder so an import below can refresh it in the same run (it showed the old counts until reload).
counts_line = st.empty()


def show_counts() -> None:
    counts = directory.status_counts(database)
    if counts:
        counts_line.write(
            "In the directory now: "
            + ", ".join(f"{n:,} {directory.STATUS_LABELS[s].lower()}" for s, n in sorted(counts.items()))
            + " GP practices."
        )


show_counts()
upload = st.file_uploader("epraccur file (CSV)", type=["csv"], key="gp_directory_file")
if upload is not None and st.button("Import", key="gp_directory_import", type="primary"):
    bar = st.empty()

    def show_progress(done: int, total: int) -> None:
        bar.progress(done / total if total else 1.0, text=f"Imported {done:,} of {total:,} rows")

    try:
        bar.progress(0.0, text="Reading the file...")
        summary = directory.import_gp_practices(database, actor, upload.getvalue(), progress=show_progress)
    except CRMError as error:
        bar.empty()
        show_error(error)
    else:
        bar.empty()
        show_counts()
        st.success(
            md(
                f"Imported {upload.name}: {summary.added:,} added, {summary.updated:,} updated, "
                f"{summary.unchanged:,} unchanged, {summary.closed:,} closed or dormant, "
                f"{summary.skipped:,} skipped (not GP practices)."
            )
        )
        if summary.invalid_phones:
            count = len(summary.invalid_phones)
            st.warning(
                md(
                    f"{count} {'practice has' if count == 1 else 'practices have'} a phone number that is not "
                    f"valid; it is kept as published and flagged: {', '.join(summary.invalid_phones)}."
                )
            )
