"""Who is acting, and which branches they may see. Every branch-data query filters through here, in SQL."""

from dataclasses import dataclass

from sqlite_utils import Database

from crm.errors import NotFound, PermissionDenied

ADMIN = "admin"
REGIONAL_LEAD = "regional_lead"
BRANCH_MANAGER = "branch_manager"
ROLES = {
    ADMIN: "Administrator",
    REGIONAL_LEAD: "Regional lead",
    BRANCH_MANAGER: "Branch manager",
}


@dataclass(frozen=True)
class Actor:
    """The signed-in user as re-read from the database, carried into every crm call."""

    id: int | None
    username: str
    display_name: str
    role: str
    region_id: int | None = None
    branch_id: int | None = None
    session_version: int = 1

    @property
    def role_label(self) -> str:
        return ROLES[self.role]


# The command line acts with full rights: whoever runs it already holds the database file.
COMMAND_LINE = Actor(id=None, username="command line", display_name="Command line", role=ADMIN)


def branch_clause(actor: Actor, column: str) -> tuple[str, list]:
    """SQL condition limiting ``column`` (a branch id column) to the branches ``actor`` may see."""
    if actor.role == ADMIN:
        return "1 = 1", []
    if actor.role == REGIONAL_LEAD:
        return f"{column} IN (SELECT id FROM branches WHERE region_id = ?)", [actor.region_id]
    if actor.role == BRANCH_MANAGER:
        return f"{column} = ?", [actor.branch_id]
    raise PermissionDenied("Your account has no role; ask an administrator.")


def require_role(actor: Actor, *roles: str) -> None:
    """:raises PermissionDenied: unless ``actor`` has one of ``roles``."""
    if actor.role not in roles:
        raise PermissionDenied("Your role does not allow this.")


def require_branch(db: Database, actor: Actor, branch_id: int) -> dict:
    """The branch row, if ``actor`` may see and change its data.

    :raises NotFound: when the branch does not exist or lies outside the actor's scope (not told apart, so
        a branch manager cannot probe for other branches).
    """
    where, params = branch_clause(actor, "id")
    row = db.execute(
        f"SELECT id, name, region_id FROM branches WHERE id = ? AND {where}", [branch_id, *params]
    ).fetchone()
    if row is None:
        raise NotFound("That branch does not exist or is not one of yours.")
    return {"id": row[0], "name": row[1], "region_id": row[2]}


def scope_of(region_id: int | None = None, branch_id: int | None = None) -> Actor:
    """An administrator's view narrowed to one region or branch (the command line's --region/--branch)."""
    if branch_id is not None:
        return Actor(COMMAND_LINE.id, COMMAND_LINE.username, COMMAND_LINE.display_name, BRANCH_MANAGER, None, branch_id)
    if region_id is not None:
        return Actor(COMMAND_LINE.id, COMMAND_LINE.username, COMMAND_LINE.display_name, REGIONAL_LEAD, region_id, None)
    return COMMAND_LINE
