"""An incremental `append` run against a table with years of history: the window lookups.

An incremental read of an append table meets again the records from its cursor to the
highest value the read before saw, and appends each only when the table holds no
identical row: one lookup a record (docs/pipelines.md). Here every record is in every
window: the sandbox shop's customers are dated 2022 and the pipeline's `incremental.lag`
is longer than their age, so no cursor is ever stored and each run reads all --records
of them again and looks each one up (a young source, or a long lag, does the same).

Set-up, not timed: the first run appends the records; then --history rows of earlier
versions (default 1,000,000) are put in the table before them, as a table that has
appended for years holds them (the last read's rows are its newest). Timed, as whole
`interlink run` processes: the first run that looks (it makes the index on the cursor
column, `interlink_cursor_customers`), then the median of --rounds runs after it. Each
run must append nothing (every record unchanged).

With `--baseline OTHER/src` (`git archive REV src | tar -x -C DIR`) the same runs with
that interlink's source first on PYTHONPATH, on its own copy of the table: an A/B in one
run, and the ratio of the medians.

Then what the index costs the appends, on SQLite alone (in this process, 7 rounds,
medians): --insert-rows rows (100,000) of ten columns appended 100 to an INSERT, a
transaction per 1,000, into a fresh WAL table with and without an index on
`updated_at`, the rows in `updated_at` order and shuffled.

    .venv/bin/python benchmarks/append_window.py [--records 300] [--history 1000000]
        [--rounds 5] [--baseline OTHER/src] [--insert-rows 100000]
"""

from __future__ import annotations

import argparse
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from itertools import chain
from pathlib import Path

from _process import compiled_env, run_measured
from _shop_config import shop_config
from extract_load import TOKEN, Server

LAG = "3650d"
"""Longer than the sandbox records' age: every record lies past every read's signpost."""


