"""Every string of the Big List of Naughty Strings (../shared/data/blns.json, read through conftest) fed to every
text entry point of crm, then every export: each string is stored exactly as the app cleans text (trimmed, NFC,
Windows line ends made Unix ones) or refused with a CRMError whose message names the field, and no export fails.

One database, one account (no password hashing per string), so the whole list runs in a few seconds.
"""

import csv
import gc
import io
import json
import unicodedata
import zipfile

import pytest

from crm import contacts, exports, imports, interactions, organisations, privacy, testimonials, users
from crm.errors import AlreadyExists, CRMError, DuplicateContact
from tests.conftest import PASSWORD, World


def cleaned(text: str, *, multi_line: bool = False) -> str:
    """What the app stores for ``text``: trimmed and NFC-normalised (line ends made "\\n" in multi-line text)."""
    value = unicodedata.normalize("NFC", text.strip())
    return value.replace("\r\n", "\n") if multi_line else value


def refused_naming(error: CRMError, *fields: str) -> bool:
    """A refusal that says why: a message naming one of ``fields``, or "already exists" for a unique name."""
    return isinstance(error, AlreadyExists | DuplicateContact) or any(f"{f}:" in str(error) for f in fields)


@pytest.fixture
def world(database) -> World:
    return World(database, users.create_first_admin(database, "ada", "Ada Admin", PASSWORD))


def test_every_naughty_string_is_stored_exactly_or_refused_with_a_reason_and_every_export_works(world, naughty_strings):
    """Test that each naughty string, as a contact's name, job title and notes, an organisation's name, an
    interaction's summary and notes, a testimonial's quote and giver, a search of contacts, organisations,
    interactions and testimonials, and a cell of an imported CSV, is stored exactly (as cleaned) or refused with
    a CRMError naming the field; and that every export (testimonials as CSV, Excel, Word and Markdown; the
    mailing list as CSV and vCard; each contact's export as text and JSON) is produced from what was stored."""
    db, admin = world.db, world.admin
    problems: list[tuple] = []
    contact_ids = []
    for text in naughty_strings:
        # A contact: name, job title and notes.
        values = {"name": text, "job_title": text, "notes": text, "organisation_id": world.gp, "branch_id": world.leeds}
        try:
            contact_id = contacts.add(db, admin, values, allow_duplicate=True, confirmed=True)
        except CRMError as error:
            if not refused_naming(error, "Name", "Job title", "Notes"):
                problems.append(("contact", text, str(error)))
        else:
            contact_ids.append(contact_id)
            stored = contacts.get(db, admin, contact_id)
            wanted = (cleaned(text), cleaned(text), cleaned(text, multi_line=True))
            if (stored["name"], stored["job_title"], stored["notes"]) != wanted:
                problems.append(("contact stored", text, stored["name"]))

        # An organisation's name.
        try:
            org_id = organisations.add(db, admin, {"name": text, "type_code": "OTHER"})
        except CRMError as error:
            if not refused_naming(error, "Name", "Organisation name"):
                problems.append(("organisation", text, str(error)))
        else:
            if organisations.get(db, org_id)["name"] != cleaned(text):
                problems.append(("organisation stored", text, organisations.get(db, org_id)["name"]))

        # An interaction's summary and notes.
        try:
            interaction_id = interactions.log(
                db,
                admin,
                {
                    "branch_id": world.leeds,
                    "kind_code": "PHONE_CALL",
                    "occurred_on": "2026-01-05",
                    "summary": text,
                    "notes": text,
                    "organisation_id": world.gp,
                },
                confirmed=True,
            )
        except CRMError as error:
            if not refused_naming(error, "Summary", "Notes"):
                problems.append(("interaction", text, str(error)))
        else:
            stored = interactions.get(db, admin, interaction_id)
            if (stored["summary"], stored["notes"]) != (cleaned(text), cleaned(text, multi_line=True)):
                problems.append(("interaction stored", text, stored["summary"]))

        # A testimonial's quote and giver.
        try:
            testimonial_id = testimonials.add(
                db,
                admin,
                {
                    "branch_id": world.leeds,
                    "quote": text,
                    "giver_name": text,
                    "organisation_id": world.gp,
                    "source": "email",
                    "received_on": "2026-01-05",
                },
                confirmed=True,
            )
        except CRMError as error:
            if not refused_naming(error, "Quote", "Giver's name", "Giver"):
                problems.append(("testimonial", text, str(error)))
        else:
            stored = testimonials.get(db, admin, testimonial_id)
            if (stored["quote"], stored["giver_name"]) != (cleaned(text, multi_line=True), cleaned(text)):
                problems.append(("testimonial stored", text, stored["quote"]))

        # Every search.
        for name, search in (
            ("contacts", lambda t: contacts.search(db, admin, text=t)),
            ("organisations", lambda t: organisations.search(db, t)),
            ("interactions", lambda t: interactions.search(db, admin, text=t)),
            ("testimonials", lambda t: testimonials.search(db, admin, text=t)),
            ("testimonial themes", lambda t: testimonials.search(db, admin, theme=t)),
        ):
            try:
                search(text)
            except CRMError as error:
                if not refused_naming(error, "Search", "Theme"):
                    problems.append((f"search {name}", text, str(error)))

    # The CSV import, each string a cell (name, job title and notes of one row).
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["Name", "Job title", "Notes", "Organisation"])
    for text in naughty_strings:
        writer.writerow([text, text, text, "Hyde Park Surgery"])
    table = imports.read_table(buffer.getvalue().encode("utf-8"), "naughty.csv")
    mapping = imports.guess_mapping(table.headers)
    plan = imports.plan(db, admin, table, mapping, world.leeds, "skip")
    report = imports.apply(db, admin, plan)
    assert len(report["rows"]) == len(naughty_strings)
    field_labels = tuple(imports.FIELDS.values())
    for row, text in zip(report["rows"], naughty_strings, strict=True):
        if row["outcome"] == "error" and not any(f"{label}" in " ".join(row["messages"]) for label in field_labels):
            problems.append(("import", text, row["messages"]))
    imported_names = {r["name"] for r in db.execute_returning_dicts("SELECT name FROM contacts")}
    for row, text in zip(report["rows"], naughty_strings, strict=True):
        if row["outcome"] == "imported" and cleaned(text) not in imported_names:
            problems.append(("import stored", text, row["messages"]))

    assert problems == []

    # Every export, from everything stored.
    for fmt in ("csv", "xlsx", "docx", "md"):
        try:
            content, _ = testimonials.export(db, admin, fmt, "internal", provider="Brightwater", scope_label="Leeds")
        finally:
            gc.collect()  # a writer that failed half-way leaves an open zip: its complaint belongs to this test
        assert content, fmt
        if fmt in ("xlsx", "docx"):
            assert zipfile.ZipFile(io.BytesIO(content)).testzip() is None
    people = contacts.mailing_list(db, admin)
    assert exports.to_csv(people, contacts.MAILING_COLUMNS).count("\n") >= len(people)
    assert exports.to_vcards(people).count("BEGIN:VCARD") == len(people)
    for contact_id in contact_ids:
        data = privacy.export_person(db, admin, contact_id)
        assert privacy.export_text(data)
        assert json.loads(privacy.to_json(data))["contact"]["id"] == contact_id
