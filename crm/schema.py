"""The schema as named migration steps. A released step is never edited: add a new one instead."""

from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from crm.db import transaction

migrations = Migrations("crm")

# Partner organisation types from DOMAIN.md. Codes are stable; labels are what users read.
ORGANISATION_TYPES = [
    ("GP_PRACTICE", "GP practice"),
    ("PCN", "Primary care network"),
    ("COMMUNITY_THERAPY", "Community therapy (OT, physio, reablement)"),
    ("COMMUNITY_NURSING", "Community nursing (district nurses)"),
    ("LA_SOCIAL_CARE", "Council adult social care"),
    ("HOSPITAL_DISCHARGE", "Hospital discharge"),
    ("MENTAL_HEALTH", "Mental health"),
    ("ICB", "Integrated care board"),
    ("HOSPICE", "Hospice"),
    ("PHARMACY", "Pharmacy"),
    ("HOUSING", "Housing"),
    ("VOLUNTARY_COMMUNITY", "Voluntary and community"),
    ("OTHER", "Other"),
]


def _reference(db: Database, table: str, pairs: list[tuple[str, str]]) -> None:
    """Fill a reference table of (code, label) pairs, in the given order."""
    db.table(table).insert_all(
        [{"code": code, "label": label, "sort_order": i * 10} for i, (code, label) in enumerate(pairs, start=1)]
    )


def _run(db: Database, statements: str) -> None:
    # executescript() would commit the migration's transaction; run the statements one by one instead.
    for statement in statements.split(";"):
        if statement.strip():
            db.execute(statement)


@migrations(name="0001_foundation")
def foundation(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE settings (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE TABLE regions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            created_at TEXT NOT NULL
        );
        CREATE TABLE branches (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE COLLATE NOCASE,
            region_id INTEGER NOT NULL REFERENCES regions(id),
            created_at TEXT NOT NULL
        );
        CREATE INDEX idx_branches_region ON branches(region_id);
        CREATE TABLE organisation_types (
            code TEXT PRIMARY KEY CHECK (code GLOB '[A-Z]*' AND code NOT GLOB '*[^A-Z_]*'),
            label TEXT NOT NULL UNIQUE,
            sort_order INTEGER NOT NULL DEFAULT 100
        );
        CREATE TABLE organisations (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            type_code TEXT NOT NULL REFERENCES organisation_types(code),
            address TEXT NOT NULL DEFAULT '',
            postcode TEXT NOT NULL DEFAULT '',
            phone TEXT,
            phone_ext TEXT,
            email TEXT,
            website TEXT NOT NULL DEFAULT '',
            ods_code TEXT UNIQUE,
            created_at TEXT NOT NULL,
            created_by INTEGER REFERENCES users(id),
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX idx_organisations_type ON organisations(type_code, name);
        CREATE INDEX idx_organisations_name ON organisations(name COLLATE NOCASE);
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE COLLATE NOCASE,
            display_name TEXT NOT NULL,
            password_hash TEXT NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('admin', 'regional_lead', 'branch_manager')),
            region_id INTEGER REFERENCES regions(id),
            branch_id INTEGER REFERENCES branches(id),
            disabled INTEGER NOT NULL DEFAULT 0,
            failed_attempts INTEGER NOT NULL DEFAULT 0,
            locked_until TEXT,
            session_version INTEGER NOT NULL DEFAULT 1,
            last_sign_in TEXT,
            created_at TEXT NOT NULL,
            CHECK (role != 'regional_lead' OR (region_id IS NOT NULL AND branch_id IS NULL)),
            CHECK (role != 'branch_manager' OR (branch_id IS NOT NULL AND region_id IS NULL)),
            CHECK (role != 'admin' OR (branch_id IS NULL AND region_id IS NULL))
        );
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY,
            token_hash TEXT NOT NULL UNIQUE,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            session_version INTEGER NOT NULL,
            created_at TEXT NOT NULL,
            last_seen_at TEXT NOT NULL
        );
        CREATE INDEX idx_sessions_user ON sessions(user_id);
        CREATE TABLE contacts (
            id INTEGER PRIMARY KEY,
            branch_id INTEGER NOT NULL REFERENCES branches(id),
            organisation_id INTEGER NOT NULL REFERENCES organisations(id),
            name TEXT NOT NULL,
            job_title TEXT NOT NULL DEFAULT '',
            phone TEXT,
            phone_ext TEXT,
            mobile TEXT,
            email TEXT,
            notes TEXT NOT NULL DEFAULT '',
            is_named_contact INTEGER NOT NULL DEFAULT 1,
            status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'left')),
            left_on TEXT,
            created_at TEXT NOT NULL,
            created_by INTEGER REFERENCES users(id),
            updated_at TEXT NOT NULL,
            updated_by INTEGER REFERENCES users(id),
            version INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX idx_contacts_branch ON contacts(branch_id, status, name);
        CREATE INDEX idx_contacts_organisation ON contacts(organisation_id);
        CREATE INDEX idx_contacts_email ON contacts(email);
        CREATE INDEX idx_contacts_phone ON contacts(phone);
        CREATE INDEX idx_contacts_mobile ON contacts(mobile);
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            user_id INTEGER REFERENCES users(id),
            username TEXT NOT NULL,
            action TEXT NOT NULL,
            table_name TEXT NOT NULL,
            row_id INTEGER,
            changes TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX idx_audit_record ON audit_log(table_name, row_id);
        CREATE INDEX idx_audit_at ON audit_log(at);
        CREATE INDEX idx_audit_user ON audit_log(user_id, at)
        """,
    )
    _reference(db, "organisation_types", ORGANISATION_TYPES)


INTERACTION_KINDS = [
    ("VISIT", "Visit"),
    ("PHONE_CALL", "Phone call"),
    ("MEETING", "Meeting"),
    ("EMAIL", "Email"),
    ("EVENT", "Event"),
    ("MDT_MEETING", "Multidisciplinary meeting"),
    ("REFERRAL_RECEIVED", "Referral received"),
    ("FEEDBACK_RECEIVED", "Feedback received"),
    ("COMPLAINT_RECEIVED", "Complaint received"),
]


@migrations(name="0002_interactions")
def interactions(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE interaction_kinds (
            code TEXT PRIMARY KEY CHECK (code GLOB '[A-Z]*' AND code NOT GLOB '*[^A-Z_]*'),
            label TEXT NOT NULL UNIQUE,
            sort_order INTEGER NOT NULL DEFAULT 100
        );
        CREATE TABLE interactions (
            id INTEGER PRIMARY KEY,
            branch_id INTEGER NOT NULL REFERENCES branches(id),
            organisation_id INTEGER REFERENCES organisations(id),
            occurred_on TEXT NOT NULL,
            kind_code TEXT NOT NULL REFERENCES interaction_kinds(code),
            summary TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '',
            follow_up_on TEXT,
            follow_up_action TEXT NOT NULL DEFAULT '',
            follow_up_done_on TEXT,
            created_at TEXT NOT NULL,
            created_by INTEGER REFERENCES users(id),
            updated_at TEXT NOT NULL,
            updated_by INTEGER REFERENCES users(id),
            version INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX idx_interactions_branch ON interactions(branch_id, occurred_on);
        CREATE INDEX idx_interactions_organisation ON interactions(organisation_id, occurred_on);
        CREATE INDEX idx_interactions_kind ON interactions(kind_code, occurred_on);
        CREATE INDEX idx_interactions_follow_up ON interactions(branch_id, follow_up_on)
            WHERE follow_up_on IS NOT NULL AND follow_up_done_on IS NULL;
        CREATE TABLE interaction_contacts (
            interaction_id INTEGER NOT NULL REFERENCES interactions(id) ON DELETE CASCADE,
            contact_id INTEGER NOT NULL REFERENCES contacts(id),
            PRIMARY KEY (interaction_id, contact_id)
        ) WITHOUT ROWID;
        CREATE INDEX idx_interaction_contacts_contact ON interaction_contacts(contact_id, interaction_id);
        ALTER TABLE organisation_types ADD COLUMN keep_in_touch_days INTEGER NOT NULL DEFAULT 90
            CHECK (keep_in_touch_days BETWEEN 1 AND 3650);
        ALTER TABLE contacts ADD COLUMN keep_in_touch_days INTEGER
            CHECK (keep_in_touch_days IS NULL OR keep_in_touch_days BETWEEN 1 AND 3650);
        ALTER TABLE contacts ADD COLUMN last_touched_on TEXT;
        ALTER TABLE contacts ADD COLUMN successor_id INTEGER REFERENCES contacts(id);
        CREATE INDEX idx_contacts_last_touched ON contacts(branch_id, last_touched_on)
        """,
    )
    _reference(db, "interaction_kinds", INTERACTION_KINDS)


