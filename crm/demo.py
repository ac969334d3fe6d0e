"""Deterministic demo data: a fictional provider, its regions, branches, partners and named contacts.

Every phone number comes from Ofcom's ranges reserved for drama (e.g. 0113 496 0xxx), every email address
uses the reserved ``.example`` domain, and every person is invented. The same seed always gives the same data,
so tests can rely on it.
"""

import random
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlite_utils import Database

from crm import (
    branches,
    clock,
    contacts,
    directory,
    interactions,
    organisations,
    referrals,
    settings,
    testimonials,
    users,
)
from crm.access import BRANCH_MANAGER, REGIONAL_LEAD, Actor
from crm.db import transaction

PROVIDER = "Brightwater Homecare"
SEED = 42


@dataclass(frozen=True)
class DemoBranch:
    name: str
    place: str  # town used in partner names
    area_code: str  # Ofcom drama range prefix; the last three digits vary
    postcode_district: str


REGION_LEADS = {
    "North West": "lead.northwest",
    "Yorkshire and North East": "lead.yorkshire",
    "Midlands and South": "lead.south",
}
REGIONS: dict[str, list[DemoBranch]] = {
    "North West": [
        DemoBranch("Manchester Central", "Manchester", "0161 496 0", "M1"),
        DemoBranch("Stockport", "Stockport", "0161 496 0", "SK1"),
        DemoBranch("Liverpool North", "Liverpool", "0151 496 0", "L4"),
        DemoBranch("Wirral", "Wirral", "0151 496 0", "CH41"),
    ],
    "Yorkshire and North East": [
        DemoBranch("Leeds North", "Leeds", "0113 496 0", "LS6"),
        DemoBranch("Leeds South", "Leeds", "0113 496 0", "LS11"),
        DemoBranch("Sheffield", "Sheffield", "0114 496 0", "S1"),
        DemoBranch("Newcastle", "Newcastle", "0191 498 0", "NE1"),
    ],
    "Midlands and South": [
        DemoBranch("Birmingham East", "Birmingham", "0121 496 0", "B8"),
        DemoBranch("Bristol", "Bristol", "0117 496 0", "BS1"),
        DemoBranch("Reading", "Reading", "0118 496 0", "RG1"),
        DemoBranch("Camden", "Camden", "020 7946 0", "NW1"),
    ],
}

FIRST_NAMES = (
    "Aisha Amelia Anita Ben Bridget Callum Chloe Darren Deepa Eleanor Fatima Gareth Grace Hannah Imran Jack "
    "Jasmine Karen Kwame Leanne Liam Marcus Megan Mohammed Nadia Niamh Oliver Priya Rachel Rhys Ruth Sam "
    "Sanjay Sarah Sian Tom Uchenna Victoria Wei Zara"
).split()
LAST_NAMES = (
    "Adeyemi Ahmed Bailey Brennan Campbell Chen Clarke Davies Evans Fletcher Green Gupta Hall Hughes Iqbal "
    "Jones Kaur Kelly Khan Lewis Mensah Morgan Murphy Nowak Okafor O'Brien Patel Price Roberts Shaw Singh "
    "Taylor Thompson Walker Watson Williams Wright Young"
).split()

