"""The smallest project a worker or a server runs: an SQLite database, quick polling."""

from __future__ import annotations

from pathlib import Path

CONFIG = """
database: sqlite:///{db}
jobs:
  poll_interval: 50ms
"""


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "interlink.yaml"
    path.write_text(CONFIG.format(db=tmp_path / "interlink.db"))
    return path