@migrations(name="0003_gp_directory")
def gp_directory(db: Database) -> None:
    _run(
        db,
        """
        ALTER TABLE organisations ADD COLUMN status TEXT NOT NULL DEFAULT 'active'
            CHECK (status IN ('active', 'closed', 'dormant', 'proposed'));
        ALTER TABLE organisations ADD COLUMN commissioner_code TEXT;
        ALTER TABLE organisations ADD COLUMN opened_on TEXT;
        ALTER TABLE organisations ADD COLUMN closed_on TEXT;
        ALTER TABLE organisations ADD COLUMN phone_raw TEXT;
        ALTER TABLE organisations ADD COLUMN postcode_district TEXT GENERATED ALWAYS AS (
            CASE WHEN instr(postcode, ' ') > 0 THEN substr(postcode, 1, instr(postcode, ' ') - 1) END
        ) VIRTUAL;
        CREATE INDEX idx_organisations_district ON organisations(postcode_district, type_code, status);
        CREATE INDEX idx_organisations_commissioner ON organisations(commissioner_code, type_code, status);
        CREATE TABLE branch_patch (
            branch_id INTEGER NOT NULL REFERENCES branches(id) ON DELETE CASCADE,
            kind TEXT NOT NULL CHECK (kind IN ('postcode_district', 'commissioner')),
            value TEXT NOT NULL,
            PRIMARY KEY (branch_id, kind, value)
        ) WITHOUT ROWID
        """,
    )


# The partner types every branch should have a warm named contact at (DOMAIN.md: GP practices, OT teams,
# social services first; discharge teams and district nurses close behind). Admins can change the list.
REQUIRED_TYPES = ("GP_PRACTICE", "COMMUNITY_THERAPY", "LA_SOCIAL_CARE", "HOSPITAL_DISCHARGE", "COMMUNITY_NURSING")


@migrations(name="0004_coverage")
def coverage(db: Database) -> None:
    _run(
        db,
        """
        ALTER TABLE organisation_types ADD COLUMN required INTEGER NOT NULL DEFAULT 0 CHECK (required IN (0, 1));
        CREATE INDEX idx_interactions_date ON interactions(occurred_on, branch_id);
        CREATE INDEX idx_contacts_named ON contacts(branch_id, organisation_id, last_touched_on)
            WHERE is_named_contact = 1
        """,
    )
    marks = ", ".join("?" for _ in REQUIRED_TYPES)
    db.execute(f"UPDATE organisation_types SET required = 1 WHERE code IN ({marks})", list(REQUIRED_TYPES))
    db.execute("INSERT INTO settings (key, value) VALUES ('coverage_window_days', '90')")


@migrations(name="0005_coverage_history")
def coverage_history(db: Database) -> None:
    # Coverage as of past dates reads (date, contact) pairs for a window of months: carrying the date and
    # branch on each link lets that be one covering-index range scan instead of a join per interaction.
    _run(
        db,
        """
        ALTER TABLE interaction_contacts ADD COLUMN occurred_on TEXT;
        ALTER TABLE interaction_contacts ADD COLUMN branch_id INTEGER;
        UPDATE interaction_contacts SET (occurred_on, branch_id) = (
            SELECT i.occurred_on, i.branch_id FROM interactions i WHERE i.id = interaction_contacts.interaction_id);
        CREATE INDEX idx_links_date ON interaction_contacts(occurred_on, contact_id);
        CREATE INDEX idx_links_branch_date ON interaction_contacts(branch_id, occurred_on, contact_id);
        DROP INDEX idx_interaction_contacts_contact;
        CREATE INDEX idx_links_contact ON interaction_contacts(contact_id, occurred_on)
        """,
    )


@migrations(name="0006_data_protection")
def data_protection(db: Database) -> None:
    _run(
        db,
        """
        ALTER TABLE contacts ADD COLUMN lawful_basis TEXT NOT NULL DEFAULT 'legitimate interests';
        ALTER TABLE contacts ADD COLUMN privacy_info_sent_on TEXT;
        ALTER TABLE contacts ADD COLUMN do_not_contact INTEGER NOT NULL DEFAULT 0 CHECK (do_not_contact IN (0, 1));
        ALTER TABLE contacts ADD COLUMN erased_at TEXT;
        CREATE TABLE suppressions (
            id INTEGER PRIMARY KEY,
            kind TEXT NOT NULL CHECK (kind IN ('email', 'phone', 'name_at_organisation')),
            digest TEXT NOT NULL,
            created_at TEXT NOT NULL,
            UNIQUE (kind, digest)
        )
        """,
    )


