"""The interlink.yaml the whole-process benchmarks run: the local shop's customers into a
table (extract_load.py, pg_load.py, startup.py)."""

from __future__ import annotations

__all__ = ["shop_config"]

_TEMPLATE = """\
database: {database}

connections:
  shop:
    base_url: {base}
    auth:
      type: bearer
      token: {token}

resources:
  shop:
    customers:
      path: /customers
      records: data
      paginate: {{type: offset, page_size: {page_size}}}
{incremental}
pipelines:
  customers:
    source: shop.customers
    destination: {{sql: customers}}
{write}"""


def shop_config(
    database: str,
    base: str,
    token: str,
    *,
    page_size: int = 1000,
    write: str | None = None,
    incremental: bool = False,
    lag: str | None = None,
) -> str:
    """The config text: `database` a URL, `write` the pipeline's write mode (None: the
    default), `incremental` reads by `updated_at` through `updated_since` (with
    `incremental.lag` when `lag` is given)."""
    lag_item = f", lag: {lag}" if lag else ""
    return _TEMPLATE.format(
        database=database,
        base=base,
        token=token,
        page_size=page_size,
        incremental=f"      incremental: {{field: updated_at, param: updated_since{lag_item}}}\n"
        if incremental
        else "",
        write=f"    write: {write}\n" if write else "",
    )
