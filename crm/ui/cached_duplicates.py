"""Possible duplicates cached between reruns, for as long as the data they come from is unchanged.

Finding them reads every contact in the user's scope (75,000 for an administrator of 250 branches); the list is
the same until someone writes, and every write adds an audit entry, so it is keyed on the version of the
database ``crm.ui.cached`` keys coverage on: choosing a branch to compare and coming back to the list are served
from memory, and the first view after anyone's change finds them again.
"""

import streamlit as st
from sqlite_utils import Database

from crm import db, merge
from crm.access import Actor
from crm.ui.cached import _version


@st.cache_data(max_entries=64, show_spinner=False)
def _contacts(version: tuple, actor: Actor, branch_id: int | None) -> list[dict]:
    with db.connect(version[0]) as database:
        return merge.duplicate_contacts(database, actor, branch_id=branch_id)


@st.cache_data(max_entries=16, show_spinner=False)
def _organisations(version: tuple, actor: Actor) -> list[dict]:
    with db.connect(version[0]) as database:
        return merge.duplicate_organisations(database, actor)


def duplicate_contacts(database: Database, actor: Actor, *, branch_id: int | None = None) -> list[dict]:
    """merge.duplicate_contacts, cached while the data is unchanged."""
    return _contacts(_version(database), actor, branch_id)


def duplicate_organisations(database: Database, actor: Actor) -> list[dict]:
    """merge.duplicate_organisations, cached while the data is unchanged."""
    return _organisations(_version(database), actor)
