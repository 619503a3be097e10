"""interlink's schema migrations (Alembic): `env.py` and one revision per schema change in
`versions/`.

Nobody runs these with the `alembic` command: `store._migrate` builds Alembic's config in
code, hands it the connection that holds the schema lock, and runs `upgrade` (on open for
SQLite, with `interlink db upgrade` for PostgreSQL). A new revision is written by hand
beside the others: its `down_revision` is the newest one, it makes the same change as the
edit to `store/_schema.py`, and `SCHEMA_VERSION` in `store/_revision.py` becomes its
number.
"""
