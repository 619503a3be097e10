import time

import orjson
import pytest

from interlink.sandbox import CustomerStore, make_customer, make_customers


def test_same_seed_gives_the_same_records() -> None:
    assert make_customers(42, 200) == make_customers(42, 200)
    assert make_customer(42, 17) == make_customers(42, 20)[16]


def test_other_seeds_give_other_records() -> None:
    assert make_customers(1, 50) != make_customers(2, 50)


def test_record_shape() -> None:
    customer = make_customer(42, 7)
    assert customer["id"] == 7
    assert set(customer) == {
        "id",
        "email",
        "first_name",
        "last_name",
        "phone",
        "company",
        "address",
        "tags",
        "created_at",
        "updated_at",
    }
    assert set(customer["address"]) == {"street", "city", "country"}
    assert "@" in customer["email"]
    assert all(isinstance(tag, str) for tag in customer["tags"])
    assert customer["created_at"].endswith("Z") and len(customer["created_at"]) == 20
    assert customer["created_at"] <= customer["updated_at"]


def test_records_are_about_350_bytes_and_emails_unique() -> None:
    customers = make_customers(42, 2000)
    size = len(orjson.dumps(customers)) / len(customers)
    assert 300 <= size <= 400
    assert len({customer["email"] for customer in customers}) == len(customers)


def test_pages_of_a_huge_store_are_generated_lazily() -> None:
    store = CustomerStore(records=10_000_000, seed=42)
    started = time.perf_counter()
    page = store.page(9_999_000, 1000)
    assert time.perf_counter() - started < 0.5
    assert [customer["id"] for customer in page] == list(range(9_999_001, 10_000_001))
    assert store.get(10_000_000) == page[-1]


def test_store_pages_cover_created_records() -> None:
    store = CustomerStore(records=5, seed=1)
    created = store.create({"email": "new@example.com", "tags": ["x"], "address": {"city": "Oslo"}})
    assert created["id"] == 6 and store.total == 6
    assert created["address"] == {"street": "", "city": "Oslo", "country": ""}
    assert [customer["id"] for customer in store.page(3, 10)] == [4, 5, 6]
    assert store.page(5, 10) == [created]
    assert store.page(6, 10) == []
    assert store.get(6) == created
    assert store.get(0) is None and store.get(7) is None
    store.reset()
    assert store.total == 5 and store.get(6) is None


def test_negative_record_count_is_rejected() -> None:
    with pytest.raises(ValueError):
        CustomerStore(records=-1, seed=1)