# CQC single assessment framework quality statements that partner feedback evidences (DOMAIN.md). Kept as
# reference data: the framework is being revised, and an administrator can change this list without a release.
CQC_STATEMENTS = [
    ("W6", "Partnerships and communities"),
    ("E3", "How staff, teams and services work together"),
    ("S2", "Safe systems, pathways and transitions"),
    ("R2", "Care provision, integration and continuity"),
    ("R4", "Listening to and involving people"),
]


@migrations(name="0007_testimonials")
def testimonials(db: Database) -> None:
    _run(
        db,
        """
        CREATE TABLE cqc_statements (
            code TEXT PRIMARY KEY,
            label TEXT NOT NULL,
            sort_order INTEGER NOT NULL DEFAULT 100
        );
        CREATE TABLE testimonials (
            id INTEGER PRIMARY KEY,
            branch_id INTEGER NOT NULL REFERENCES branches(id),
            quote TEXT NOT NULL,
            contact_id INTEGER REFERENCES contacts(id),
            giver_name TEXT NOT NULL DEFAULT '',
            giver_role TEXT NOT NULL DEFAULT '',
            organisation_id INTEGER REFERENCES organisations(id),
            organisation_name TEXT NOT NULL DEFAULT '',
            type_code TEXT NOT NULL REFERENCES organisation_types(code),
            received_on TEXT NOT NULL,
            source TEXT NOT NULL CHECK (source IN ('email', 'card', 'letter', 'verbal', 'survey', 'online_review')),
            interaction_id INTEGER REFERENCES interactions(id) ON DELETE SET NULL,
            themes TEXT NOT NULL DEFAULT '',
            evidence_file TEXT,
            evidence_name TEXT,
            evidence_type TEXT,
            consent_scope TEXT NOT NULL DEFAULT 'none'
                CHECK (consent_scope IN ('none', 'internal', 'cqc', 'public')),
            attribution TEXT NOT NULL DEFAULT 'anonymous' CHECK (attribution IN ('named', 'role', 'anonymous')),
            consent_given_on TEXT,
            consent_how TEXT NOT NULL DEFAULT '',
            consent_withdrawn_on TEXT,
            created_at TEXT NOT NULL,
            created_by INTEGER REFERENCES users(id),
            updated_at TEXT NOT NULL,
            updated_by INTEGER REFERENCES users(id),
            version INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX idx_testimonials_branch ON testimonials(branch_id, received_on);
        CREATE INDEX idx_testimonials_contact ON testimonials(contact_id);
        CREATE TABLE testimonial_statements (
            testimonial_id INTEGER NOT NULL REFERENCES testimonials(id) ON DELETE CASCADE,
            statement_code TEXT NOT NULL REFERENCES cqc_statements(code),
            PRIMARY KEY (testimonial_id, statement_code)
        ) WITHOUT ROWID
        """,
    )
    _reference(db, "cqc_statements", CQC_STATEMENTS)
    # Full-text search over the words people search for, kept in step with every insert, edit and delete.
    db.table("testimonials").enable_fts(
        ["quote", "giver_name", "giver_role", "organisation_name", "themes"], create_triggers=True, tokenize="porter"
    )


@migrations(name="0008_retention")
def retention(db: Database) -> None:
    _run(
        db,
        """
        ALTER TABLE contacts ADD COLUMN retention_review_on TEXT;
        ALTER TABLE contacts ADD COLUMN retention_reason TEXT NOT NULL DEFAULT '';
        INSERT INTO settings (key, value) VALUES ('retention_months', '24')
        """,
    )


@migrations(name="0009_audit_branch")
def audit_branch(db: Database) -> None:
    # The branch an entry is about, fixed when it is written: a deleted record's id can be reused by another
    # branch, and an update entry alone does not say where its record was.
    _run(
        db,
        """
        ALTER TABLE audit_log ADD COLUMN branch_id INTEGER;
        UPDATE audit_log SET branch_id = coalesce(
            (SELECT branch_id FROM contacts WHERE audit_log.table_name = 'contacts' AND id = audit_log.row_id),
            (SELECT branch_id FROM interactions WHERE audit_log.table_name = 'interactions' AND id = audit_log.row_id),
            (SELECT branch_id FROM testimonials WHERE audit_log.table_name = 'testimonials' AND id = audit_log.row_id),
            CASE WHEN audit_log.table_name = 'branches' THEN audit_log.row_id END,
            json_extract(audit_log.changes, '$.branch_id'));
        CREATE INDEX idx_audit_branch ON audit_log(branch_id, id)
        """,
    )


@migrations(name="0010_suppression_salt_out_of_audit_log")
def suppression_salt_out_of_audit_log(db: Database) -> None:
    # Erasure hashes are now keyed with a secret kept outside the database (crm.suppressions). The old salt stays
    # in settings only to check entries made with it, but its copy in the audit log (written by settings.put)
    # goes: an audit export or a reader of the log must never get it.
    _run(
        db,
        """
        UPDATE audit_log SET changes = json_set(changes, '$.suppression_salt', '[withheld]')
        WHERE table_name = 'settings' AND json_type(changes, '$.suppression_salt') IS NOT NULL
        """,
    )


@migrations(name="0011_sign_in_throttle")
def sign_in_throttle(db: Database) -> None:
    # Failed sign-ins counted per typed user name, per user name and client address, and per client address
    # (users.py): known and unknown names alike, so the answers do not tell which accounts exist. Rows are
    # forgotten an hour after their last failure (client addresses are personal data).
    _run(
        db,
        """
        CREATE TABLE sign_in_throttle (
            key TEXT PRIMARY KEY,
            failures INTEGER NOT NULL,
            not_before TEXT,
            last_failure_at TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX idx_sign_in_throttle_last_failure ON sign_in_throttle(last_failure_at)
        """,
    )


def _run_statements(db: Database, script: str) -> None:
    # Like _run, for scripts whose triggers hold semicolons: a statement ends where SQLite says it is complete.
    import sqlite3

    statement = ""
    for piece in script.split(";"):
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            if statement.strip(" \n;"):
                db.execute(statement)
            statement = ""
    if statement.strip(" \n;"):
        db.execute(statement)


