"""Deterministic demo data for an emulated org: the org itself, users, and realistic sales rows with valid lookups."""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TypeVar

from dynasync.emulator.store import OrgStore
from dynasync.emulator.values import LookupValue

T = TypeVar("T")
_NS = uuid.UUID("0b7c3e52-1d7e-4f61-a7f3-8f0b9e2c5d14")
BATCH = 5_000

_COMPANY_A = ("Contoso", "Fabrikam", "Litware", "Adventure", "Northwind", "Tailspin", "Proseware", "Woodgrove",
              "Fourth", "Alpine", "Blue Yonder", "Coho", "Datum", "Lucerne", "Margie's", "Wingtip", "Trey",
              "Wide World", "Humongous", "Graphic", "Southridge", "Relecloud", "Consolidated", "Bellows")  # fmt: skip
_COMPANY_B = ("Ltd", "Inc", "Corp", "Group", "Holdings", "Systems", "Partners", "Labs", "Industries",
              "Traders", "Works", "Services", "Logistics", "Foods", "Energy", "Travel")  # fmt: skip
_FIRST = ("James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William", "Elizabeth",
          "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen",
          "Daniel", "Nancy", "Matthew", "Lisa", "Anthony", "Betty", "Mark", "Margaret", "Sofia", "Yuki", "Amir",
          "Chen", "Priya", "Olga", "Lars", "Fatima", "Mateo", "Aisha", "Kenji", "Ingrid")  # fmt: skip
_LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
         "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
         "Lee", "Perez", "Thompson", "White", "Harris", "Clark", "Lewis", "Walker", "O'Brien", "Nakamura",
         "Khan", "Novak", "Larsen", "Rossi", "Dubois", "Schmidt", "Kowalski", "Silva", "Tanaka", "Okafor")  # fmt: skip
_CITIES = (
    ("Redmond", "WA", "98052", "United States", 47.674, -122.121),
    ("Seattle", "WA", "98101", "United States", 47.606, -122.332),
    ("New York", "NY", "10001", "United States", 40.713, -74.006),
    ("Chicago", "IL", "60601", "United States", 41.878, -87.630),
    ("Austin", "TX", "73301", "United States", 30.267, -97.743),
    ("Toronto", "ON", "M5H 2N2", "Canada", 43.653, -79.383),
    ("London", "England", "EC1A 1BB", "United Kingdom", 51.507, -0.128),
    ("Paris", "Île-de-France", "75001", "France", 48.857, 2.352),
    ("Berlin", "Berlin", "10115", "Germany", 52.520, 13.405),
    ("Sydney", "NSW", "2000", "Australia", -33.869, 151.209),
    ("Tokyo", "Tokyo", "100-0001", "Japan", 35.690, 139.692),
    ("São Paulo", "SP", "01000-000", "Brazil", -23.551, -46.633),
)
_STREETS = (
    "Main St",
    "Oak Ave",
    "Pine Rd",
    "Maple Dr",
    "Cedar Ln",
    "Elm St",
    "Lake Blvd",
    "Hill Rd",
    "Park Ave",
)
_JOBS = (
    "Purchasing Manager",
    "CEO",
    "CFO",
    "IT Director",
    "Sales Manager",
    "Buyer",
    "Engineer",
    "Consultant",
)
_TOPICS = ("New store opening", "Annual renewal", "Fleet upgrade", "Cloud migration", "Support contract",
           "Pilot program", "Office expansion", "Training package")  # fmt: skip


_REGION_SETS: tuple[tuple[int, ...] | None, ...] = (
    None, None, (100000000,), (100000002,), (100000000, 100000002), (100000004,), (100000001, 100000003),
)  # fmt: skip


@dataclass(slots=True)
class OrgIds:
    """Ids of the rows every org has."""

    organization_id: uuid.UUID
    business_unit_id: uuid.UUID
    currency_id: uuid.UUID
    admin_user_id: uuid.UUID


