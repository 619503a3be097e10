"""API keys are stored as hashes only: a dump of the database holds no usable key."""

from __future__ import annotations

import sqlite3

import pytest

from interlink.store import (
    create_api_key,
    hash_api_key,
    list_api_keys,
    revoke_api_key,
    verify_api_key,
)


def _dump(path) -> str:
    db = sqlite3.connect(path)
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


async def test_raw_keys_are_never_in_the_database(make_api, tmp_path):
    path = tmp_path / "dumped.db"
    api = await make_api(database=f"sqlite:///{path}")
    api.new_key("extra", "write")
    for scope in ("read", "write", "admin", "extra"):
        assert (await api.get("/jobs", scope=scope)).status_code == 200
    await api.post("/jobs", json={"kind": "noop"}, headers={"Idempotency-Key": "k-1"})
    revoke_api_key(api.store.engine, list_api_keys(api.store.engine)[0].id)
    assert (await api.get("/jobs", scope="read")).status_code == 401

    dump = _dump(path)
    wal = path.with_name(path.name + "-wal")
    raw = path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert "interlink_api_keys" in dump
    for secret in api.keys.values():
        assert secret not in dump
        assert secret.encode() not in raw
        _, short, rest = secret.split("_")
        short = f"il_{short}"
        assert rest not in dump and rest.encode() not in raw  # not even the secret part
        assert hash_api_key(secret) in dump
        assert short in dump  # the prefix is kept, to tell keys apart in listings
    for secret in api.keys.values():
        assert secret not in str(list_api_keys(api.store.engine))


def test_create_verify_list_revoke(tmp_path):
    from interlink.store import Store

    store = Store.open(f"sqlite:///{tmp_path / 'keys.db'}")
    created = create_api_key(store.engine, "ci", "write", clock=lambda: 100.0)
    assert created.secret.startswith(created.key.prefix + "_")
    assert len(created.key.prefix) == len("il_") + 8
    scheme, short, body = created.secret.split("_")
    assert scheme == "il" and created.key.prefix == f"il_{short}"
    assert len(body) == 43 and body.isalnum()  # 43 of 62 characters: 256 bits
    assert body not in repr(created) and "**********" in repr(created)
    assert created.key.scope == "write" and created.key.allows("read")
    assert not created.key.allows("admin")

    key = verify_api_key(store.engine, created.secret, clock=lambda: 200.0)
    assert key is not None and key.id == created.key.id
    # last_used_at is written at most once a minute.
    verify_api_key(store.engine, created.secret, clock=lambda: 230.0)
    assert list_api_keys(store.engine)[0].last_used_at == 200.0
    verify_api_key(store.engine, created.secret, clock=lambda: 261.0)
    assert list_api_keys(store.engine)[0].last_used_at == 261.0

    assert verify_api_key(store.engine, created.secret + "x") is None
    assert verify_api_key(store.engine, "") is None
    assert verify_api_key(store.engine, "il_" + "a" * 500) is None

    revoked = revoke_api_key(store.engine, created.key.id, clock=lambda: 300.0)
    assert revoked is not None and revoked.revoked_at == 300.0
    assert revoke_api_key(store.engine, created.key.id, clock=lambda: 400.0).revoked_at == 300.0
    assert verify_api_key(store.engine, created.secret) is None
    assert revoke_api_key(store.engine, 999) is None
    assert revoke_api_key(store.engine, 2**80) is None
    assert list_api_keys(store.engine, include_revoked=False) == []
    with pytest.raises(ValueError):
        create_api_key(store.engine, "x", "root")  # type: ignore[arg-type]
    store.close()