@migrations(name="0012_search")
def search(db: Database) -> None:
    # The search box (crm/search.py): full-text indexes over contacts, organisations and interactions (testimonials
    # have theirs since 0007), kept in step by triggers. Each index reads its text from a view, so a contact is
    # found by its organisation's name too, and each row's branch is a token ("b17") in a column of its own, so
    # the user's scope is applied inside the index instead of after ranking every match in the provider.
    _run_statements(
        db,
        """
        CREATE VIEW contacts_search AS
            SELECT c.id, c.name, c.job_title, c.email, o.name AS organisation, 'b' || c.branch_id AS branch
            FROM contacts c JOIN organisations o ON o.id = c.organisation_id;
        CREATE VIRTUAL TABLE contacts_fts USING fts5(
            name, job_title, email, organisation, branch,
            content='contacts_search', content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='2 3');
        INSERT INTO contacts_fts (contacts_fts) VALUES ('rebuild');
        CREATE TRIGGER contacts_search_insert AFTER INSERT ON contacts BEGIN
            INSERT INTO contacts_fts (rowid, name, job_title, email, organisation, branch)
            SELECT id, name, job_title, email, organisation, branch FROM contacts_search WHERE id = new.id;
        END;
        CREATE TRIGGER contacts_search_delete AFTER DELETE ON contacts BEGIN
            INSERT INTO contacts_fts (contacts_fts, rowid, name, job_title, email, organisation, branch)
            VALUES ('delete', old.id, old.name, old.job_title, old.email,
                    (SELECT name FROM organisations WHERE id = old.organisation_id), 'b' || old.branch_id);
        END;
        CREATE TRIGGER contacts_search_update AFTER UPDATE OF name, job_title, email, organisation_id, branch_id
            ON contacts BEGIN
            INSERT INTO contacts_fts (contacts_fts, rowid, name, job_title, email, organisation, branch)
            VALUES ('delete', old.id, old.name, old.job_title, old.email,
                    (SELECT name FROM organisations WHERE id = old.organisation_id), 'b' || old.branch_id);
            INSERT INTO contacts_fts (rowid, name, job_title, email, organisation, branch)
            SELECT id, name, job_title, email, organisation, branch FROM contacts_search WHERE id = new.id;
        END;
        CREATE VIRTUAL TABLE organisations_fts USING fts5(
            name, postcode, ods_code, address,
            content='organisations', content_rowid='id', tokenize='unicode61 remove_diacritics 2', prefix='2 3');
        INSERT INTO organisations_fts (organisations_fts) VALUES ('rebuild');
        CREATE TRIGGER organisations_search_insert AFTER INSERT ON organisations BEGIN
            INSERT INTO organisations_fts (rowid, name, postcode, ods_code, address)
            VALUES (new.id, new.name, new.postcode, new.ods_code, new.address);
        END;
        CREATE TRIGGER organisations_search_delete AFTER DELETE ON organisations BEGIN
            INSERT INTO organisations_fts (organisations_fts, rowid, name, postcode, ods_code, address)
            VALUES ('delete', old.id, old.name, old.postcode, old.ods_code, old.address);
        END;
        CREATE TRIGGER organisations_search_update AFTER UPDATE OF name, postcode, ods_code, address
            ON organisations BEGIN
            INSERT INTO organisations_fts (organisations_fts, rowid, name, postcode, ods_code, address)
            VALUES ('delete', old.id, old.name, old.postcode, old.ods_code, old.address);
            INSERT INTO organisations_fts (rowid, name, postcode, ods_code, address)
            VALUES (new.id, new.name, new.postcode, new.ods_code, new.address);
        END;
        CREATE TRIGGER organisations_search_rename AFTER UPDATE OF name ON organisations BEGIN
            INSERT INTO contacts_fts (contacts_fts, rowid, name, job_title, email, organisation, branch)
            SELECT 'delete', id, name, job_title, email, old.name, 'b' || branch_id
            FROM contacts WHERE organisation_id = old.id;
            INSERT INTO contacts_fts (rowid, name, job_title, email, organisation, branch)
            SELECT id, name, job_title, email, organisation, branch FROM contacts_search
            WHERE id IN (SELECT id FROM contacts WHERE organisation_id = new.id);
        END;
        CREATE VIEW interactions_search AS
            SELECT id, summary, notes, follow_up_action, 'b' || branch_id AS branch FROM interactions;
        CREATE VIRTUAL TABLE interactions_fts USING fts5(
            summary, notes, follow_up_action, branch,
            content='interactions_search', content_rowid='id', tokenize='unicode61 remove_diacritics 2',
            prefix='2 3');
        INSERT INTO interactions_fts (interactions_fts) VALUES ('rebuild');
        CREATE TRIGGER interactions_search_insert AFTER INSERT ON interactions BEGIN
            INSERT INTO interactions_fts (rowid, summary, notes, follow_up_action, branch)
            VALUES (new.id, new.summary, new.notes, new.follow_up_action, 'b' || new.branch_id);
        END;
        CREATE TRIGGER interactions_search_delete AFTER DELETE ON interactions BEGIN
            INSERT INTO interactions_fts (interactions_fts, rowid, summary, notes, follow_up_action, branch)
            VALUES ('delete', old.id, old.summary, old.notes, old.follow_up_action, 'b' || old.branch_id);
        END;
        CREATE TRIGGER interactions_search_update AFTER UPDATE OF summary, notes, follow_up_action, branch_id
            ON interactions BEGIN
            INSERT INTO interactions_fts (interactions_fts, rowid, summary, notes, follow_up_action, branch)
            VALUES ('delete', old.id, old.summary, old.notes, old.follow_up_action, 'b' || old.branch_id);
            INSERT INTO interactions_fts (rowid, summary, notes, follow_up_action, branch)
            VALUES (new.id, new.summary, new.notes, new.follow_up_action, 'b' || new.branch_id);
        END
        """,
    )


# Why a branch declined a referral (DOMAIN.md "Referrals"); reference data, so an administrator can extend it.
DECLINE_REASONS = [
    ("NO_CAPACITY", "No capacity"),
    ("OUTSIDE_AREA", "Outside our area"),
    ("NEEDS_BEYOND_SERVICE", "Needs beyond our service"),
    ("CHOSE_OTHER_PROVIDER", "Person chose another provider"),
    ("FUNDING_NOT_AGREED", "Funding not agreed"),
    ("OTHER", "Other"),
]