@dataclass(slots=True)
class SeedResult:
    """What :func:`seed` created."""

    org: OrgIds
    user_ids: list[uuid.UUID] = field(default_factory=list)
    account_ids: list[uuid.UUID] = field(default_factory=list)
    contact_ids: list[uuid.UUID] = field(default_factory=list)
    lead_ids: list[uuid.UUID] = field(default_factory=list)
    opportunity_ids: list[uuid.UUID] = field(default_factory=list)


def _uuid(value: object) -> uuid.UUID:
    assert isinstance(value, uuid.UUID)
    return value


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NS, name)


def seed_org(store: OrgStore, *, org_name: str = "dynasync", admin_oid: uuid.UUID | None = None) -> OrgIds:
    """Create the organization, root business unit, USD currency and an administrator (idempotent)."""
    existing = store.organization_id
    if existing is not None:
        unit, money, admin = store.business_unit_id, store.base_currency_id, store.admin_user_id
        assert unit is not None and money is not None and admin is not None
        return OrgIds(existing, unit, money, admin)
    with store.transaction():
        currency = store.create(
            "transactioncurrency",
            {"currencyname": "US Dollar", "isocurrencycode": "USD", "currencysymbol": "$",
             "exchangerate": Decimal(1), "currencyprecision": 2},
            caller=None, id=_id(f"{org_name}:currency:USD"),
        )  # fmt: skip
        bu = store.create("businessunit", {"name": org_name}, caller=None, id=_id(f"{org_name}:bu"))
        admin_id = _id(f"{org_name}:admin")
        store.create(
            "systemuser",
            {"firstname": "System", "lastname": "Administrator", "domainname": f"admin@{org_name}.onmicrosoft.com",
             "internalemailaddress": f"admin@{org_name}.onmicrosoft.com", "accessmode": 0, "islicensed": True,
             "azureactivedirectoryobjectid": admin_oid or _id(f"{org_name}:admin:oid"),
             "businessunitid": LookupValue("businessunit", _uuid(bu["businessunitid"]))},
            caller=admin_id, id=admin_id,
        )  # fmt: skip
        store.set_admin_user(admin_id)
        org = store.create(
            "organization",
            {"name": org_name, "expirechangetrackingindays": 7, "languagecode": 1033,
             "basecurrencyid": LookupValue("transactioncurrency", _uuid(currency["transactioncurrencyid"]))},
            caller=admin_id, id=_id(f"{org_name}:org"),
        )  # fmt: skip
    return OrgIds(
        _uuid(org["organizationid"]),
        _uuid(bu["businessunitid"]),
        _uuid(currency["transactioncurrencyid"]),
        admin_id,
    )


def register_app_user(
    store: OrgStore,
    app_id: uuid.UUID | str,
    *,
    name: str | None = None,
    object_id: uuid.UUID | str | None = None,
) -> uuid.UUID:
    """Make an app (client id) an application user of the org; returns its systemuserid (idempotent)."""
    existing = store.app_user(app_id)
    if existing is not None:
        user_id = existing["systemuserid"]
        assert isinstance(user_id, uuid.UUID)
        return user_id
    org = seed_org(store)
    app = uuid.UUID(str(app_id))
    row = store.create(
        "systemuser",
        {
            "firstname": "#",
            "lastname": name or f"App {str(app)[:8]}",
            "domainname": f"{app}@app.local",
            "applicationid": app,
            "azureactivedirectoryobjectid": uuid.UUID(str(object_id)) if object_id else None,
            "accessmode": 4,
            "businessunitid": LookupValue("businessunit", org.business_unit_id),
        },
        caller=org.admin_user_id,
    )
    user_id = row["systemuserid"]
    assert isinstance(user_id, uuid.UUID)
    return user_id


