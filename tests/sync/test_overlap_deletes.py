"""A full read with `deletes:` over a list that changes while it is read (`_overlap`).

Records removed from before the offset and as many created at the end between two pages
used to make a read that ended "complete" one page boundary short: the records that
slipped past it were then deleted by absence from the destination although the source
still has them. Against a real server on 127.0.0.1 and a real SQLite file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from interlink.config import InterlinkConfig
from interlink.connectors import Catalog
from interlink.errors import IncompleteReadError
from interlink.sandbox import SandboxServer
from interlink.store import Store
from interlink.sync import RunResult, run_pipeline
from tests.connectors.test_overlap import ChangingList, _churn, items_config


def _config(url: str, database: str, overlap: int | None) -> InterlinkConfig:
    paginate = {} if overlap is None else {"overlap": overlap}
    pipeline = {"source": "api.items", "destination": "sql:items", "deletes": "hard"}
    return InterlinkConfig.model_validate(
        {**items_config(url, **paginate), "database": database, "pipelines": {"p": pipeline}}
    )


def _run(cfg: InterlinkConfig, store: Store) -> RunResult:
    async def go() -> RunResult:
        async with Catalog(cfg) as catalog:
            return await run_pipeline(cfg, "p", store=store, catalog=catalog)

    return asyncio.run(go())


def _ids(store: Store) -> set[int]:
    with store.engine.connect() as conn:
        return {int(r[0]) for r in conn.exec_driver_sql("SELECT id FROM items")}


@pytest.mark.parametrize("overlap", [None, 0])
def test_a_read_the_list_moved_under_deletes_nothing_the_source_has(
    tmp_path: Path, overlap: int | None
) -> None:
    source = ChangingList()
    with SandboxServer(source.app()) as server:
        cfg = _config(server.url, f"sqlite:///{tmp_path / 'state.db'}", overlap)
        store = Store.open(cfg.database)
        try:
            assert _run(cfg, store).ok
            assert _ids(store) == set(range(1, 61))
            source.changes = {source.served + 1: lambda: _churn(source)}
            if overlap is None:  # the default asks back: the read stops, nothing deleted
                with pytest.raises(IncompleteReadError, match="no longer began"):
                    _run(cfg, store)
                assert _ids(store) >= set(range(1, 61))
            else:  # the fault, shown: rows of records the source has are deleted
                assert _run(cfg, store).ok
                at_source = {r["id"] for r in source.items}
                assert at_source - _ids(store) == {11, 12, 13}
        finally:
            store.close()
    assert source.changed == 1