@migrations(name="0013_referrals")
def referrals(db: Database) -> None:
    # A referral is a request to care for someone; the person's identity stays in the provider's care management
    # system (at most its reference here). Every referral is also a REFERRAL_RECEIVED interaction, the touch
    # that resets the keep-in-touch clock. Referral interactions logged before this step become referrals with
    # outcome 'unknown', received at midday UTC of their date (always the same day in UK local time).
    _run(
        db,
        """
        CREATE TABLE referral_decline_reasons (
            code TEXT PRIMARY KEY CHECK (code GLOB '[A-Z]*' AND code NOT GLOB '*[^A-Z_]*'),
            label TEXT NOT NULL UNIQUE,
            sort_order INTEGER NOT NULL DEFAULT 100
        );
        CREATE TABLE referrals (
            id INTEGER PRIMARY KEY,
            branch_id INTEGER NOT NULL REFERENCES branches(id),
            received_at TEXT NOT NULL,
            contact_id INTEGER REFERENCES contacts(id),
            organisation_id INTEGER REFERENCES organisations(id),
            channel TEXT CHECK (channel IN ('phone', 'email', 'portal', 'e_referral')),
            urgency TEXT CHECK (urgency IN ('routine', 'urgent', 'hospital_discharge')),
            hours_per_week REAL CHECK (hours_per_week IS NULL OR hours_per_week BETWEEN 0 AND 168),
            start_wanted_on TEXT,
            area TEXT NOT NULL DEFAULT '',
            provider_reference TEXT NOT NULL DEFAULT '',
            outcome TEXT NOT NULL DEFAULT 'open'
                CHECK (outcome IN ('open', 'accepted', 'declined', 'withdrawn', 'unknown')),
            decline_reason TEXT REFERENCES referral_decline_reasons(code),
            care_started_on TEXT,
            decided_at TEXT,
            outcome_note TEXT NOT NULL DEFAULT '',
            interaction_id INTEGER REFERENCES interactions(id) ON DELETE SET NULL,
            created_at TEXT NOT NULL,
            created_by INTEGER REFERENCES users(id),
            updated_at TEXT NOT NULL,
            updated_by INTEGER REFERENCES users(id),
            version INTEGER NOT NULL DEFAULT 1,
            CHECK ((outcome = 'declined') = (decline_reason IS NOT NULL)),
            CHECK (outcome = 'accepted' OR care_started_on IS NULL),
            CHECK ((outcome IN ('open', 'unknown')) = (decided_at IS NULL))
        );
        CREATE INDEX idx_referrals_branch ON referrals(branch_id, received_at);
        CREATE INDEX idx_referrals_received ON referrals(received_at, branch_id);
        CREATE INDEX idx_referrals_contact ON referrals(contact_id, received_at);
        CREATE INDEX idx_referrals_organisation ON referrals(organisation_id, received_at);
        CREATE INDEX idx_referrals_interaction ON referrals(interaction_id);
        INSERT INTO referrals (branch_id, received_at, contact_id, organisation_id, outcome, interaction_id,
                               created_at, created_by, updated_at, updated_by)
            SELECT i.branch_id, i.occurred_on || 'T12:00:00Z',
                   (SELECT min(l.contact_id) FROM interaction_contacts l WHERE l.interaction_id = i.id),
                   i.organisation_id, 'unknown', i.id, i.created_at, i.created_by, i.updated_at, i.updated_by
            FROM interactions i WHERE i.kind_code = 'REFERRAL_RECEIVED' ORDER BY i.occurred_on, i.id
        """,
    )
    _reference(db, "referral_decline_reasons", DECLINE_REASONS)


@migrations(name="0014_digest")
def digest(db: Database) -> None:
    # Users gain an address for the weekly digest and a way to opt out of it; each digest sent is recorded
    # (one per user and week, the Monday of the UK week), so a second run in the same week sends nothing twice.
    _run(
        db,
        """
        ALTER TABLE users ADD COLUMN email TEXT;
        ALTER TABLE users ADD COLUMN digest_opt_out INTEGER NOT NULL DEFAULT 0 CHECK (digest_opt_out IN (0, 1));
        CREATE TABLE digest_sends (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            week_of TEXT NOT NULL,
            sent_at TEXT NOT NULL,
            address TEXT NOT NULL,
            message_id TEXT NOT NULL,
            UNIQUE (user_id, week_of)
        )
        """,
    )


@migrations(name="0015_merges")
def merges(db: Database) -> None:
    # A merged duplicate is deleted once everything linked to it has moved to the survivor; its old id keeps
    # resolving to the survivor through this table (old links, bookmarks, audit entries).
    _run(
        db,
        """
        CREATE TABLE merged_records (
            table_name TEXT NOT NULL CHECK (table_name IN ('contacts', 'organisations')),
            old_id INTEGER NOT NULL,
            survivor_id INTEGER NOT NULL,
            merged_at TEXT NOT NULL,
            merged_by INTEGER REFERENCES users(id),
            PRIMARY KEY (table_name, old_id)
        ) WITHOUT ROWID
        """,
    )


@migrations(name="0016_session_handles")
def session_handles(db: Database) -> None:
    # The browser's cookie holds a short-lived handle for its session (crm/handles.py). Kept here rather than in
    # one process's memory, so every worker behind the proxy can exchange it. Only hashes and the token sealed with
    # the handle are stored: the table alone opens no session.
    _run(
        db,
        """
        CREATE TABLE session_handles (
            handle_hash TEXT PRIMARY KEY,
            token_hash TEXT NOT NULL,
            sealed_token TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX idx_session_handles_token ON session_handles(token_hash)
        """,
    )


