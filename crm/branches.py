"""Regions and branches: the provider's own structure, managed by administrators."""

from sqlite_utils import Database

from crm import audit, clock, fields
from crm.access import ADMIN, Actor, branch_clause, require_role
from crm.db import insert, transaction
from crm.errors import AlreadyExists, NotFound


def add_region(db: Database, actor: Actor, name: str) -> int:
    """Create a region; :raises AlreadyExists: when the name is taken."""
    require_role(actor, ADMIN)
    name = fields.text(name, "Region name", required=True, max_length=100)
    with transaction(db):
        if db.execute("SELECT 1 FROM regions WHERE name = ?", [name]).fetchone():
            raise AlreadyExists(f"A region called “{name}” already exists.")
        values = {"name": name, "created_at": clock.stamp()}
        region_id = insert(db, "regions", values)
        audit.record(db, actor, "create", "regions", region_id, values)
    return region_id


def add_branch(db: Database, actor: Actor, name: str, region_id: int) -> int:
    """Create a branch in a region; :raises AlreadyExists: when the name is taken."""
    require_role(actor, ADMIN)
    name = fields.text(name, "Branch name", required=True, max_length=100)
    with transaction(db):
        if not db.execute("SELECT 1 FROM regions WHERE id = ?", [region_id]).fetchone():
            raise NotFound("That region does not exist.")
        if db.execute("SELECT 1 FROM branches WHERE name = ?", [name]).fetchone():
            raise AlreadyExists(f"A branch called “{name}” already exists.")
        values = {"name": name, "region_id": region_id, "created_at": clock.stamp()}
        branch_id = insert(db, "branches", values)
        audit.record(db, actor, "create", "branches", branch_id, values)
    return branch_id


def regions(db: Database, actor: Actor) -> list[dict]:
    """Regions the actor may see: all for an administrator, otherwise those holding their branches."""
    where, params = branch_clause(actor, "id")
    return db.execute_returning_dicts(
        f"""
        SELECT r.id, r.name, (SELECT count(*) FROM branches b WHERE b.region_id = r.id) AS branches
        FROM regions r
        WHERE r.id IN (SELECT region_id FROM branches WHERE {where}) OR ?
        ORDER BY r.name COLLATE NOCASE
        """,
        [*params, actor.role == ADMIN],
    )


def branches(db: Database, actor: Actor) -> list[dict]:
    """Branches the actor may see, with their region and number of active contacts (for the Regions and branches
    page; a branch picker takes ``branch_choices``, which does not count them)."""
    where, params = branch_clause(actor, "b.id")
    return db.execute_returning_dicts(
        f"""
        SELECT b.id, b.name, b.region_id, r.name AS region,
               (SELECT count(*) FROM contacts c WHERE c.branch_id = b.id AND c.status = 'active') AS contacts
        FROM branches b JOIN regions r ON r.id = b.region_id
        WHERE {where}
        ORDER BY r.name COLLATE NOCASE, b.name COLLATE NOCASE
        """,
        params,
    )


def branch_choices(db: Database, actor: Actor) -> list[dict]:
    """Branches the actor may see, as ``branches`` lists them but without counting their contacts: what a branch
    picker needs (an administrator's count reads all 75,000 contacts on every rerun)."""
    where, params = branch_clause(actor, "b.id")
    return db.execute_returning_dicts(
        f"""
        SELECT b.id, b.name, b.region_id, r.name AS region
        FROM branches b JOIN regions r ON r.id = b.region_id
        WHERE {where}
        ORDER BY r.name COLLATE NOCASE, b.name COLLATE NOCASE
        """,
        params,
    )


def region_id_by_name(db: Database, name: str) -> int:
    """:raises NotFound: when no region has that name (case-insensitive)."""
    row = db.execute("SELECT id FROM regions WHERE name = ?", [name.strip()]).fetchone()
    if row is None:
        raise NotFound(f"No region called “{name.strip()}”.")
    return int(row[0])


def branch_id_by_name(db: Database, name: str) -> int:
    """:raises NotFound: when no branch has that name (case-insensitive)."""
    row = db.execute("SELECT id FROM branches WHERE name = ?", [name.strip()]).fetchone()
    if row is None:
        raise NotFound(f"No branch called “{name.strip()}”.")
    return int(row[0])


def scope_label(db: Database, actor: Actor) -> str:
    """Where the actor's view reaches, in words: "All branches", "North West region", "Leeds branch"."""
    if actor.branch_id is not None:
        row = db.execute("SELECT name FROM branches WHERE id = ?", [actor.branch_id]).fetchone()
        return f"{row[0]} branch"
    if actor.region_id is not None:
        row = db.execute("SELECT name FROM regions WHERE id = ?", [actor.region_id]).fetchone()
        return f"{row[0]} region"
    return "All branches"
