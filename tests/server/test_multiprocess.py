"""Rate limits hold across server processes that share one database."""

from __future__ import annotations

import httpx
import yaml

from interlink.store import Store, create_api_key

from .serving import serve_processes


def test_two_server_processes_share_one_limit(tmp_path):
    database = tmp_path / "shared.db"
    config = tmp_path / "interlink.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "database": f"sqlite:///{database}",
                "server": {"rate_limits": {"GET /pipelines": "6/min"}},
            }
        )
    )
    store = Store.open(f"sqlite:///{database}")
    key = create_api_key(store.engine, "shared", "read").secret
    other = create_api_key(store.engine, "other", "read").secret
    store.close()

    with serve_processes(config, 2, "--no-worker") as servers:
        (first, _), (second, _) = servers
        assert first != second
        headers = {"Authorization": f"Bearer {key}"}
        answers = []
        with httpx.Client(timeout=10) as client:
            for turn in range(14):  # alternate between the two processes
                url = (first, second)[turn % 2]
                answers.append(client.get(f"{url}/pipelines", headers=headers))
            statuses = [r.status_code for r in answers]
            assert statuses.count(200) == 6, statuses
            assert statuses[:6] == [200] * 6 and set(statuses[6:]) == {429}
            # Both processes refused, each with the shared bucket's numbers.
            refused = [r for r in answers if r.status_code == 429]
            assert {r.json()["error"]["code"] for r in refused} == {"RATE_LIMITED"}
            assert all(int(r.headers["retry-after"]) >= 1 for r in refused)
            assert all(r.headers["ratelimit"].startswith("limit=6, remaining=0") for r in refused)
            # A second key is not held back by the first one's bucket.
            mine = {"Authorization": f"Bearer {other}"}
            assert client.get(f"{first}/pipelines", headers=mine).status_code == 200
            assert client.get(f"{second}/pipelines", headers=mine).status_code == 200
