"""Deterministic orders of the shop's customers.

Generated customer `c` has `order_count(seed, c)` orders, 0 to 5, from a hash of the seed
and `c`; its `k`-th order has id `c * 10 + k`, so ids are unique, sorted by customer and
computable without a table. Customers created through the API have no orders. Items
name products `1..products` at the product's listed price; `total` is the sum of
`quantity * price` as a decimal string in the order's currency.
"""

from __future__ import annotations

import bisect
from array import array
from collections.abc import Iterator
from typing import Literal, TypedDict

from ._data import customer_times, epoch_timestamp
from ._products import make_product
from ._store import BaseRecordStore, IdIndex

__all__ = ["Order", "OrderItem", "OrderStore", "make_order", "order_count", "order_ids_of"]

OrderStatus = Literal["new", "paid", "shipped", "cancelled"]

ORDER_ID_STRIDE = 10
MAX_ORDERS_PER_CUSTOMER = 5

_STATUSES: tuple[OrderStatus, ...] = ("new", "paid", "shipped", "cancelled")
_CURRENCIES = ("EUR", "USD", "GBP", "SEK")
_DAY = 86_400
# Orders are placed within 330 days after the customer was created, in id order, and
# updated within 30 days after that: all inside the years the timestamp tables cover.
_SLOT = 55 * _DAY
_MASK64 = (1 << 64) - 1


class OrderItem(TypedDict):
    product_id: int
    sku: str
    quantity: int
    price: str


class Order(TypedDict):
    id: int
    customer_id: int
    number: str
    status: OrderStatus
    total: str
    currency: str
    items: list[OrderItem]
    created_at: str
    updated_at: str


def _mix64(value: int) -> int:
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def order_count(seed: int, customer_id: int) -> int:
    """How many orders generated customer `customer_id` has: 0 to 5."""
    return _mix64((seed * 0x2545F4914F6CDD1D) ^ (customer_id << 3) ^ 0x0DE5) % (
        MAX_ORDERS_PER_CUSTOMER + 1
    )


def order_ids_of(seed: int, customer_id: int) -> range:
    """The ids of the orders of generated customer `customer_id`."""
    first = customer_id * ORDER_ID_STRIDE
    return range(first, first + order_count(seed, customer_id))


def _order_hash(seed: int, order_id: int) -> int:
    return _mix64((seed * 0x9E3779B97F4A7C15) ^ (order_id * 0xD6E8FEB86659FD93) ^ 0x0D3)


def _order_times(seed: int, order_id: int, order_hash: int) -> tuple[int, int]:
    customer_id, k = divmod(order_id, ORDER_ID_STRIDE)
    created = customer_times(seed, customer_id)[0] + k * _SLOT + order_hash % _SLOT
    return created, created + (order_hash >> 24) % (30 * _DAY)


def make_order(seed: int, order_id: int, *, products: int) -> Order:
    """Return order `order_id` for `seed`; its items name products `1..products`."""
    h = _order_hash(seed, order_id)
    created, updated = _order_times(seed, order_id, h)
    items: list[OrderItem] = []
    total_cents = 0
    for line in range(1 + (h >> 12) % 4 if products > 0 else 0):
        g = _mix64(h + line)
        product = make_product(seed, 1 + g % products)
        quantity = 1 + (g >> 32) % 5
        units, cents = product["price"].split(".")
        total_cents += quantity * (int(units) * 100 + int(cents))
        items.append(
            {
                "product_id": product["id"],
                "sku": product["sku"],
                "quantity": quantity,
                "price": product["price"],
            }
        )
    return {
        "id": order_id,
        "customer_id": order_id // ORDER_ID_STRIDE,
        "number": f"SO-{order_id:08d}",
        "status": _STATUSES[(h >> 8) & 3],
        "total": f"{total_cents // 100}.{total_cents % 100:02d}",
        "currency": _CURRENCIES[(h >> 10) & 3],
        "items": items,
        "created_at": epoch_timestamp(created),
        "updated_at": epoch_timestamp(updated),
    }


class _OrderIndex:
    """The sorted ids of all generated orders, from a prefix sum of orders per customer."""

    def __init__(self, seed: int, customers: int) -> None:
        self.seed = seed
        # ends[c - 1] is the number of orders of customers 1..c.
        self.ends = array("q")
        running = 0
        for customer_id in range(1, customers + 1):
            running += order_count(seed, customer_id)
            self.ends.append(running)

    def __len__(self) -> int:
        return self.ends[-1] if self.ends else 0

    def __getitem__(self, index: int, /) -> int:
        if not 0 <= index < len(self):
            raise IndexError(index)
        position = bisect.bisect_right(self.ends, index)
        first = self.ends[position - 1] if position else 0
        return (position + 1) * ORDER_ID_STRIDE + index - first

    def __iter__(self) -> Iterator[int]:
        for customer_id in range(1, len(self.ends) + 1):
            yield from order_ids_of(self.seed, customer_id)


class OrderStore(BaseRecordStore[Order]):
    """The orders of generated customers `1..customers`; read-only except for `/_touch`."""

    def __init__(self, *, customers: int, products: int, seed: int) -> None:
        super().__init__()
        self.customers = customers
        self.products = products
        self.seed = seed
        self._index: _OrderIndex | None = None

    def _generated_ids(self) -> IdIndex:
        # Built on first use: one hash per customer.
        if self._index is None:
            self._index = _OrderIndex(self.seed, self.customers)
        return self._index

    def _is_generated(self, record_id: int) -> bool:
        customer_id, k = divmod(record_id, ORDER_ID_STRIDE)
        return 1 <= customer_id <= self.customers and k < order_count(self.seed, customer_id)

    def _generate(self, record_id: int) -> Order:
        return make_order(self.seed, record_id, products=self.products)

    def _generated_updated_at(self, record_id: int) -> str:
        h = _order_hash(self.seed, record_id)
        return epoch_timestamp(_order_times(self.seed, record_id, h)[1])

    def of_customer(self, customer_id: int, since: str | None = None) -> list[Order]:
        """The orders of one customer in id order, those updated at or after `since`."""
        if not 1 <= customer_id <= self.customers:
            return []
        orders = [self._record(order_id) for order_id in order_ids_of(self.seed, customer_id)]
        return [order for order in orders if since is None or order["updated_at"] >= since]
