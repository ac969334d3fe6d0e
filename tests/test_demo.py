"""The demo provider: deterministic, fictional (Ofcom drama numbers, .example emails), complete, usable."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm import clock, db, demo, merge, organisations, referrals, settings, users
from crm.access import BRANCH_MANAGER, REGIONAL_LEAD
from crm.phones import national
from tests.conftest import PASSWORD

FROZEN = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
TIMESTAMPS = {"created_at", "updated_at"}


def _load(path: Path):
    """A new database at ``path`` with the demo provider loaded, the clock stopped at FROZEN."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "now", lambda: FROZEN)
        database = db.connect(path)
        admin = users.create_first_admin(database, "ada", "Ada Admin", PASSWORD)
        counts = demo.load(database, admin, PASSWORD)
    return database, counts


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    database, counts = _load(tmp_path_factory.mktemp("demo") / "crm.db")
    yield database, counts
    database.close()


def _rows(database, table: str) -> list[dict]:
    return [
        {k: v for k, v in row.items() if k not in TIMESTAMPS}
        for row in database.execute_returning_dicts(f"SELECT * FROM [{table}] ORDER BY id")
    ]


def test_load_is_deterministic(loaded, tmp_path):
    """Test that two fresh databases get identical demo data (timestamps aside)."""
    first, first_counts = loaded
    second, second_counts = _load(tmp_path / "again.db")

    assert second_counts == first_counts
    for table in ("regions", "branches", "organisations", "contacts", "referrals"):
        assert _rows(second, table) == _rows(first, table), table
    user_columns = "SELECT username, display_name, role, region_id, branch_id FROM users ORDER BY id"
    assert second.execute(user_columns).fetchall() == first.execute(user_columns).fetchall()
    second.close()


def test_counts(loaded):
    """Test that the demo has 3 regions, 12 branches, several hundred contacts, and reports its counts truly."""
    database, counts = loaded
    in_database = {t: database.table(t).count for t in ("regions", "branches", "organisations", "contacts", "users")}

    assert (in_database["regions"], in_database["branches"], in_database["users"]) == (3, 12, 16)
    assert 300 <= in_database["contacts"] <= 1000
    assert {t: counts[t] for t in ("regions", "branches", "organisations", "contacts")} == {
        t: in_database[t] for t in ("regions", "branches", "organisations", "contacts")
    }
    assert counts["users"] == 15  # the demo accounts; the administrator was there before
    assert [b.name for bs in demo.REGIONS.values() for b in bs] == [
        r[0] for r in database.execute("SELECT name FROM branches ORDER BY id")
    ]


def test_every_partner_type_has_contacts(loaded):
    """Test that every partner type has contacts somewhere, so every list and chart has something to show."""
    database, _ = loaded
    with_contacts = {
        row[0]
        for row in database.execute(
            "SELECT DISTINCT o.type_code FROM contacts c JOIN organisations o ON o.id = c.organisation_id"
        )
    }

    assert with_contacts == {t["code"] for t in organisations.types(database)}


def test_every_branch_has_contacts_and_some_left(loaded):
    """Test that each branch has active contacts, and some contacts are marked as left (history to show)."""
    database, _ = loaded
    per_branch = database.execute(
        "SELECT b.name, count(c.id) FROM branches b LEFT JOIN contacts c ON c.branch_id = b.id AND c.status = 'active' "
        "GROUP BY b.id ORDER BY b.id"
    ).fetchall()

    assert all(count > 0 for _, count in per_branch)
    assert database.execute("SELECT count(*) FROM contacts WHERE status = 'left'").fetchone()[0] > 0


def test_phone_numbers_are_drama_numbers(loaded):
    """Test that every demo phone number is in an Ofcom drama range of its branch's area, never a real line."""
    database, _ = loaded
    area_of = {b.name: b.area_code for bs in demo.REGIONS.values() for b in bs}
    drama_ranges = tuple(sorted(set(area_of.values())))

    contacts = database.execute_returning_dicts(
        "SELECT c.name, b.name AS branch, c.phone, c.phone_ext, c.mobile FROM contacts c "
        "JOIN branches b ON b.id = c.branch_id"
    )
    assert all(c["phone"] for c in contacts)
    wrong = [c for c in contacts if not national(c["phone"], c["phone_ext"]).startswith(area_of[c["branch"]])]
    wrong += [c for c in contacts if c["mobile"] and not national(c["mobile"]).startswith(drama_ranges)]
    assert wrong == []

    organisation_phones = [r[0] for r in database.execute("SELECT phone FROM organisations WHERE phone IS NOT NULL")]
    assert organisation_phones
    assert [p for p in organisation_phones if not national(p).startswith(drama_ranges)] == []


