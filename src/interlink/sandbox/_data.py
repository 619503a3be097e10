"""Deterministic records for the sandbox APIs.

Record `n` for a given seed is computed on demand from a hash of `(seed, n)`, so any page
of a very large data set costs only the records on that page, and two runs with the same
seed see byte-for-byte the same data.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import TypedDict

from ._store import BaseRecordStore, IdIndex, now_timestamp

__all__ = [
    "Address",
    "Customer",
    "CustomerStore",
    "customer_times",
    "epoch_timestamp",
    "make_customer",
    "make_customers",
]


class Address(TypedDict):
    street: str
    city: str
    country: str


class Customer(TypedDict):
    id: int
    email: str
    first_name: str
    last_name: str
    phone: str
    company: str
    address: Address
    tags: list[str]
    created_at: str
    updated_at: str


_FIRST_NAMES = (
    "Ada", "Alan", "Amara", "Anders", "Aiko", "Beatriz", "Bruno", "Chen", "Chiara", "Dmitri",
    "Elena", "Emeka", "Farah", "Felix", "Grace", "Hana", "Hugo", "Ines", "Ivan", "Jamal",
    "Jana", "Kai", "Kofi", "Lars", "Leila", "Lucia", "Malik", "Marta", "Mei", "Nadia",
    "Nils", "Noor", "Olga", "Omar", "Paula", "Pedro", "Priya", "Rafael", "Rosa", "Sakura",
    "Samir", "Sofia", "Sven", "Tariq", "Tomas", "Uma", "Valentina", "Viktor", "Wei", "Yara",
    "Yusuf", "Zara", "Mateo", "Ingrid", "Kenji", "Amelie", "Oscar", "Lina", "Diego", "Freya",
    "Hiro", "Astrid", "Luca", "Nina",
)  # fmt: skip
_LAST_NAMES = (
    "Abbott", "Alvarez", "Andersen", "Bauer", "Becker", "Bianchi", "Brown", "Castillo", "Chen",
    "Costa", "Dubois", "Eriksson", "Fischer", "Garcia", "Gonzalez", "Hansen", "Hoffmann",
    "Ivanova", "Jensen", "Johansson", "Kaur", "Khan", "Kim", "Kowalski", "Larsen", "Lee",
    "Lopez", "Martin", "Meyer", "Moreau", "Muller", "Murphy", "Nakamura", "Nguyen", "Novak",
    "Okafor", "Olsen", "Patel", "Petrov", "Rossi", "Santos", "Sato", "Schmidt", "Silva",
    "Singh", "Smith", "Suzuki", "Tanaka", "Torres", "Varga", "Wagner", "Walsh", "Weber",
    "Wilson", "Wong", "Yilmaz", "Zhang", "Ferrari", "Horvat", "Lindqvist", "Mendes", "Oyelaran",
    "Quinn", "Romano",
)  # fmt: skip
_COMPANY_WORDS = (
    "Acme", "Apex", "Atlas", "Blue Harbor", "Bright", "Cedar", "Cobalt", "Crescent", "Delta",
    "Evergreen", "Falcon", "Granite", "Harbor", "Horizon", "Ironwood", "Juniper", "Keystone",
    "Lakeside", "Lumen", "Maple", "Meridian", "Nimbus", "Northwind", "Oakridge", "Orion",
    "Pinnacle", "Quantum", "Redwood", "Riverside", "Silverline", "Summit", "Vertex",
)  # fmt: skip
_COMPANY_TRADES = (
    "Logistics", "Analytics", "Foods", "Robotics", "Textiles", "Energy", "Software", "Media",
    "Pharma", "Outfitters", "Consulting", "Hardware", "Labs", "Freight", "Studios", "Supply",
)  # fmt: skip
_FORMS = ("GmbH", "Ltd", "Inc", "LLC", "SA", "BV", "AB", "Oy")
_STREETS = (
    "Maple Avenue", "Oak Street", "High Street", "Station Road", "Church Lane", "Mill Road",
    "Park Avenue", "Elm Street", "King Street", "Queen Street", "Harbour Road", "Market Square",
    "Bahnhofstrasse", "Hauptstrasse", "Rue de la Paix", "Calle Mayor", "Via Roma",
    "Kungsgatan", "Nieuwe Binnenweg", "Rua Augusta", "Linden Allee", "Bridge Street",
    "Victoria Road", "Cedar Lane", "Sunset Boulevard", "River Road", "Lake View", "Hill Crest",
    "Garden Row", "Forest Drive", "Meadow Way", "Canal Street",
)  # fmt: skip
_CITIES = (
    ("Berlin", "DE"), ("Hamburg", "DE"), ("Munich", "DE"), ("London", "GB"),
    ("Manchester", "GB"), ("Paris", "FR"), ("Lyon", "FR"), ("Madrid", "ES"),
    ("Barcelona", "ES"), ("Rome", "IT"), ("Milan", "IT"), ("Amsterdam", "NL"),
    ("Rotterdam", "NL"), ("Stockholm", "SE"), ("Oslo", "NO"), ("Copenhagen", "DK"),
    ("Helsinki", "FI"), ("Warsaw", "PL"), ("Prague", "CZ"), ("Vienna", "AT"),
    ("Zurich", "CH"), ("Lisbon", "PT"), ("Dublin", "IE"), ("Brussels", "BE"),
    ("New York", "US"), ("Chicago", "US"), ("Austin", "US"), ("Toronto", "CA"),
    ("Tokyo", "JP"), ("Singapore", "SG"), ("Sydney", "AU"), ("Sao Paulo", "BR"),
)  # fmt: skip
_TAGS = ("vip", "newsletter", "wholesale", "b2b", "trial", "churn-risk", "beta", "partner")

# Records are created between 2022-01-01 and 2023-12-31 and updated up to a year later.
_EPOCH_START = 1_640_995_200
_CREATED_SPAN = 2 * 365 * 86_400
_UPDATED_SPAN = 365 * 86_400

_MASK64 = (1 << 64) - 1


def _mix64(value: int) -> int:
    # splitmix64 finaliser: a cheap, well-distributed 64-bit hash.
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


# Lookup tables keep a record at a few microseconds: formatting is the expensive part.
_DAYS = tuple(
    time.strftime("%Y-%m-%dT", time.gmtime(_EPOCH_START + day * 86_400))
    for day in range((_CREATED_SPAN + _UPDATED_SPAN) // 86_400 + 1)
)
_MINUTES = tuple(f"{minute // 60:02d}:{minute % 60:02d}:" for minute in range(1440))
_SECONDS = tuple(f"{second:02d}Z" for second in range(60))
_EMAIL_FIRST = tuple(name.lower() for name in _FIRST_NAMES)
_EMAIL_LAST = tuple(name.lower() for name in _LAST_NAMES)
_DOMAIN_WORDS = tuple(word.lower().replace(" ", "") for word in _COMPANY_WORDS)
_DOMAIN_TRADES = tuple(trade.lower() for trade in _COMPANY_TRADES)
_TAG_SETS = tuple(
    tuple(tag for bit, tag in enumerate(_TAGS) if bits >> bit & 1) for bits in range(256)
)


def _offset_timestamp(offset: int) -> str:
    day, second = divmod(offset, 86_400)
    minute, second = divmod(second, 60)
    return _DAYS[day] + _MINUTES[minute] + _SECONDS[second]


def _hashes(seed: int, customer_id: int) -> tuple[int, int]:
    a = _mix64((seed * 0x100000001B3) ^ customer_id)
    return a, ((a ^ (a >> 29)) * 0xBF58476D1CE4E5B9) & _MASK64


def customer_times(seed: int, customer_id: int) -> tuple[int, int]:
    """Seconds after 2022-01-01 of a generated customer's `created_at` and `updated_at`."""
    _, b = _hashes(seed, customer_id)
    created = b % _CREATED_SPAN
    return created, created + (b >> 16) % _UPDATED_SPAN