# Per partner type: how many organisations a branch has, how to name them, and the roles of people there.
PARTNERS: dict[str, tuple[int, list[str], list[str]]] = {
    "GP_PRACTICE": (
        6,
        [
            "{p} Road Surgery",
            "{p} Medical Centre",
            "Parkside Practice {p}",
            "The {p} Health Centre",
            "Riverside Surgery {p}",
            "Northgate Medical Practice {p}",
            "Oakwood Surgery {p}",
        ],
        ["Practice Manager", "Care Co-ordinator", "GP Partner", "Social Prescriber", "Reception Manager"],
    ),
    "PCN": (1, ["{p} Central PCN"], ["PCN Clinical Director", "PCN Care Co-ordinator"]),
    "COMMUNITY_THERAPY": (
        2,
        ["{p} Community Occupational Therapy Team", "{p} Reablement Service"],
        ["Community Occupational Therapist", "Reablement Lead", "Physiotherapist"],
    ),
    "COMMUNITY_NURSING": (1, ["{p} District Nursing Team"], ["District Nurse Lead", "Community Matron"]),
    "LA_SOCIAL_CARE": (
        3,
        [
            "{p} Council Locality Social Work Team",
            "{p} Council Hospital Social Work Team",
            "{p} Council Brokerage Team",
        ],
        ["Social Worker", "Senior Practitioner", "Brokerage Officer", "Team Manager"],
    ),
    "HOSPITAL_DISCHARGE": (
        1,
        ["{p} General Hospital Transfer of Care Hub"],
        ["Discharge Co-ordinator", "Ward Manager", "Transfer of Care Lead"],
    ),
    "MENTAL_HEALTH": (1, ["{p} Community Mental Health Team"], ["Community Psychiatric Nurse", "Team Leader"]),
    "ICB": (1, ["{p} Continuing Healthcare Team"], ["CHC Nurse Assessor", "Commissioning Manager"]),
    "HOSPICE": (1, ["St Clare's Hospice {p}"], ["Hospice at Home Lead", "Family Support Worker"]),
    "PHARMACY": (1, ["{p} High Street Pharmacy"], ["Pharmacist", "Pharmacy Manager"]),
    "HOUSING": (1, ["{p} Extra Care Housing"], ["Scheme Manager", "Housing Officer"]),
    "VOLUNTARY_COMMUNITY": (
        2,
        ["Age UK {p}", "{p} Carers' Centre"],
        ["Volunteer Co-ordinator", "Information and Advice Officer", "Carers Support Worker"],
    ),
    "OTHER": (1, ["{p} Fire and Rescue Safe and Well"], ["Safe and Well Officer"]),
}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def demo_accounts() -> list[tuple[str, str, str]]:
    """(user name, role label, where) of the demo accounts, for the sign-in page."""
    accounts = []
    for region, demo_branches in REGIONS.items():
        accounts.append((REGION_LEADS[region], "Regional lead", region))
        accounts += [(f"manager.{_slug(b.name)}", "Branch manager", b.name) for b in demo_branches]
    return accounts


def load(db: Database, admin: Actor, password: str) -> dict[str, int]:
    """Load the demo provider in one transaction; demo accounts use ``password``. Returns row counts."""
    rng = random.Random(SEED)
    counts = {
        "regions": 0,
        "branches": 0,
        "organisations": 0,
        "contacts": 0,
        "interactions": 0,
        "testimonials": 0,
        "referrals": 0,
        "users": 0,
    }
    # Referrals draw on their own generator, so adding them left every earlier demo row as it was.
    referral_rng = random.Random(SEED + 1)
    today = clock.now().date()
    with transaction(db):
        settings.put(db, admin, "provider_name", PROVIDER)
        for region, demo_branches in REGIONS.items():
            region_id = branches.add_region(db, admin, region)
            counts["regions"] += 1
            users.add_user(db, admin, REGION_LEADS[region], _person(rng), REGIONAL_LEAD, password, region_id=region_id)
            counts["users"] += 1
            for demo_branch in demo_branches:
                branch_id = branches.add_branch(db, admin, demo_branch.name, region_id)
                counts["branches"] += 1
                users.add_user(
                    db,
                    admin,
                    f"manager.{_slug(demo_branch.name)}",
                    _person(rng),
                    BRANCH_MANAGER,
                    password,
                    branch_id=branch_id,
                )
                counts["users"] += 1
                orgs, people = _load_branch(db, admin, rng, demo_branch, branch_id)
                directory.set_patch(db, admin, branch_id, demo_branch.postcode_district, "")
                counts["organisations"] += orgs
                counts["interactions"] += _load_interactions(db, admin, rng, branch_id, people, today)
                _backdate_contacts(db, branch_id)
                counts["testimonials"] += _load_testimonials(db, admin, rng, branch_id, people, today)
                counts["referrals"] += _load_referrals(db, admin, referral_rng, branch_id, demo_branch, people)
        counts["interactions"] += _load_duplicates(db, admin, today)
        counts["contacts"] = db.table("contacts").count
        settings.put(db, admin, "demo_loaded", "1")
    return counts