def test_emails_and_websites_are_reserved_domains(loaded):
    """Test that every demo email address and website uses the reserved .example domain."""
    database, _ = loaded
    emails = [r[0] for r in database.execute("SELECT email FROM contacts WHERE email IS NOT NULL")]
    websites = [r[0] for r in database.execute("SELECT website FROM organisations WHERE website != ''")]

    assert emails and websites
    assert [e for e in emails if not e.endswith(".example")] == []
    assert [w for w in websites if not w.endswith(".example")] == []


def test_settings(loaded):
    """Test that the demo names its provider and marks itself as loaded."""
    database, _ = loaded

    assert (settings.get(database, "provider_name"), settings.get(database, "demo_loaded")) == (demo.PROVIDER, "1")


def test_demo_accounts_listed(loaded):
    """Test that the sign-in page's list of demo accounts is exactly the demo users, with role and place."""
    database, _ = loaded
    listed = users.list_users(database, users.get(database, 1))
    by_name = {u["username"]: u for u in listed}

    accounts = demo.demo_accounts()
    assert len(accounts) == 15
    assert sorted(name for name, _, _ in accounts) == sorted(by_name.keys() - {"ada"})
    for name, role_label, where in accounts:
        user = by_name[name]
        if role_label == "Regional lead":
            assert (user["role"], user["region"]) == (REGIONAL_LEAD, where)
        else:
            assert (role_label, user["role"], user["branch"]) == ("Branch manager", BRANCH_MANAGER, where)


def test_every_demo_account_signs_in(loaded):
    """Test that every demo account (and the administrator) signs in with the password given at set-up."""
    database, _ = loaded
    names = ["ada", *(name for name, _, _ in demo.demo_accounts())]

    assert [users.sign_in(database, name, PASSWORD).username for name in names] == names


def test_referrals_have_realistic_outcomes_and_come_more_from_warm_relationships(loaded):
    """Test that the demo's year of referrals each have their "Referral received" interaction, a mix of every
    outcome and decline reason, answers no earlier than receipt, discharge teams answered fastest, and more
    referrals per warm referring contact than per lapsed one."""
    database, counts = loaded
    admin = users.get(database, 1)
    rows = referrals.search(database, admin, limit=100_000)

    assert counts["referrals"] == len(rows) >= 12 * 20
    orphans = database.execute(
        "SELECT count(*) FROM referrals r LEFT JOIN interactions i ON i.id = r.interaction_id "
        "WHERE i.kind_code IS NOT 'REFERRAL_RECEIVED'"
    ).fetchone()[0]
    assert orphans == 0
    outcomes = {r["outcome"] for r in rows}
    assert outcomes == {"open", "accepted", "declined", "withdrawn"}
    assert {r["decline_reason"] for r in rows if r["outcome"] == "declined"} == {
        code for code, _ in demo.DECLINE_WEIGHTS.items()
    }
    assert all(r["decided_at"] >= r["received_at"] for r in rows if r["decided_at"])
    assert all(r["received_at"] <= clock.stamp(FROZEN) for r in rows)
    by_type = {r["partner_type"]: r for r in referrals.measures(database, admin, by="partner_type")}
    discharge = by_type["Hospital discharge"]["median_response_hours"]
    assert discharge < min(r["median_response_hours"] for t, r in by_type.items() if t != "Hospital discharge")
    answered = sum(r["outcome"] in ("accepted", "declined") for r in rows)
    assert 0.5 <= sum(r["outcome"] == "accepted" for r in rows) / answered <= 0.75
    per_contact = database.execute(
        """
        SELECT c.last_touched_on >= date(?, '-90 days') AS warm, count(r.id) * 1.0 / count(DISTINCT c.id)
        FROM contacts c JOIN organisations o ON o.id = c.organisation_id
        LEFT JOIN referrals r ON r.contact_id = c.id
        WHERE o.type_code IN ('GP_PRACTICE', 'LA_SOCIAL_CARE', 'HOSPITAL_DISCHARGE', 'COMMUNITY_THERAPY',
                              'COMMUNITY_NURSING', 'ICB') AND c.last_touched_on IS NOT NULL
        GROUP BY 1 ORDER BY 1
        """,
        [FROZEN.date().isoformat()],
    ).fetchall()
    lapsed, warm = per_contact[0][1], per_contact[1][1]
    assert warm > 1.5 * lapsed


def test_the_demo_has_possible_duplicates(loaded):
    """Test that the demo holds its two people entered twice (so "Possible duplicates" is not empty), each pair
    within one branch, found for the reasons they were made with, and no other pair."""
    database, _ = loaded
    admin = users.get(database, 1)

    found = merge.duplicate_contacts(database, admin)

    assert [(p["branch"], p["reasons"]) for p in found] == [
        ("Leeds North", ["same email", "same phone number", "same name at the same organisation"]),
        ("Manchester Central", ["same phone number", "similar name at the same organisation"]),
    ]
    for pair in found:
        first, second = pair["contacts"]
        assert (first["branch_id"], first["organisation_id"]) == (second["branch_id"], second["organisation_id"])
        assert second["last_touched_on"] is not None  # an email was logged to the second record