@migrations(name="0017_coverage_months")
def coverage_months(db: Database) -> None:
    # Coverage as of past month ends (crm/coverage.py), kept per branch and partner type so the Coverage trend and
    # as-of views read rather than recompute. A past month end changes only when the data behind it does: the
    # triggers below forget a branch's month ends from the first one a write can reach (an interaction dated on
    # or before it, a contact's branch, organisation, named status, leaving or creation, an organisation's type;
    # merges and erasures are such writes), and the next read recomputes that branch alone. Logging today's
    # interaction forgets nothing. Counts are stored per window length; labels and required types are joined on
    # read, so changing them needs no recomputation. A change of the coverage window setting clears the lot.
    # The months already computed are in coverage_months_done (a branch with no named contact has no counts).
    # Today's coverage stays live (one aggregate over the named contacts): its index now covers the status too.
    # The trend's interactions per month are counted per branch and month by triggers (exact, never stale).
    # Referrals received per month and partner type read a covering index of interactions by kind (it replaces
    # the kind and date one) instead of every referral interaction's row.
    _run_statements(
        db,
        """
        CREATE TABLE coverage_months (
            window_days INTEGER NOT NULL,
            month_end TEXT NOT NULL,
            branch_id INTEGER NOT NULL,
            type_code TEXT NOT NULL,
            named INTEGER NOT NULL,
            warm INTEGER NOT NULL,
            last_touched TEXT,
            PRIMARY KEY (window_days, month_end, branch_id, type_code)
        ) WITHOUT ROWID;
        CREATE TABLE coverage_months_done (
            branch_id INTEGER NOT NULL,
            month_end TEXT NOT NULL,
            window_days INTEGER NOT NULL,
            PRIMARY KEY (branch_id, month_end, window_days)
        ) WITHOUT ROWID;
        CREATE INDEX idx_contacts_coverage ON contacts(branch_id, organisation_id, status, last_touched_on)
            WHERE is_named_contact = 1;
        CREATE INDEX idx_interactions_kind_organisation
            ON interactions(kind_code, occurred_on, branch_id, organisation_id);
        DROP INDEX idx_interactions_kind;
        CREATE TRIGGER coverage_months_link_insert AFTER INSERT ON interaction_contacts BEGIN
            DELETE FROM coverage_months_done WHERE month_end >= new.occurred_on
                AND branch_id IN (new.branch_id, (SELECT branch_id FROM contacts WHERE id = new.contact_id));
        END;
        CREATE TRIGGER coverage_months_link_delete AFTER DELETE ON interaction_contacts BEGIN
            DELETE FROM coverage_months_done WHERE month_end >= old.occurred_on
                AND branch_id IN (old.branch_id, (SELECT branch_id FROM contacts WHERE id = old.contact_id));
        END;
        CREATE TRIGGER coverage_months_link_update AFTER UPDATE OF occurred_on, branch_id, contact_id
            ON interaction_contacts BEGIN
            DELETE FROM coverage_months_done WHERE month_end >= min(old.occurred_on, new.occurred_on)
                AND (branch_id IN (old.branch_id, new.branch_id)
                     OR branch_id IN (SELECT branch_id FROM contacts WHERE id IN (old.contact_id, new.contact_id)));
        END;
        CREATE TRIGGER coverage_months_contact_insert AFTER INSERT ON contacts WHEN new.is_named_contact = 1 BEGIN
            DELETE FROM coverage_months_done
            WHERE branch_id = new.branch_id AND month_end >= substr(new.created_at, 1, 10);
        END;
        CREATE TRIGGER coverage_months_contact_delete AFTER DELETE ON contacts WHEN old.is_named_contact = 1 BEGIN
            DELETE FROM coverage_months_done
            WHERE branch_id = old.branch_id AND month_end >= substr(old.created_at, 1, 10);
        END;
        CREATE TRIGGER coverage_months_contact_update
            AFTER UPDATE OF branch_id, organisation_id, is_named_contact, left_on, created_at ON contacts
            WHEN old.branch_id IS NOT new.branch_id OR old.organisation_id IS NOT new.organisation_id
                OR old.is_named_contact IS NOT new.is_named_contact OR old.left_on IS NOT new.left_on
                OR old.created_at IS NOT new.created_at
        BEGIN
            DELETE FROM coverage_months_done WHERE branch_id IN (old.branch_id, new.branch_id)
                AND month_end >= substr(min(old.created_at, new.created_at), 1, 10);
        END;
        CREATE TRIGGER coverage_months_organisation_type AFTER UPDATE OF type_code ON organisations
            WHEN old.type_code IS NOT new.type_code BEGIN
            DELETE FROM coverage_months_done
            WHERE branch_id IN (SELECT branch_id FROM contacts WHERE organisation_id = new.id);
        END;
        CREATE TABLE interaction_months (
            branch_id INTEGER NOT NULL,
            month TEXT NOT NULL,
            interactions INTEGER NOT NULL,
            PRIMARY KEY (branch_id, month)
        ) WITHOUT ROWID;
        INSERT INTO interaction_months (branch_id, month, interactions)
            SELECT branch_id, substr(occurred_on, 1, 7), count(*) FROM interactions GROUP BY 1, 2;
        CREATE TRIGGER interaction_months_insert AFTER INSERT ON interactions BEGIN
            INSERT INTO interaction_months (branch_id, month, interactions)
            VALUES (new.branch_id, substr(new.occurred_on, 1, 7), 1)
            ON CONFLICT (branch_id, month) DO UPDATE SET interactions = interactions + 1;
        END;
        CREATE TRIGGER interaction_months_delete AFTER DELETE ON interactions BEGIN
            UPDATE interaction_months SET interactions = interactions - 1
            WHERE branch_id = old.branch_id AND month = substr(old.occurred_on, 1, 7);
        END;
        CREATE TRIGGER interaction_months_update AFTER UPDATE OF branch_id, occurred_on ON interactions
            WHEN old.branch_id IS NOT new.branch_id OR old.occurred_on IS NOT new.occurred_on BEGIN
            UPDATE interaction_months SET interactions = interactions - 1
            WHERE branch_id = old.branch_id AND month = substr(old.occurred_on, 1, 7);
            INSERT INTO interaction_months (branch_id, month, interactions)
            VALUES (new.branch_id, substr(new.occurred_on, 1, 7), 1)
            ON CONFLICT (branch_id, month) DO UPDATE SET interactions = interactions + 1;
        END;
        CREATE TRIGGER coverage_months_window_insert AFTER INSERT ON settings
            WHEN new.key = 'coverage_window_days' BEGIN
            DELETE FROM coverage_months_done;
            DELETE FROM coverage_months;
        END;
        CREATE TRIGGER coverage_months_window_update AFTER UPDATE OF value ON settings
            WHEN new.key = 'coverage_window_days' AND old.value IS NOT new.value BEGIN
            DELETE FROM coverage_months_done;
            DELETE FROM coverage_months;
        END
        """,
    )
    from crm import coverage as coverage_code  # the same computation the app reads it with

    coverage_code.fill_summary(db)


@migrations(name="0018_duplicate_indexes")
def duplicate_indexes(db: Database) -> None:
    # "Possible duplicates" (crm/merge.py) pairs contacts of one branch by email in any letter case, by phone and
    # mobile, and by name among one branch's contacts at one organisation; and hand-made organisations with a
    # directory record at the same postcode. Each is a self-join on one of these.
    _run(
        db,
        """
        CREATE INDEX idx_contacts_branch_email ON contacts(branch_id, lower(email)) WHERE email IS NOT NULL;
        CREATE INDEX idx_contacts_branch_phone ON contacts(branch_id, phone) WHERE phone IS NOT NULL;
        CREATE INDEX idx_contacts_branch_mobile ON contacts(branch_id, mobile) WHERE mobile IS NOT NULL;
        CREATE INDEX idx_contacts_branch_organisation ON contacts(branch_id, organisation_id);
        CREATE INDEX idx_organisations_postcode ON organisations(postcode)
        """,
    )