def epoch_timestamp(offset: int) -> str:
    """Format `offset` seconds after 2022-01-01 (within three years) as the records do."""
    return _offset_timestamp(offset)


def make_customer(seed: int, customer_id: int) -> Customer:
    """Return customer `customer_id` of the data set for `seed`, always the same record."""
    a, b = _hashes(seed, customer_id)
    first = a & 63
    last = (a >> 6) & 63
    word = (a >> 12) & 31
    trade = (a >> 17) & 15
    city, country = _CITIES[(a >> 24) & 31]
    created = b % _CREATED_SPAN
    return {
        "id": customer_id,
        "email": f"{_EMAIL_FIRST[first]}.{_EMAIL_LAST[last]}{customer_id}"
        f"@{_DOMAIN_WORDS[word]}-{_DOMAIN_TRADES[trade]}.example",
        "first_name": _FIRST_NAMES[first],
        "last_name": _LAST_NAMES[last],
        "phone": f"+{1 + (a >> 29) % 99} {100 + (a >> 35) % 900} {(b >> 20) % 10**7:07d}",
        "company": f"{_COMPANY_WORDS[word]} {_COMPANY_TRADES[trade]} {_FORMS[(a >> 21) & 7]}",
        "address": {
            "street": f"{1 + (a >> 45) % 250} {_STREETS[(b >> 10) & 31]}",
            "city": city,
            "country": country,
        },
        # Each tag is present with probability 1/4: two tags on average.
        "tags": list(_TAG_SETS[(b >> 40) & (b >> 48) & 0xFF]),
        "created_at": _offset_timestamp(created),
        "updated_at": _offset_timestamp(created + (b >> 16) % _UPDATED_SPAN),
    }


