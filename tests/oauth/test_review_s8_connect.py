"""Review of the connect flow's accounts (session 8, brief R5).

In-process `ConnectFlows` on a real SQLite file; the token endpoint is an
`httpx.MockTransport`, since what the provider answers is the point of each test.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from interlink.oauth import ConnectError, ConnectFlows, Vault, VaultTokenSource
from interlink.store import Store
from tests.oauth.test_review_13 import _config, _finish, _json, _started, _token_endpoint


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(f"sqlite:///{tmp_path / 'interlink.db'}")
    yield opened
    opened.close()


def _connect(tmp_path: Path, store: Store, account: str, answer: httpx.Response) -> object:
    flows = ConnectFlows(
        _config(tmp_path, account_key="stripe_user_id"), store, transport=_token_endpoint(answer)
    )
    return asyncio.run(_finish(flows, _started(flows, account=account)))


def _stored_access(store: Store, account: str) -> str | None:
    source = VaultTokenSource(store, Vault.open(store.engine), "provider", account=account)
    token = source.load_now()
    return None if token is None else token.access_token


def test_reconnecting_a_named_account_with_another_provider_account_is_refused(
    tmp_path: Path, store: Store
) -> None:
    """`acme` is the provider's acct_1001. Reconnecting `acme`, the user is signed in at
    the provider as acct_2002 (another customer's account): its tokens must not replace
    acme's, or every run of `acme` reads acct_2002's data into acme's tables."""
    _connect(tmp_path, store, "acme", _json(access_token="at-acme", stripe_user_id="acct_1001"))
    assert _stored_access(store, "acme") == "at-acme"
    with pytest.raises(ConnectError) as raised:
        _connect(
            tmp_path, store, "acme", _json(access_token="at-other", stripe_user_id="acct_2002")
        )
    assert raised.value.error == "account_mismatch"
    assert "acct_1001" in str(raised.value) and "acct_2002" in str(raised.value)
    assert _stored_access(store, "acme") == "at-acme"


def test_reconnecting_a_named_account_with_the_same_provider_account_replaces_it(
    tmp_path: Path, store: Store
) -> None:
    _connect(tmp_path, store, "acme", _json(access_token="at-1", stripe_user_id="acct_1001"))
    _connect(tmp_path, store, "acme", _json(access_token="at-2", stripe_user_id="acct_1001"))
    assert _stored_access(store, "acme") == "at-2"