@migrations(name="0019_referral_response_hours")
def referral_response_hours(db: Database) -> None:
    # Each answered referral's response time (hours from received to decided, to the second, as crm/referrals.py
    # has always counted it), kept with the referral's branch, referrer and receipt by triggers on every write
    # that sets them, whichever code path makes it, so the median reads it instead of computing it for every
    # referral. A table of its own rather than a column: the referral rows stay as they were. The index covers
    # the measures' scan of the referrals (whose rows are wide).
    expression = "round((julianday({0}.decided_at) - julianday({0}.received_at)) * 86400) / 3600.0"
    _run_statements(
        db,
        f"""
        CREATE TABLE referral_responses (
            referral_id INTEGER PRIMARY KEY,
            branch_id INTEGER NOT NULL,
            organisation_id INTEGER,
            received_at TEXT NOT NULL,
            hours REAL NOT NULL
        );
        CREATE INDEX idx_referral_responses_branch
            ON referral_responses(branch_id, received_at, hours, organisation_id);
        INSERT INTO referral_responses (referral_id, branch_id, organisation_id, received_at, hours)
            SELECT id, branch_id, organisation_id, received_at, {expression.format("referrals")} FROM referrals
            WHERE outcome IN ('accepted', 'declined');
        CREATE INDEX idx_referrals_measures
            ON referrals(branch_id, organisation_id, outcome, decline_reason, received_at);
        CREATE TRIGGER referral_responses_insert AFTER INSERT ON referrals
            WHEN new.outcome IN ('accepted', 'declined') BEGIN
            INSERT INTO referral_responses (referral_id, branch_id, organisation_id, received_at, hours)
            VALUES (new.id, new.branch_id, new.organisation_id, new.received_at, {expression.format("new")});
        END;
        CREATE TRIGGER referral_responses_update
            AFTER UPDATE OF outcome, received_at, decided_at, branch_id, organisation_id ON referrals BEGIN
            DELETE FROM referral_responses WHERE referral_id = old.id;
            INSERT INTO referral_responses (referral_id, branch_id, organisation_id, received_at, hours)
            SELECT new.id, new.branch_id, new.organisation_id, new.received_at, {expression.format("new")}
            WHERE new.outcome IN ('accepted', 'declined');
        END;
        CREATE TRIGGER referral_responses_delete AFTER DELETE ON referrals BEGIN
            DELETE FROM referral_responses WHERE referral_id = old.id;
        END
        """,
    )


@migrations(name="0020_referral_received_covering")
def referral_received_covering(db: Database) -> None:
    # The Referrals page's figures for a whole provider (measures, declines per reason, referrals per month) read
    # every referral received between two dates: with the branch, referrer, outcome and reason in the index on
    # the receipt time, that is one range of the index and no read of the wide rows. It replaces the index on
    # (received_at, branch_id), its first two columns, which served the same ranges.
    _run(
        db,
        """
        CREATE INDEX idx_referrals_received_covering
            ON referrals(received_at, branch_id, organisation_id, outcome, decline_reason);
        DROP INDEX idx_referrals_received
        """,
    )


@migrations(name="0021_whole_scope_indexes")
def whole_scope_indexes(db: Database) -> None:
    # Pages an administrator opens on all 250 branches (75,000 contacts) at the cost of a branch manager's. Each
    # index holds all that one query reads (the expression's columns too: this SQLite reads an indexed expression
    # from the table otherwise), in the query's order, so no contact row is read and nothing is sorted:
    # "Possible duplicates" (crm/merge.py) groups the contacts not erased by number, email, and the last three
    # letters of the name (its expression, exactly) at one organisation; the Contacts list reads one page of
    # names in order (by name, then id: the rowid every index ends with); the mailing list counts who may be
    # contacted.
    _run(
        db,
        """
        CREATE INDEX idx_contacts_duplicate_phone ON contacts(branch_id, phone, phone_ext, erased_at)
            WHERE phone IS NOT NULL AND erased_at IS NULL;
        CREATE INDEX idx_contacts_duplicate_mobile ON contacts(branch_id, mobile, erased_at)
            WHERE mobile IS NOT NULL AND erased_at IS NULL;
        CREATE INDEX idx_contacts_duplicate_email ON contacts(branch_id, lower(email), email, erased_at)
            WHERE email IS NOT NULL AND erased_at IS NULL;
        CREATE INDEX idx_contacts_duplicate_name
            ON contacts(branch_id, organisation_id, substr(rtrim(lower(name), ' .,-()/''’'), -3), name, erased_at)
            WHERE erased_at IS NULL;
        CREATE INDEX idx_contacts_name ON contacts(name COLLATE NOCASE, status, branch_id);
        CREATE INDEX idx_contacts_mailable ON contacts(branch_id, status, do_not_contact, erased_at)
            WHERE status = 'active' AND do_not_contact = 0 AND erased_at IS NULL
        """,
    )


# Days before a contact lapses that they count as "due soon": a quarter of their interval, at most this many.
# (crm.contacts reads it from here; the triggers of step 0022 have it written in.)
MAX_DUE_SOON_DAYS = 14


