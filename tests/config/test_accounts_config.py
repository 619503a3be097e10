"""`account:` on pipelines: only for sources whose connection has accounts (oauth2), a
valid name or '*', and '*' into an SQL table only when the table names {account}."""

from __future__ import annotations

import pytest

from interlink.config import parse_config
from interlink.errors import ConfigError

_BASE = """
connections:
  shop:
    base_url: https://shop.example.com
    auth: {auth}
resources:
  shop:
    customers: {{path: /customers}}
pipelines:
  p:
    source: shop.customers
    destination: {{sql: {table}}}
    account: {account}
"""
_OAUTH = "{type: oauth2, token_url: 'https://shop.example.com/token', client_id: c}"


def _parse(auth: str = _OAUTH, table: str = "customers", account: str = "acme") -> None:
    parse_config(_BASE.format(auth=auth, table=table, account=account), file="interlink.yaml")


def test_a_valid_account_and_a_templated_table_load() -> None:
    _parse(account="acct_1001")
    _parse(table="'customers_{account}'", account="'*'")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"auth": "{type: bearer, token: t}"}, "pipelines.p.account: the source's connection"),
        ({"account": "'../x'"}, "expected an account name"),
        ({"account": "'*'"}, "the table must name {account}"),
        ({"table": "'c_{account}_{account}'"}, "may appear once"),
    ],
)
def test_what_cannot_work_is_one_line(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _parse(**kwargs)
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert str(raised.value).startswith("interlink.yaml:")