class _Gen:
    """Deterministic value helpers over one random generator (pools keep bulk seeding fast)."""

    def __init__(self, rng_seed: int, now: dt.datetime) -> None:
        self.rng = random.Random(rng_seed)
        self.rnd = self.rng.random
        self.now = now.replace(microsecond=0)
        self.phones = [self._phone() for _ in range(4096)]
        self.addresses = {p: [self._address(p) for _ in range(1024)] for p in ("address1_",)}

    def int(self, low: int, high: int) -> int:
        """A value in [low, high)."""
        return low + int(self.rnd() * (high - low))

    def pick(self, items: Sequence[T]) -> T:
        """One item."""
        return items[int(self.rnd() * len(items))]

    def uuid(self) -> uuid.UUID:
        """A random (version 4) GUID."""
        return uuid.UUID(int=self.rng.getrandbits(128), version=4)

    def stamps(self) -> tuple[dt.datetime, dt.datetime]:
        """Creation time in the last two years and a modification time after it."""
        created = self.now - dt.timedelta(seconds=self.int(1, 730 * 86400))
        modified = min(self.now, created + dt.timedelta(seconds=self.int(0, 90 * 86400)))
        return created, modified

    def phone(self) -> str:
        """A phone number."""
        return self.pick(self.phones)

    def address(self, prefix: str) -> dict[str, object]:
        """An address block."""
        return self.pick(self.addresses[prefix])

    def _phone(self) -> str:
        return f"+1-{self.int(200, 1000)}-{self.int(200, 1000)}-{self.int(1000, 10000):04d}"

    def _address(self, prefix: str) -> dict[str, object]:
        city, state, postal, country, lat, lon = self.pick(_CITIES)
        return {
            f"{prefix}line1": f"{self.int(1, 9999)} {self.pick(_STREETS)}",
            f"{prefix}city": city,
            f"{prefix}stateorprovince": state,
            f"{prefix}postalcode": postal,
            f"{prefix}country": country,
            f"{prefix}latitude": round(lat + (self.rnd() - 0.5) / 10, 5),
            f"{prefix}longitude": round(lon + (self.rnd() - 0.5) / 10, 5),
        }


def _batched(make: Callable[[int], dict[str, object]], count: int) -> Iterator[list[dict[str, object]]]:
    for start in range(0, count, BATCH):
        yield [make(i) for i in range(start, min(count, start + BATCH))]