def make_customers(seed: int, count: int, *, start: int = 1) -> list[Customer]:
    """Return `count` consecutive customers for `seed`, beginning with id `start`."""
    return [make_customer(seed, customer_id) for customer_id in range(start, start + count)]


class CustomerStore(BaseRecordStore[Customer]):
    """The customers of one sandbox app: generated records `1..records` plus changes.

    Generated records are never held in memory; records created through the API get the
    next ids, and created, updated or touched records are kept (until `reset()`) in place
    of the generated ones.

    ```python
    store = CustomerStore(records=100_000, seed=42)
    store.page(99_990, 100)  # the last ten records
    ```
    """

    def __init__(self, *, records: int, seed: int) -> None:
        if records < 0:
            raise ValueError("records must not be negative")
        super().__init__()
        self.records = records
        self.seed = seed

    def _generated_ids(self) -> IdIndex:
        return range(1, self.records + 1)

    def _is_generated(self, record_id: int) -> bool:
        return 1 <= record_id <= self.records

    def _generate(self, record_id: int) -> Customer:
        return make_customer(self.seed, record_id)

    def _generated_updated_at(self, record_id: int) -> str:
        return _offset_timestamp(customer_times(self.seed, record_id)[1])

    def _first_free_id(self) -> int:
        return self.records + 1

    def create(self, fields: Mapping[str, object]) -> Customer:
        """Store a new customer built from already validated `fields` and return it."""
        now = now_timestamp()

        def build(customer_id: int) -> Customer:
            customer: Customer = {
                "id": customer_id,
                "email": "",
                "first_name": "",
                "last_name": "",
                "phone": "",
                "company": "",
                "address": {"street": "", "city": "", "country": ""},
                "tags": [],
                "created_at": now,
                "updated_at": now,
            }
            return _apply(customer, fields)

        return self.add(build)

    def update(self, customer_id: int, fields: Mapping[str, object]) -> Customer | None:
        """Change the given (already validated) fields of a customer and set `updated_at`.

        `address` is merged field by field. Returns None for an unknown id.
        """
        customer = self.get(customer_id)
        if customer is None:
            return None
        changed = _apply(copy.deepcopy(customer), fields)
        changed["updated_at"] = now_timestamp()
        return self.put(changed)


def _apply(customer: Customer, fields: Mapping[str, object]) -> Customer:
    if "email" in fields:
        customer["email"] = str(fields["email"])
    if "first_name" in fields:
        customer["first_name"] = str(fields["first_name"])
    if "last_name" in fields:
        customer["last_name"] = str(fields["last_name"])
    if "phone" in fields:
        customer["phone"] = str(fields["phone"])
    if "company" in fields:
        customer["company"] = str(fields["company"])
    address = fields.get("address")
    if isinstance(address, Mapping):
        if "street" in address:
            customer["address"]["street"] = str(address["street"])
        if "city" in address:
            customer["address"]["city"] = str(address["city"])
        if "country" in address:
            customer["address"]["country"] = str(address["country"])
    tags = fields.get("tags")
    if isinstance(tags, list):
        customer["tags"] = [str(tag) for tag in tags]
    return customer
