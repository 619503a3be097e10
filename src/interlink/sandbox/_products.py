"""Deterministic products, shared by the shop's REST endpoints and the GraphQL and SOAP services.

Product `n` for a seed is a pure function of `(seed, n)`, like the customers of `_data.py`.
"""

from __future__ import annotations

import time
from typing import TypedDict

__all__ = ["Product", "make_product", "make_products"]


class Product(TypedDict):
    id: int
    sku: str
    name: str
    category: str
    price: str
    """A decimal string with two places, e.g. "19.90": money is never a float."""
    currency: str
    stock: int
    active: bool
    updated_at: str


_ADJECTIVES = (
    "Compact", "Deluxe", "Eco", "Classic", "Smart", "Rugged", "Silent", "Portable",
    "Premium", "Basic", "Modular", "Wireless", "Heavy-duty", "Slim", "Solar", "Vintage",
)  # fmt: skip
_NOUNS = (
    "Kettle", "Backpack", "Desk Lamp", "Drill", "Headphones", "Notebook", "Water Bottle",
    "Bike Light", "Tent", "Blender", "Keyboard", "Umbrella", "Watch", "Speaker", "Chair",
    "Router",
)  # fmt: skip
_CATEGORIES = ("home", "outdoor", "office", "tools", "audio", "kitchen", "sports", "tech")
_CURRENCIES = ("EUR", "USD", "GBP", "SEK")
_EPOCH_START = 1_640_995_200
_SPAN = 3 * 365 * 86_400
_MASK64 = (1 << 64) - 1


def _mix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def make_product(seed: int, product_id: int) -> Product:
    """Return product `product_id` of the data set for `seed`, always the same record."""
    a = _mix64((seed * 0x9E3779B1) ^ (product_id << 1) ^ 0x5BD1E995)
    adjective = _ADJECTIVES[a & 15]
    noun = _NOUNS[(a >> 4) & 15]
    cents = 199 + (a >> 8) % 49_800
    return {
        "id": product_id,
        "sku": f"SKU-{product_id:06d}",
        "name": f"{adjective} {noun}",
        "category": _CATEGORIES[(a >> 24) & 7],
        "price": f"{cents // 100}.{cents % 100:02d}",
        "currency": _CURRENCIES[(a >> 27) & 3],
        "stock": (a >> 29) % 500,
        "active": (a >> 40) % 10 != 0,
        "updated_at": time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(_EPOCH_START + (a >> 41) % _SPAN)
        ),
    }


def make_products(seed: int, count: int, *, start: int = 1) -> list[Product]:
    """Return `count` consecutive products for `seed`, beginning with id `start`."""
    return [make_product(seed, product_id) for product_id in range(start, start + count)]
