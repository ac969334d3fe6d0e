"""Backups (administrators only): download a consistent copy of the whole database and its evidence files."""

import tempfile
from pathlib import Path

import streamlit as st

from crm import backups, clock
from crm.ui import session

database, actor = session.require(__file__)

st.title("Backups")
st.write(
    "Download a complete, consistent copy of the database and the testimonials' evidence files (one .zip "
    "archive with a manifest of checksums), safe to take while people are working. Keep it somewhere secure: "
    "it holds every contact's details. To restore one, stop the app and run "
    "`python -m crm restore FILE` on the server (the database it replaces is kept beside it)."
)


def snapshot() -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        target = backups.backup(database, actor, Path(folder) / "backup.zip")
        return target.read_bytes()


st.download_button(
    "Download a backup",
    snapshot,
    file_name=f"partner-crm-{clock.now():%Y-%m-%d-%H%M}.zip",
    mime="application/zip",
    key="backups_download",
    on_click="ignore",
    type="primary",
)