# People entered twice, as happens in every contact list, so "Possible duplicates" has something to show: in Leeds
# North a contact added again from a newer email signature (same name and number, the email in another letter
# case, a newer job title), in Manchester Central an initial and surname typed with the same phone number. Added
# after every other demo row, so those stay as they were.
DUPLICATES = (("Leeds North", "again"), ("Manchester Central", "initial"))


def _load_duplicates(db: Database, admin: Actor, today: date) -> int:
    """A second record of a named contact (at a GP practice if the branch has one) in each of DUPLICATES'
    branches, each with an email logged to it; returns the interactions logged."""
    logged = 0
    for branch_name, how in DUPLICATES:
        (contact_id,) = db.execute(
            """SELECT c.id FROM contacts c JOIN branches b ON b.id = c.branch_id
               JOIN organisations o ON o.id = c.organisation_id
               WHERE b.name = ? AND c.status = 'active' AND c.is_named_contact = 1
               ORDER BY o.type_code != 'GP_PRACTICE', c.id LIMIT 1""",
            [branch_name],
        ).fetchone()
        original = contacts.get(db, admin, contact_id)
        first, last = original["name"].split(" ", 1)
        values = {"organisation_id": original["organisation_id"], "branch_id": original["branch_id"]}
        if how == "again":
            values |= {
                "name": original["name"],
                "job_title": f"Senior {original['job_title']}",  # promoted since; the new signature says so
                "email": original["email"][0].upper() + original["email"][1:],
                "phone": original["phone_display"],
            }
        else:
            values |= {
                "name": f"{first[0]}. {last}",
                "job_title": original["job_title"],
                "phone": original["phone_display"],
            }
        duplicate = contacts.add(db, admin, values, allow_duplicate=True)
        interactions.log(
            db,
            admin,
            {
                "branch_id": original["branch_id"],
                "occurred_on": today - timedelta(days=12),
                "kind_code": "EMAIL",
                "summary": f"Emailed {first} the updated service leaflet",
                "contact_ids": [duplicate],
            },
            confirmed=True,
            today=today,
        )
        logged += 1
    return logged


STREETS = ["High Street", "Station Road", "Church Lane", "Park Road", "Mill Street"]
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"


def _postcode(rng: random.Random, district: str) -> str:
    return f"{district} {rng.randint(1, 9)}{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}"


def _extension(rng: random.Random) -> str:
    # One number in five goes through a switchboard, as many GP practice and council lines do.
    return f" ext. {rng.randint(200, 499)}" if rng.random() < 0.2 else ""