def _run(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    with tempfile.TemporaryFile() as output:
        measured = run_measured(argv, cwd=cwd, env=env, stdout=output, stderr=output)
        if measured.code != 0:
            output.seek(0)
            text = output.read().decode(errors="replace")[-3000:]
            raise SystemExit(f"{argv} exited with {measured.code}:\n{text}")
    return measured.wall


def _add_history(db: Path, rows: int) -> int:
    """Put `rows` earlier versions of the records before the ones the first run appended;
    returns the table's row count."""
    with sqlite3.connect(db) as conn:
        columns = [r[1] for r in conn.execute("PRAGMA table_info(customers)")]
        names = ", ".join(f'"{c}"' for c in columns)
        conn.execute(f"CREATE TEMP TABLE latest AS SELECT {names} FROM customers")
        (count,) = conn.execute("SELECT count(*) FROM latest").fetchone()
        conn.execute("DELETE FROM customers")
        at = columns.index("updated_at")
        select = ", ".join(
            "'2019-01-01T00:00:00Z'" if i == at else f'"{c}"' for i, c in enumerate(columns)
        )
        # Earlier versions: the same records, each dated before any the API now has.
        for start in range(0, rows, count):
            take = min(count, rows - start)
            conn.execute(
                f"INSERT INTO customers ({names}) SELECT {select} FROM latest LIMIT {take}"
            )
        conn.execute(f"INSERT INTO customers ({names}) SELECT {names} FROM latest")
        (total,) = conn.execute("SELECT count(*) FROM customers").fetchone()
    return int(total)


def _check(db: Path, expected: int, who: str) -> None:
    with sqlite3.connect(db) as conn:
        (total,) = conn.execute("SELECT count(*) FROM customers").fetchone()
    if total != expected:
        raise SystemExit(f"{who}: the table has {total:,} rows, expected {expected:,}")


def _insert_cost(rows: int, rounds: int = 7) -> dict[str, float]:
    """Median seconds to append `rows` rows, by (index, order)."""
    stamps = [
        f"2024-{1 + n % 12:02}-{1 + n % 28:02}T{n % 24:02}:{n % 60:02}:00Z" for n in range(rows)
    ]
    data = [(n, f"user{n}@example.com", f"Name {n}", "x" * 30, stamps[n]) for n in range(rows)]
    ordered = sorted(data, key=lambda row: row[4])
    shuffled = data[:]
    random.Random(42).shuffle(shuffled)
    per = 100
    insert = "INSERT INTO t (id, email, name, notes, updated_at) VALUES " + ", ".join(
        ["(?, ?, ?, ?, ?)"] * per
    )
    cases = {
        (indexed, order): batch
        for indexed in (False, True)
        for order, batch in (("cursor order", ordered), ("random order", shuffled))
    }
    times: dict[tuple[bool, str], list[float]] = {case: [] for case in cases}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(rounds):
            for (indexed, order), batch in cases.items():
                path = Path(folder) / "insert.db"
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                conn = sqlite3.connect(path, isolation_level=None)
                conn.execute("PRAGMA journal_mode=WAL")
                conn.execute("PRAGMA synchronous=NORMAL")
                conn.execute(
                    "CREATE TABLE t (id INTEGER, email TEXT, name TEXT, notes TEXT, "
                    "updated_at TEXT)"
                )
                if indexed:
                    conn.execute("CREATE INDEX t_updated_at ON t (updated_at)")
                started = time.perf_counter()
                for page in range(0, len(batch), 1000):
                    conn.execute("BEGIN")
                    chunk = batch[page : page + 1000]
                    for at in range(0, len(chunk) - per + 1, per):
                        conn.execute(insert, tuple(chain.from_iterable(chunk[at : at + per])))
                    conn.execute("COMMIT")
                times[(indexed, order)].append(time.perf_counter() - started)
                conn.close()
    return {
        f"{'with' if indexed else 'without'} the index, {order}": statistics.median(walls)
        for (indexed, order), walls in times.items()
    }


def _interlink() -> list[str]:
    script = Path(sys.executable).parent / "interlink"
    return [str(script)] if script.exists() else [sys.executable, "-m", "interlink"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=300)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--baseline", type=Path, help="the src/ folder of another interlink")
    parser.add_argument("--insert-rows", type=int, default=100_000, help="0: skip that part")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="append-window-bench-"))
    try:
        envs = {"interlink": compiled_env(work / "pycache")}
        if args.baseline:
            envs["baseline"] = compiled_env(work / "pycache-baseline", source=args.baseline)
        first: dict[str, float] = {}
        after: dict[str, list[float]] = {name: [] for name in envs}
        with Server(args.records, cache_pages=False) as server:
            setups: dict[str, tuple[list[str], Path, int]] = {}
            for name, env in envs.items():
                folder = work / name
                folder.mkdir()
                db = folder / "interlink.db"
                config = folder / "interlink.yaml"
                config.write_text(
                    shop_config(
                        f"sqlite:///{db}",
                        server.base,
                        TOKEN,
                        incremental=True,
                        lag=LAG,
                        write="append",
                    )
                )
                argv = [*_interlink(), "run", "customers", "--config", str(config)]
                _run(argv, env, folder)  # appends every record
                total = _add_history(db, args.history)
                setups[name] = (argv, folder, total)
            for name, (argv, folder, total) in setups.items():
                first[name] = _run(argv, envs[name], folder)
                _check(folder / "interlink.db", total, name)
            for round_number in range(args.rounds):
                names = list(setups)
                shift = round_number % len(names)
                for name in names[shift:] + names[:shift]:
                    argv, folder, total = setups[name]
                    after[name].append(_run(argv, envs[name], folder))
                    _check(folder / "interlink.db", total, name)
        print(
            f"# append_window: {platform.machine()}, {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}; {args.records:,} records looked up a run "
            f"in a table of {args.history + args.records:,} rows; median of {args.rounds}"
        )
        print(f"{'contender':<12} {'first look s':>13} {'next runs s':>12} {'min-max':>14}")
        for name, walls in after.items():
            span = f"{min(walls):.3f}-{max(walls):.3f}"
            print(f"{name:<12} {first[name]:>13.3f} {statistics.median(walls):>12.3f} {span:>14}")
        if args.baseline:
            ratio = statistics.median(after["baseline"]) / statistics.median(after["interlink"])
            print(f"next runs, baseline / interlink: {ratio:.1f}x")
        if args.insert_rows:
            print(f"\nappending {args.insert_rows:,} rows on SQLite, median of 7:")
            for case, wall in _insert_cost(args.insert_rows).items():
                print(f"  {case:<36} {wall * 1000:8.1f} ms")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
