"""Merging duplicates on the pages: the note on a merged record's old address, the "possibly the same person"
notice on a contact's page, and the side-by-side comparison where the user picks the survivor field by field."""

from collections.abc import Callable

import streamlit as st

from crm import merge
from crm.ui.widgets import day, md

DUPLICATES_PAGE = "pages/duplicates.py"


def merged_notice(note: dict | None, survivor_name: str) -> None:
    """Say that the address opened was a record since merged into the one shown."""
    if note is None:
        return
    old = note["name"] or "That record"
    st.info(md(f"{old} was merged into {survivor_name} on {day(note['merged_at'])}."))


def duplicates_notice(database, actor, contact: dict) -> None:
    """On a contact's page: the contacts of its branch that may be the same person, each with a link to compare
    them and merge."""
    for pair in merge.duplicates_of(database, actor, contact["id"])[:3]:
        other = pair["contacts"][1]
        st.warning(md(f"Possibly the same person as {other['name']} ({', '.join(pair['reasons'])})."))
        st.page_link(
            DUPLICATES_PAGE,
            label="Compare and merge",
            icon=":material/compare_arrows:",
            query_params={"contact": str(contact["id"]), "other": str(other["id"])},
        )


def _blank(value: object) -> bool:
    return value is None or value == ""


def pick_fields(
    prefix: str, records: dict[int, dict], survivor_id: int, fields: dict[str, str], shown: Callable[[dict, str], str]
) -> list[str]:
    """One radio per field where both records hold a different value, defaulting to the more recently changed
    record's; returns the fields to take from the merged record. Fields blank in the record that stays are
    filled from the other one anyway (said below the radios); ``shown(record, field)`` is the text shown."""
    merged_id = next(i for i in records if i != survivor_id)
    newer = max(records, key=lambda i: (records[i]["updated_at"], i))
    take: list[str] = []
    same: list[str] = []
    filled: list[str] = []
    for field, label in fields.items():
        values = {i: records[i][field] for i in records}
        if _blank(values[survivor_id]) and _blank(values[merged_id]):
            continue
        if values[survivor_id] == values[merged_id]:
            same.append(label)
        elif _blank(values[survivor_id]):
            filled.append(label)
        elif _blank(values[merged_id]):
            continue
        else:
            options: list[int] = list(records)

            def text(record_id: int, field: str = field) -> str:
                return md(shown(records[record_id], field))

            chosen = st.radio(
                label,
                options,
                index=options.index(newer),
                format_func=text,
                horizontal=True,
                key=f"{prefix}_field_{field}",
            )
            if chosen == merged_id:
                take.append(field)
    if filled:
        st.caption(f"Filled from the other record (blank in the one that stays): {', '.join(filled)}.")
    if same:
        st.caption(f"The same in both: {', '.join(same)}.")
    return take
