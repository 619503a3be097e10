"""A pipeline cannot write into interlink's own tables, or the database's.

See issue 11, section 2: `destination: {sql: interlink_api_keys}` passed the config, then the
run added columns to the API key table and failed with a traceback.
"""

from __future__ import annotations

import pytest

from interlink.config import DestinationConfig, parse_config
from interlink.errors import ConfigError

CONFIG = """\
connections:
  shop: {base_url: "http://127.0.0.1:9"}
resources:
  shop:
    customers: {path: /customers}
pipelines:
  copy:
    source: shop.customers
    destination: {destination}
"""


@pytest.mark.parametrize(
    "table",
    [
        "interlink_api_keys",
        "interlink_runs",
        "INTERLINK_jobs",
        "Interlink_Anything",
        "interlink_",
        "alembic_version",
        "ALEMBIC_VERSION",
        "sqlite_master",
        "sqlite_sequence",
        "SQLite_stat1",
        "pg_class",
        "PG_anything",
        "procrastinate_jobs",
    ],
)
@pytest.mark.parametrize("form", ["{{sql: {table}}}", "sql:{table}"])
def test_reserved_table_names_are_refused(table, form):
    text = CONFIG.replace("{destination}", form.format(table=table))
    with pytest.raises(ConfigError) as info:
        parse_config(text, file="interlink.yaml", env={})
    lines = [str(e) for e in vars(info.value)["errors"]]
    assert lines == [
        f"interlink.yaml:9: pipelines.copy.destination: {table!r} is a reserved name "
        "(tables starting with interlink_, sqlite_, pg_ or procrastinate_, and "
        "alembic_version, belong to interlink or the database); choose another table"
    ]


@pytest.mark.parametrize(
    "table", ["customers", "my_interlink_copy", "interlinked", "pgsql_rows", "sqlite", "pg"]
)
def test_names_that_only_look_alike_are_fine(table):
    assert DestinationConfig.model_validate({"sql": table}).sql == table
