"""One of the processes of the open race (tests/store/test_schema_race.py).

`python tests/store/race_opener.py DIR INDEX` reads the databases to open, one per round,
from DIR/urls.json. For each round it waits for DIR/go-ROUND, opens that round's database
with `Store.open` at the same moment as its siblings, adds an API key named after
itself, and writes DIR/done-ROUND-INDEX: "ok", or the error it got on one line.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from interlink.store import Store, create_api_key


def _wait_for(path: Path, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{path} never appeared")
        time.sleep(0.0005)


def main() -> None:
    folder, index = Path(sys.argv[1]), int(sys.argv[2])
    urls = json.loads((folder / "urls.json").read_text())
    (folder / f"ready-{index}").write_text("")
    for round_, url in enumerate(urls):
        _wait_for(folder / f"go-{round_}")
        try:
            store = Store.open(url)
            try:
                # Then write at once, while siblings may still be opening.
                create_api_key(store.engine, f"opener {index}")
            finally:
                store.close()
            outcome = "ok"
        except Exception as error:  # every failure is the finding: report it
            outcome = f"{type(error).__name__}: {' '.join(str(error).split())[:300]}"
        # Written aside, then renamed: the test never reads a half-written file.
        partial = folder / f"partial-{round_}-{index}"
        partial.write_text(outcome)
        partial.rename(folder / f"done-{round_}-{index}")


if __name__ == "__main__":
    main()
