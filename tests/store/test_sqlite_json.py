"""A JSON value that is a bare number reads back from SQLite.

SQLite gives a column declared `JSON` NUMERIC affinity: the text "1234" the JSON type writes
is stored as the integer 1234, and the JSON type's reader (orjson.loads) then refuses it.
A pipeline whose incremental cursor is a number (an id, an epoch) could not load its state.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from interlink.store import Store
from interlink.store._schema import state


@pytest.mark.parametrize("cursor", [1234, 12.5, 0])
def test_a_numeric_cursor_reads_back_on_sqlite(tmp_path, cursor):
    store = Store.open(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        with store.transaction() as conn:
            conn.execute(sa.insert(state).values(pipeline="orders", cursor=cursor, updated_at=1.0))
        assert store.load_state("orders").cursor == cursor
    finally:
        store.close()
