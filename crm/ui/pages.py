"""The app's pages and who may open each: one list that navigation and every page's gate both read."""

from dataclasses import dataclass
from pathlib import Path

from crm.access import ADMIN, BRANCH_MANAGER, REGIONAL_LEAD, ROLES, Actor

EVERYONE = (ADMIN, REGIONAL_LEAD, BRANCH_MANAGER)


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to the project root, as st.Page and AppTest.switch_page take it
    title: str
    icon: str
    roles: tuple[str, ...]

    @property
    def section(self) -> str:
        """The menu group the page is listed under: "Work", "Insight" or "Admin"."""
        return SECTIONS[self.path]

    @property
    def url_path(self) -> str:
        """The address Streamlit gives the page: its file name without .py."""
        return Path(self.path).stem


PAGES = [
    PageSpec("pages/home.py", "This week", ":material/event_upcoming:", EVERYONE),
    PageSpec("pages/contacts.py", "Contacts", ":material/contacts:", EVERYONE),
    PageSpec("pages/interactions.py", "Interactions", ":material/forum:", EVERYONE),
    PageSpec("pages/organisations.py", "Organisations", ":material/domain:", EVERYONE),
    PageSpec("pages/testimonials.py", "Testimonials", ":material/format_quote:", EVERYONE),
    PageSpec("pages/coverage.py", "Coverage", ":material/grid_view:", EVERYONE),
    PageSpec("pages/referrals.py", "Referrals", ":material/assignment_ind:", EVERYONE),
    PageSpec("pages/gp_patch.py", "GP patch", ":material/local_hospital:", EVERYONE),
    PageSpec("pages/import_contacts.py", "Import contacts", ":material/upload:", EVERYONE),
    PageSpec("pages/duplicates.py", "Possible duplicates", ":material/compare_arrows:", EVERYONE),
    PageSpec("pages/retention.py", "Retention review", ":material/history:", EVERYONE),
    PageSpec("pages/audit.py", "Audit log", ":material/policy:", (ADMIN, REGIONAL_LEAD)),
    PageSpec("pages/users.py", "Users", ":material/manage_accounts:", (ADMIN,)),
    PageSpec("pages/branches.py", "Regions and branches", ":material/account_tree:", (ADMIN,)),
    PageSpec("pages/partner_types.py", "Partner types", ":material/category:", (ADMIN,)),
    PageSpec("pages/gp_directory.py", "GP directory import", ":material/upload_file:", (ADMIN,)),
    PageSpec("pages/backups.py", "Backups", ":material/backup:", (ADMIN,)),
    PageSpec("pages/account.py", "My account", ":material/person:", EVERYONE),
]


# The menu's groups, in order, so that no page hides behind a folded menu; every page is in one.
SECTIONS = {
    "pages/home.py": "Work",
    "pages/contacts.py": "Work",
    "pages/interactions.py": "Work",
    "pages/organisations.py": "Work",
    "pages/testimonials.py": "Work",
    "pages/referrals.py": "Work",
    "pages/import_contacts.py": "Work",
    "pages/duplicates.py": "Work",
    "pages/coverage.py": "Insight",
    "pages/gp_patch.py": "Insight",
    "pages/audit.py": "Insight",
    "pages/retention.py": "Admin",
    "pages/users.py": "Admin",
    "pages/branches.py": "Admin",
    "pages/partner_types.py": "Admin",
    "pages/gp_directory.py": "Admin",
    "pages/backups.py": "Admin",
    "pages/account.py": "Admin",
}


def sections_for(actor: Actor) -> dict[str, list[PageSpec]]:
    """The pages this user's role may open, grouped by menu section ("Work", "Insight", "Admin")."""
    grouped: dict[str, list[PageSpec]] = {}
    for page in for_actor(actor):
        grouped.setdefault(page.section, []).append(page)
    return grouped


# Where each role lands after sign-in (the first page of the menu otherwise).
LANDING = {REGIONAL_LEAD: "pages/coverage.py"}


def landing_for(actor: Actor) -> str:
    """The page a user of this role starts on."""
    return LANDING.get(actor.role, for_actor(actor)[0].path)


def for_actor(actor: Actor) -> list[PageSpec]:
    """The pages this user's role may open, in menu order."""
    return [page for page in PAGES if actor.role in page.roles]


def roles_for(page_file: str) -> tuple[str, ...]:
    """Roles allowed on the page at ``page_file`` (a page passes its own ``__file__``).

    :raises KeyError: for a file not listed in PAGES, so an unlisted page can never open to everyone.
    """
    name = f"pages/{Path(page_file).name}"
    return next(page.roles for page in PAGES if page.path == name)


def not_for_actor(actor: Actor) -> list[PageSpec]:
    """The pages this user's role may not open (their addresses still answer, with a refusal)."""
    return [page for page in PAGES if actor.role not in page.roles]


def refusal(page: PageSpec) -> str:
    """What a user whose role may not see ``page`` reads at its address: who the page is for."""
    who = [f"{ROLES[role].lower()}s" for role in page.roles]
    listed = who[0] if len(who) == 1 else f"{', '.join(who[:-1])} and {who[-1]}"
    return f"This page is for {listed}."