def seed(
    store: OrgStore,
    *,
    accounts: int = 0,
    contacts: int = 0,
    leads: int = 0,
    opportunities: int = 0,
    users: int = 0,
    rng_seed: int = 42,
    org_name: str = "dynasync",
) -> SeedResult:
    """Fill the org with deterministic, realistic rows (same arguments, same data, except the clock's now)."""
    org = seed_org(store, org_name=org_name)
    g = _Gen(rng_seed, store.clock.now())
    result = SeedResult(org)
    admin = org.admin_user_id
    for i in range(users):
        first, last = g.pick(_FIRST), g.pick(_LAST)
        user = store.create(
            "systemuser",
            {"firstname": first, "lastname": last, "domainname": f"user{i + 1}@{org_name}.onmicrosoft.com",
             "internalemailaddress": f"user{i + 1}@{org_name}.onmicrosoft.com", "islicensed": True,
             "title": g.pick(_JOBS), "azureactivedirectoryobjectid": g.uuid(), "accessmode": 0,
             "businessunitid": LookupValue("businessunit", org.business_unit_id)},
            caller=admin, id=g.uuid(),
        )  # fmt: skip
        result.user_ids.append(_uuid(user["systemuserid"]))
    owners = [LookupValue("systemuser", u) for u in [admin, *result.user_ids]]
    result.account_ids = [g.uuid() for _ in range(accounts)]
    result.contact_ids = [g.uuid() for _ in range(contacts)]
    result.lead_ids = [g.uuid() for _ in range(leads)]
    result.opportunity_ids = [g.uuid() for _ in range(opportunities)]
    account_refs = [LookupValue("account", a) for a in result.account_ids]
    contact_refs = [LookupValue("contact", c) for c in result.contact_ids]

    def account(i: int) -> dict[str, object]:
        rnd, ri, pick = g.rnd, g.int, g.pick
        name = f"{pick(_COMPANY_A)} {pick(_COMPANY_B)} {i + 1}"
        domain = f"{name.split()[0].lower().replace(chr(39), '')}{i + 1}.example.com"
        created, modified = g.stamps()
        row: dict[str, object] = {
            "accountid": result.account_ids[i], "name": name, "accountnumber": f"ACC-{i + 1:07d}",
            "emailaddress1": f"info@{domain}", "telephone1": g.phone(), "fax": g.phone(),
            "websiteurl": f"https://www.{domain}", "description": f"{name} is a sample customer.",
            "revenue": Decimal(ri(10_000, 500_000_000)), "creditlimit": Decimal(ri(0, 1_000_000)),
            "numberofemployees": ri(1, 250_000), "industrycode": ri(1, 34),
            "customertypecode": ri(1, 13), "accountcategorycode": ri(1, 3),
            "creditonhold": rnd() < 0.05, "donotemail": rnd() < 0.1, "donotphone": rnd() < 0.1,
            "ownerid": pick(owners), "createdon": created, "modifiedon": modified,
            "new_regions": pick(_REGION_SETS),
            **g.address("address1_"),
        }  # fmt: skip
        if contact_refs:
            row["primarycontactid"] = pick(contact_refs)
        if i > 10 and rnd() < 0.1:
            row["parentaccountid"] = account_refs[ri(0, i)]
        if rnd() < 0.08:
            row["statecode"], row["statuscode"] = 1, 2
        return row

    def contact(i: int) -> dict[str, object]:
        rnd, ri, pick = g.rnd, g.int, g.pick
        first, last = pick(_FIRST), pick(_LAST)
        created, modified = g.stamps()
        row: dict[str, object] = {
            "contactid": result.contact_ids[i], "firstname": first, "lastname": last,
            "emailaddress1": f"{first.lower()}.{last.lower().replace(chr(39), '')}{i + 1}@example.com",
            "telephone1": g.phone(), "mobilephone": g.phone(), "jobtitle": pick(_JOBS),
            "birthdate": dt.date(1950, 1, 1) + dt.timedelta(days=ri(0, 18_000)),
            "gendercode": ri(1, 3), "preferredcontactmethodcode": ri(1, 6),
            "ownerid": pick(owners), "createdon": created, "modifiedon": modified, **g.address("address1_"),
        }  # fmt: skip
        if account_refs and rnd() < 0.9:
            row["parentcustomerid"] = pick(account_refs)
        return row

    def lead(i: int) -> dict[str, object]:
        ri, pick = g.int, g.pick
        first, last = pick(_FIRST), pick(_LAST)
        created, modified = g.stamps()
        return {
            "leadid": result.lead_ids[i], "subject": f"{pick(_TOPICS)} ({i + 1})", "firstname": first,
            "lastname": last, "companyname": f"{pick(_COMPANY_A)} {pick(_COMPANY_B)}",
            "emailaddress1": f"{first.lower()}{i + 1}@lead.example.com", "telephone1": g.phone(),
            "leadsourcecode": ri(1, 11), "leadqualitycode": ri(1, 4),
            "estimatedamount": Decimal(ri(1_000, 2_000_000)), "ownerid": pick(owners),
            "createdon": created, "modifiedon": modified,
        }  # fmt: skip

    def opportunity(i: int) -> dict[str, object]:
        rnd, ri, pick = g.rnd, g.int, g.pick
        created, modified = g.stamps()
        row: dict[str, object] = {
            "opportunityid": result.opportunity_ids[i], "name": f"{pick(_TOPICS)} #{i + 1}",
            "estimatedvalue": Decimal(ri(1_000, 5_000_000)), "closeprobability": ri(0, 101),
            "estimatedclosedate": (g.now + dt.timedelta(days=ri(-90, 365))).date(),
            "opportunityratingcode": ri(1, 4), "salesstagecode": ri(0, 4),
            "ownerid": pick(owners), "createdon": created, "modifiedon": modified,
        }  # fmt: skip
        if account_refs and (not contact_refs or rnd() < 0.8):
            customer = pick(account_refs)
            row["customerid"] = customer
            row["parentaccountid"] = customer
        elif contact_refs:
            row["customerid"] = pick(contact_refs)
        return row

    for entity, make, count in (
        ("account", account, accounts),
        ("contact", contact, contacts),
        ("lead", lead, leads),
        ("opportunity", opportunity, opportunities),
    ):
        for batch in _batched(make, count):
            store.insert_many(entity, batch, caller=admin)
    return result