@migrations(name="0022_contact_due_dates")
def contact_due_dates(db: Database) -> None:
    # The day each named contact becomes due soon and the day they lapse, kept on the contact by triggers on every
    # write that moves them (a touch, their own interval, their organisation, its partner type, the type's
    # interval), so This week finds the lapsing ones of 250 branches through indexes instead of working out every
    # contact's dates: one to count them (by due-soon date), one to take the most urgent few in order (longest
    # untouched first) without sorting them all. A contact never touched has neither date (lapsing from the start).
    interval = "coalesce(contacts.keep_in_touch_days, t.keep_in_touch_days)"
    due = f"""
        due_soon_on = (
            SELECT date(contacts.last_touched_on,
                        '+' || ({interval} - min({MAX_DUE_SOON_DAYS}, {interval} / 4)) || ' days')
            FROM organisations o JOIN organisation_types t ON t.code = o.type_code
            WHERE o.id = contacts.organisation_id),
        lapses_on = (
            SELECT date(contacts.last_touched_on, '+' || {interval} || ' days')
            FROM organisations o JOIN organisation_types t ON t.code = o.type_code
            WHERE o.id = contacts.organisation_id)"""
    _run_statements(
        db,
        f"""
        ALTER TABLE contacts ADD COLUMN due_soon_on TEXT;
        ALTER TABLE contacts ADD COLUMN lapses_on TEXT;
        UPDATE contacts SET {due};
        CREATE INDEX idx_contacts_due ON contacts(due_soon_on, branch_id)
            WHERE status = 'active' AND is_named_contact = 1 AND do_not_contact = 0;
        CREATE INDEX idx_contacts_longest_untouched
            ON contacts(last_touched_on, name, lapses_on, due_soon_on, branch_id)
            WHERE status = 'active' AND is_named_contact = 1 AND do_not_contact = 0;
        CREATE TRIGGER contacts_due_insert AFTER INSERT ON contacts BEGIN
            UPDATE contacts SET {due} WHERE id = new.id;
        END;
        CREATE TRIGGER contacts_due_update AFTER UPDATE OF last_touched_on, keep_in_touch_days, organisation_id
            ON contacts BEGIN
            UPDATE contacts SET {due} WHERE id = new.id;
        END;
        CREATE TRIGGER organisations_due_type AFTER UPDATE OF type_code ON organisations
            WHEN old.type_code IS NOT new.type_code BEGIN
            UPDATE contacts SET {due} WHERE organisation_id = new.id;
        END;
        CREATE TRIGGER organisation_types_due AFTER UPDATE OF keep_in_touch_days ON organisation_types BEGIN
            UPDATE contacts SET {due}
            WHERE organisation_id IN (SELECT id FROM organisations WHERE type_code = new.code);
        END
        """,
    )


@migrations(name="0023_retention_review_index")
def retention_review_index(db: Database) -> None:
    # The Retention review page takes the contacts untouched since the cutoff (crm/retention.py): for an
    # administrator that read all 75,000 contacts on every rerun (15 ms) to find the hundred or so due. The index
    # is on the page's test, exactly as written there, and holds every column the query reads (the expression's too:
    # this SQLite reads an indexed expression's columns from the table otherwise), so only the contacts before the
    # cutoff are read, from the index alone.
    _run(
        db,
        """
        CREATE INDEX idx_contacts_review
            ON contacts(coalesce(last_touched_on, substr(created_at, 1, 10)), retention_review_on, branch_id,
                        last_touched_on, name, created_at, erased_at)
            WHERE erased_at IS NULL
        """,
    )


@migrations(name="0024_lapsing_by_branch_index")
def lapsing_by_branch_index(db: Database) -> None:
    # This week counts a regional lead's lapsing contacts and takes those due soon. idx_contacts_due leads with the
    # date, so a region's 25 branches were found among the whole provider's; idx_contacts_branch reads every
    # contact row of the region (7,500). Led by the branch and holding the dates, this one answers both from the
    # index for each branch in scope: the count of a region went from 1.5 ms to 0.25.
    _run(
        db,
        """
        CREATE INDEX idx_contacts_due_by_branch ON contacts(branch_id, due_soon_on, last_touched_on)
            WHERE status = 'active' AND is_named_contact = 1 AND do_not_contact = 0
        """,
    )


@migrations(name="0025_contacts_text_index")
def contacts_text_index(db: Database) -> None:
    # The Contacts list's search finds the typed text anywhere in a name, job title or email (crm.contacts._filters).
    # As LIKE '%text%' that read every contact in scope: 30 to 40 ms of each rerun for an administrator's 75,000.
    # A trigram index answers the same question (any run of three or more characters, letter case ignored) from the
    # index; kept in step with the contacts by triggers, as the search box's indexes are (step 0012_search).
    _run_statements(
        db,
        """
        CREATE VIRTUAL TABLE contacts_text USING fts5(
            name, job_title, email, content='contacts', content_rowid='id', tokenize='trigram');
        INSERT INTO contacts_text (contacts_text) VALUES ('rebuild');
        CREATE TRIGGER contacts_text_insert AFTER INSERT ON contacts BEGIN
            INSERT INTO contacts_text (rowid, name, job_title, email)
            VALUES (new.id, new.name, new.job_title, new.email);
        END;
        CREATE TRIGGER contacts_text_delete AFTER DELETE ON contacts BEGIN
            INSERT INTO contacts_text (contacts_text, rowid, name, job_title, email)
            VALUES ('delete', old.id, old.name, old.job_title, old.email);
        END;
        CREATE TRIGGER contacts_text_update AFTER UPDATE OF name, job_title, email ON contacts BEGIN
            INSERT INTO contacts_text (contacts_text, rowid, name, job_title, email)
            VALUES ('delete', old.id, old.name, old.job_title, old.email);
            INSERT INTO contacts_text (rowid, name, job_title, email)
            VALUES (new.id, new.name, new.job_title, new.email);
        END
        """,
    )


@migrations(name="0026_referrals_by_referrer_index")
def referrals_by_referrer_index(db: Database) -> None:
    # The Referrals page's measures per referring organisation and per partner type count the referrals by
    # referrer, outcome and reason (crm.referrals.measures). The index on the referrer alone gave them in that
    # order but not their outcome or reason, so each of a large provider's 50,000 referral rows was read. This one
    # holds all three (and the branch and receipt time the scope and dates filter on): one pass of the index, in
    # the grouping's order, no row read.
    _run(
        db,
        """
        CREATE INDEX idx_referrals_by_referrer
            ON referrals(organisation_id, outcome, decline_reason, branch_id, received_at)
        """,
    )


def upgrade(db: Database) -> None:
    """Apply every pending migration, all in one write transaction, after keeping a copy of the database.

    Holding the write lock (BEGIN IMMEDIATE) while checking what is pending means two processes opening a
    new database at once cannot both try to create the tables; Migrations.apply() nests its own steps
    inside as savepoints, so a failing step still leaves the database as it was.
    """
    if not migrations.pending(db):
        return
    from crm import backups  # backups reads this module's migration list

    with transaction(db):
        # Checked again under the write lock: another process may have upgraded in the meantime.
        pending_steps = migrations.pending(db)
        if pending_steps and migrations.applied(db):  # a brand-new database has nothing to keep
            path = db.execute("PRAGMA database_list").fetchone()[2]
            if path:
                backups.before_upgrade(Path(path), pending_steps[0].name)
        migrations.apply(db)


def step_names() -> list[str]:
    """Every schema step this version of the app knows, in order."""
    return [m.name for m in migrations._migrations]


def pending(db: Database) -> list[str]:
    """Names of migrations not yet applied to ``db``."""
    return [m.name for m in migrations.pending(db)]
