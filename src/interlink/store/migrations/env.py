"""Alembic's environment for interlink's tables: runs the revisions on the connection
`store._migrate` passes in `config.attributes["connection"]`, inside its transaction."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from interlink.store._migrate import VERSION_TABLE
from interlink.store._schema import metadata

connection = context.config.attributes.get("connection")
if not isinstance(connection, sa.Connection):
    raise RuntimeError(
        "interlink's migrations run through `interlink db upgrade` (or on open for SQLite), "
        "which passes them a connection; not through the alembic command"
    )

context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    # SQLite alters a table by copying it; Alembic's batch mode does that for us.
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
