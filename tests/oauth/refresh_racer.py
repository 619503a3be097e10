"""One process of the cross-process refresh race (tests/oauth/test_restart.py).

`python refresh_racer.py CONFIG START` loads CONFIG, opens the vault-backed catalog, waits
until the wall clock reads START (every racer imported and ready by then), then sends five
requests at once through the `provider` connection. Exit 0 when all five were answered.
"""

from __future__ import annotations

import asyncio
import sys
import time

from interlink.config import load_config
from interlink.oauth import open_catalog
from interlink.store import Store


async def main(path: str, start: float) -> int:
    config = load_config(path)
    store = Store.open(config.database)
    try:
        async with open_catalog(config, store) as catalog:
            client = catalog.client("provider")
            await asyncio.sleep(max(start - time.time(), 0))
            answers = await asyncio.gather(*(client.request("GET", "/me") for _ in range(5)))
            return 0 if all(a.status_code == 200 for a in answers) else 1
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], float(sys.argv[2]))))