def _person(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _load_branch(
    db: Database, admin: Actor, rng: random.Random, branch: DemoBranch, branch_id: int
) -> tuple[int, list[tuple[int, str, str]]]:
    """Organisations and contacts of one branch: (new organisations, [(id, name, type) of active contacts])."""
    new_orgs = 0
    people: list[tuple[int, str, str]] = []
    numbers = iter(rng.sample(range(1000), 1000))
    # Some branches have deliberately thin coverage, so the gaps show in lists and charts.
    skipped_types = set(rng.sample(sorted(PARTNERS), rng.choice([0, 1, 2, 3])))
    for type_code, (how_many, name_patterns, roles) in PARTNERS.items():
        for pattern in name_patterns[:how_many]:
            name = pattern.format(p=branch.place)
            existing = organisations.search(db, name, type_code, limit=1)
            if existing and existing[0]["name"] == name:
                org_id = existing[0]["id"]
            else:
                org_id = organisations.add(
                    db,
                    admin,
                    {
                        "name": name,
                        "type_code": type_code,
                        "address": f"{rng.randint(1, 240)} {rng.choice(STREETS)}, {branch.place}",
                        "postcode": _postcode(rng, branch.postcode_district),
                        "phone": f"{branch.area_code}{next(numbers):03d}",
                        "website": f"https://{_slug(name)[:30]}.example",
                    },
                )
                new_orgs += 1
            if type_code in skipped_types:
                continue
            for _ in range(rng.choice([1, 1, 2, 2, 3])):
                first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
                values = {
                    "name": f"{first} {last}",
                    "job_title": rng.choice(roles),
                    "organisation_id": org_id,
                    "branch_id": branch_id,
                    "phone": f"{branch.area_code}{next(numbers):03d}" + _extension(rng),
                    "email": f"{_slug(first)}.{_slug(last)}@{_slug(name)[:20]}.example",
                    "notes": "" if rng.random() < 0.7 else "Prefers email. Best reached before 10am.",
                    "is_named_contact": rng.random() < 0.85,
                }
                contact_id = contacts.add(db, admin, values, allow_duplicate=True)
                if rng.random() < 0.06:
                    contacts.mark_left(db, admin, contact_id, expected_version=1)
                else:
                    people.append((contact_id, values["name"], type_code))
    return new_orgs, people


# (kind, weight, summaries); {name} is the contact's first name.
KINDS = [
    (
        "PHONE_CALL",
        34,
        [
            "Catch-up call with {name}",
            "Called {name} about a new package of care",
            "Discussed capacity for new referrals with {name}",
        ],
    ),
    ("EMAIL", 22, ["Sent {name} our current availability", "Emailed {name} the updated service leaflet"]),
    ("VISIT", 10, ["Dropped in to see {name} and left leaflets", "Visited {name} to introduce the new co-ordinator"]),
    ("MEETING", 9, ["Met {name} to review joint working", "Quarterly review meeting with {name}"]),
    ("MDT_MEETING", 5, ["Multidisciplinary meeting with {name} about a complex discharge"]),
    ("EVENT", 3, ["Saw {name} at the locality networking event"]),
    (
        "REFERRAL_RECEIVED",
        12,
        [
            "Referral received from {name} for a new package of care",
            "{name} referred a client needing reablement support",
        ],
    ),
    ("FEEDBACK_RECEIVED", 4, ["{name} sent thanks for a smooth hospital discharge"]),
    ("COMPLAINT_RECEIVED", 1, ["{name} raised a concern about late calls"]),
]
# Partners that send referrals; others rarely do.
REFERRERS = {"GP_PRACTICE", "LA_SOCIAL_CARE", "HOSPITAL_DISCHARGE", "COMMUNITY_THERAPY", "COMMUNITY_NURSING", "ICB"}
FOLLOW_UPS = ["Send availability update", "Arrange a visit", "Share the new leaflet", "Confirm start date"]


QUOTES = [
    "The carers have made a real difference to people's independence, and communication with us has been excellent.",
    "Thank you for picking up a complex package at such short notice and keeping us informed every step of the way.",
    "Your team followed the moving and handling plan carefully; the reablement goals were met two weeks early.",
    "Thanks to your quick start, a patient was able to go home the same day instead of waiting over the weekend.",
    "We always know who to call at the branch, and we always get a call back the same day.",
    "The co-ordinator joined our multidisciplinary meeting and made sure everyone left with a clear plan.",
    "Families tell us the carers are kind, punctual and treat people with dignity.",
    "Your early warning about changes in someone's health meant we could act before a crisis.",
    "A pleasure to work with: reliable, flexible and genuinely person-centred.",
    "The team went above and beyond over the holidays when other providers could not help.",
]
THEMES = [
    "communication",
    "responsiveness",
    "dignity",
    "reablement",
    "hospital discharge",
    "reliability",
    "joint working",
    "end of life care",
]
# (consent scope, attribution, withdrawn) with weights: most partners agree to be quoted, some not publicly.
CONSENTS = [
    (("public", "named", False), 25),
    (("public", "role", False), 20),
    (("cqc", "role", False), 20),
    (("cqc", "anonymous", False), 10),
    (("internal", "named", False), 10),
    (("none", "anonymous", False), 10),
    (("public", "role", True), 5),
]


def _load_testimonials(
    db: Database, admin: Actor, rng: random.Random, branch_id: int, people: list[tuple[int, str, str]], today: date
) -> int:
    """About a dozen testimonials per branch, from its contacts, with a realistic mix of consent."""
    codes = [row[0] for row in db.execute("SELECT code FROM cqc_statements ORDER BY sort_order")]
    count = 0
    for contact_id, _, _ in rng.sample(people, min(len(people), rng.randint(10, 15))):
        (scope, attribution, withdrawn), _ = rng.choices(CONSENTS, weights=[w for _, w in CONSENTS])[0]
        received = today - timedelta(days=rng.randint(5, 360))
        testimonial_id = testimonials.add(
            db,
            admin,
            {
                "branch_id": branch_id,
                "quote": rng.choice(QUOTES),
                "contact_id": contact_id,
                "received_on": received,
                "source": rng.choice(list(testimonials.SOURCES)),
                "themes": ", ".join(rng.sample(THEMES, rng.randint(1, 3))),
                "statements": rng.sample(codes, rng.randint(1, 2)),
                "consent_scope": scope,
                "attribution": attribution,
                "consent_given_on": received if scope != "none" else None,
                "consent_how": "Replied to our email asking permission" if scope != "none" else "",
            },
        )
        if withdrawn:
            testimonials.withdraw_consent(db, admin, testimonial_id, on=today)
        count += 1
    return count


def _backdate_contacts(db: Database, branch_id: int) -> None:
    """Date each demo contact from a month before their first interaction, as if the branch had used the app
    all year; otherwise coverage in past months would show nobody."""
    db.execute(
        """
        UPDATE contacts SET created_at = strftime('%Y-%m-%dT09:00:00Z', coalesce(
            (SELECT min(occurred_on) FROM interaction_contacts WHERE contact_id = contacts.id),
            date(substr(created_at, 1, 10))), '-30 days')
        WHERE branch_id = ?
        """,
        [branch_id],
    )


def _load_interactions(
    db: Database, admin: Actor, rng: random.Random, branch_id: int, people: list[tuple[int, str, str]], today: date
) -> int:
    """A year of interactions for a branch: most relationships warm, some lapsed, a few never contacted."""
    # Each branch has its own habits, so some branches look healthy and others are slipping.
    lapse_rate = rng.choice([0.05, 0.15, 0.35])
    logged = 0
    for contact_id, name, type_code in people:
        roll = rng.random()
        if roll < 0.05:
            continue  # never contacted
        lapsed = roll < 0.05 + lapse_rate
        latest = rng.randint(100, 300) if lapsed else rng.randint(0, 75)
        days_ago = sorted({latest, *(rng.randint(latest, 364) for _ in range(rng.randint(2, 14)))})
        for ago in days_ago:
            kinds = [k for k in KINDS if k[0] != "REFERRAL_RECEIVED" or type_code in REFERRERS]
            kind, _, summaries = rng.choices(kinds, weights=[k[1] for k in kinds])[0]
            occurred = today - timedelta(days=ago)
            follow_up = occurred + timedelta(days=rng.randint(3, 21)) if rng.random() < 0.15 else None
            values = {
                "branch_id": branch_id,
                "occurred_on": occurred,
                "kind_code": kind,
                "summary": rng.choice(summaries).format(name=name.split()[0]),
                "contact_ids": [contact_id],
                "follow_up_on": follow_up,
                "follow_up_action": rng.choice(FOLLOW_UPS) if follow_up else "",
            }
            interaction_id = interactions.log(db, admin, values, confirmed=True, today=today)
            if follow_up and follow_up < today and rng.random() < 0.93:
                interactions.complete_follow_up(db, admin, interaction_id, done_on=follow_up)
            logged += 1
    return logged


# Referral channels by the referrer's partner type, and decline reasons with how often each is given.
CHANNELS_BY_TYPE = {
    "HOSPITAL_DISCHARGE": ["e_referral", "e_referral", "phone"],
    "LA_SOCIAL_CARE": ["portal", "portal", "email", "phone"],
}
DECLINE_WEIGHTS = {
    "NO_CAPACITY": 40,
    "OUTSIDE_AREA": 15,
    "NEEDS_BEYOND_SERVICE": 15,
    "CHOSE_OTHER_PROVIDER": 12,
    "FUNDING_NOT_AGREED": 10,
    "OTHER": 8,
}


def _load_referrals(
    db: Database,
    admin: Actor,
    rng: random.Random,
    branch_id: int,
    branch: DemoBranch,
    people: list[tuple[int, str, str]],
) -> int:
    """A year of referrals for a branch: one for each "Referral received" interaction already logged, and more
    from warm relationships (contacts touched within 90 days send more), each with a realistic outcome and
    response time: discharge teams answered within hours, routine referrals within days."""
    now = clock.now()
    today = now.astimezone(referrals.UK).date()
    types = {contact_id: type_code for contact_id, _, type_code in people}
    count = 0
    for (interaction_id,) in db.execute(
        "SELECT id FROM interactions WHERE branch_id = ? AND kind_code = 'REFERRAL_RECEIVED' ORDER BY id", [branch_id]
    ).fetchall():
        interaction = interactions.get(db, admin, interaction_id)
        type_code = types.get((interaction["contact_ids"] or [0])[0], "OTHER")
        received = _received(rng, date.fromisoformat(interaction["occurred_on"]), now)
        values = {**_asked(rng, type_code, branch, received), "received_at": received}
        referral_id = referrals.for_interaction(db, admin, interaction_id, values, confirmed=True, now=now)
        _decide(db, admin, rng, referral_id, type_code, received, now)
        count += 1
    for contact_id, _, type_code in people:
        last = db.execute("SELECT last_touched_on FROM contacts WHERE id = ?", [contact_id]).fetchone()[0]
        if type_code not in REFERRERS or not last or date.fromisoformat(last) < today - timedelta(days=90):
            continue
        # Dated no later than their last touch, so the extra referrals leave every relationship's status as it was.
        for _ in range(rng.choice([0, 1, 1, 2, 3])):
            day = date.fromisoformat(last) - timedelta(days=rng.randint(0, 270))
            received = _received(rng, day, now)
            values = {
                **_asked(rng, type_code, branch, received),
                "branch_id": branch_id,
                "contact_id": contact_id,
                "received_at": received,
            }
            referral_id = referrals.log(db, admin, values, confirmed=True, now=now)
            _decide(db, admin, rng, referral_id, type_code, received, now)
            count += 1
    return count


def _received(rng: random.Random, day: date, now: datetime) -> datetime:
    """A working-hours moment on ``day`` (UK time), never later than now."""
    moment = datetime.combine(day, time(rng.randint(8, 17), rng.choice(range(0, 60, 5))), tzinfo=referrals.UK)
    return min(moment, now.astimezone(referrals.UK)).replace(second=0, microsecond=0)


def _asked(rng: random.Random, type_code: str, branch: DemoBranch, received: datetime) -> dict:
    discharge = type_code == "HOSPITAL_DISCHARGE"
    return {
        "channel": rng.choice(CHANNELS_BY_TYPE.get(type_code, ["phone", "email", "email"])),
        "urgency": "hospital_discharge"
        if discharge and rng.random() < 0.8
        else rng.choices(["routine", "urgent"], [7, 3])[0],
        "hours_per_week": rng.choice([3.5, 5, 7, 10.5, 14, 21, 28]),
        "start_wanted_on": received.date() + timedelta(days=rng.choice([0, 1, 1, 2, 7, 14])),
        "area": branch.postcode_district,
        "provider_reference": f"CM-{rng.randint(10000, 99999)}" if rng.random() < 0.6 else "",
    }


def _decide(
    db: Database, admin: Actor, rng: random.Random, referral_id: int, type_code: str, received: datetime, now: datetime
) -> None:
    """An outcome: most answered, a few of the last days' still open; discharge teams answered fastest."""
    age_days = (now - received).total_seconds() / 86400
    if age_days < 3 and rng.random() < 0.7 or rng.random() < 0.02:
        return  # still open
    hours = rng.uniform(0.5, 8) if type_code == "HOSPITAL_DISCHARGE" else rng.lognormvariate(3, 0.9)
    decided = min(received + timedelta(hours=min(hours, 240)), now.astimezone(referrals.UK))
    outcome = rng.choices(["accepted", "declined", "withdrawn"], [55, 33, 12])[0]
    values: dict = {"outcome": outcome, "decided_at": decided.replace(second=0, microsecond=0)}
    if outcome == "declined":
        values["decline_reason"] = rng.choices(list(DECLINE_WEIGHTS), list(DECLINE_WEIGHTS.values()))[0]
        if values["decline_reason"] == "OTHER":
            values["outcome_note"] = "Needs two carers at night, which the branch does not offer"
    elif outcome == "accepted":
        start = decided.date() + timedelta(days=rng.choice([0, 1, 1, 2, 3]))
        values["care_started_on"] = start if start <= now.date() else None
    referrals.record_outcome(db, admin, referral_id, values, expected_version=1, confirmed=True, now=now)
