"""The demo provider: deterministic, fictional (Ofcom drama numbers, .example emails), complete, usable."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm import clock, db, demo, organisations, settings, users
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
    for table in ("regions", "branches", "organisations", "contacts"):
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
