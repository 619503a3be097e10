"""examples/prefect runs: the Oro guide's customer sync as a Prefect flow, against the
sandbox's shop (the source system) and commerce (Oro's JSON:API behind OAuth2)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from prefect.settings import PREFECT_API_URL

from .conftest import commerce_customers

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prefect"


def _load_flow_module():
    spec = importlib.util.spec_from_file_location(
        "sync_customers_flow", EXAMPLE / "sync_customers_flow.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_flow_file_is_about_a_dozen_lines_of_code():
    code = [
        line
        for line in (EXAMPLE / "sync_customers_flow.py").read_text().split('"""')[-1].splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert len(code) <= 12, code


def test_the_example_flow_syncs_the_customers_into_the_json_api_target(
    sandbox, tmp_path, monkeypatch
):
    monkeypatch.setenv("SOURCE_URL", f"{sandbox}/shop")
    monkeypatch.setenv("ORO_URL", f"{sandbox}/commerce")
    monkeypatch.setenv("INTERLINK_DATABASE_URL", f"sqlite:///{tmp_path / 'example.db'}")
    counts = _load_flow_module().sync_customers()
    assert counts.ok and (counts.read, counts.created) == (120, 120)
    people = commerce_customers(sandbox)
    assert len(people) == 120
    assert {p["attributes"]["external_id"] for p in people} == {
        f"source-{n}" for n in range(1, 121)
    }

    # As a user runs it: `python sync_customers_flow.py`, reporting to the Prefect server.
    # Incremental: the second run reads from the cursor on (the last change, unchanged).
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    done = subprocess.run(
        [sys.executable, str(EXAMPLE / "sync_customers_flow.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert summary.startswith("customers: succeeded, ") and "created" not in summary, summary
    assert len(commerce_customers(sandbox)) == 120
