"""Metrics over a 1,000,000-row table: interlink against pandas, on SQLite and PostgreSQL.

The table holds 1,000,000 orders over the 90 days 2026-01-01 to 2026-03-31 (Berlin's DST
change on 03-29 inside), each with an epoch-seconds time, the same time as ISO-8601 text
(`2026-01-05T10:00:00Z`), one of 10 statuses and an amount. Two metrics are computed per
local day in Europe/Berlin, grouped by status: count, and sum(amount).

Contenders, in one run, interleaved, median of --rounds:
  interlink      `compute_metric` in the process (the aggregation runs in the database)
  pandas         `pandas.read_sql` of the columns it needs, then `to_datetime`,
                 `tz_convert`, the local date and `groupby(...).size()` / `.sum()`: the
                 load from the database is counted, as a user would wait for it
  whole process  `interlink metrics show NAME -o json` as a subprocess, against a
                 `python -c` that imports pandas and does the above: everything a user
                 waits for, start-up and imports included
Both are checked to give the same numbers before anything is timed. Target (issue 14):
interlink at least as fast as pandas (ratio >= 1.0x).

    .venv/bin/python benchmarks/metrics.py [--rows 1000000] [--rounds 3]
        [--backends sqlite,postgresql] [--postgres URL] [--columns epoch,text]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

HERE = Path(__file__).resolve()
ZONE = "Europe/Berlin"
START = datetime(2026, 1, 1, tzinfo=UTC)
DAYS = 90
STATUSES = [f"status_{n}" for n in range(10)]
FIRST, LAST = "2026-01-01", "2026-03-31"
TODAY = date(2026, 4, 1)


# -- the data --------------------------------------------------------------------------


def _rows(count: int) -> Any:
    rnd = random.Random(14)
    start = int(START.timestamp())
    for n in range(count):
        at = start + rnd.randrange(DAYS * 86_400)
        text = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
        yield n, at, text, STATUSES[rnd.randrange(10)], rnd.randrange(1, 100_000) / 100


def fill_sqlite(path: Path, count: int) -> str:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, created_epoch BIGINT, "
        "created_at TEXT, status TEXT, amount FLOAT)"
    )
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?)", _rows(count))
    conn.commit()
    conn.close()
    return f"sqlite:///{path}"


def fill_postgres(url: str, count: int) -> tuple[str, str]:
    import psycopg

    schema = f"bench_metrics_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".orders (id INTEGER PRIMARY KEY, created_epoch BIGINT, '
            "created_at TEXT, status TEXT, amount DOUBLE PRECISION)"
        )
        with conn.cursor().copy(
            f'COPY "{schema}".orders (id, created_epoch, created_at, status, amount) FROM STDIN'
        ) as copy:
            for row in _rows(count):
                copy.write_row(row)
        conn.execute(f'ANALYZE "{schema}".orders')
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options={quote(f'-csearch_path={schema}')}", schema


def drop_postgres(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


# -- interlink -------------------------------------------------------------------------


def metrics(column: str) -> dict[str, Any]:
    shared = {
        "source": "sql:orders",
        "time_field": column,
        "group_by": "status",
        "timezone": ZONE,
        "period": {"from": FIRST, "to": LAST},
    }
    return {"count": shared, "sum": {**shared, "op": "sum", "field": "amount"}}


def config_of(database: str, column: str) -> Any:
    from interlink.config import InterlinkConfig

    return InterlinkConfig.model_validate({"database": database, "metrics": metrics(column)})


def interlink_result(database: str, column: str, name: str) -> dict[tuple[str, str], float]:
    from interlink.metrics import compute_metric
    from interlink.store import Store

    config = config_of(database, column)
    store = Store.open(config.database)
    try:
        result = asyncio.run(compute_metric(config, store, name, today=TODAY)).to_dict()
    finally:
        store.close()
    return {
        (label, series["group"]): value
        for series in result["series"]
        for label, value in zip(result["labels"], series["values"], strict=True)
        if value
    }


# -- pandas ----------------------------------------------------------------------------


def pandas_result(database: str, column: str, name: str) -> dict[tuple[str, str], float]:
    """What a pandas user writes: load the columns, place each row in its local day, group."""
    import pandas as pd
    import sqlalchemy as sa

    engine = sa.create_engine(database.replace("postgresql://", "postgresql+psycopg://", 1))
    fields = "status" + (", amount" if name == "sum" else "")
    frame = pd.read_sql(f"SELECT {column}, {fields} FROM orders", engine)
    engine.dispose()
    if column == "created_epoch":
        instants = pd.to_datetime(frame[column], unit="s", utc=True)
    else:
        instants = pd.to_datetime(frame[column], format="ISO8601", utc=True)
    local = instants.dt.tz_convert(ZONE).dt.tz_localize(None).dt.normalize()
    frame["day"] = local
    frame = frame[(local >= FIRST) & (local <= LAST)]
    groups = frame.groupby(["day", "status"])
    found = groups.size() if name == "count" else groups["amount"].sum()
    return {(day.strftime("%Y-%m-%d"), status): value for (day, status), value in found.items()}


def pandas_process(database: str, column: str, name: str) -> float:
    started = time.perf_counter()
    command = [sys.executable, str(HERE), "--pandas-child", database, column, name]
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def interlink_process(config_file: Path, name: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, str(HERE), "--child", str(config_file), name],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def _child(config_file: str, name: str) -> None:
    """`interlink metrics show NAME -o json -c FILE`, as the console script runs it."""
    from interlink.__main__ import main

    sys.argv = ["interlink", "metrics", "show", name, "-o", "json", "-c", config_file]
    main()


# -- the run ---------------------------------------------------------------------------


def timed(function: Any, *args: Any) -> float:
    started = time.perf_counter()
    function(*args)
    return time.perf_counter() - started


def agree(ours: dict[Any, float], theirs: dict[Any, float]) -> None:
    assert set(ours) == set(theirs), (len(ours), len(theirs))
    for key, value in ours.items():
        assert abs(value - theirs[key]) <= 1e-6 * max(1.0, abs(value)), (key, value, theirs[key])


def bench(
    backend: str, database: str, columns: list[str], rounds: int, folder: Path
) -> list[tuple[str, float, float]]:
    ratios = []
    for column in columns:
        config_file = folder / f"{backend}-{column}.yaml"
        config_file.write_text(json.dumps({"database": database, "metrics": metrics(column)}))
        for name in ("count", "sum"):
            agree(interlink_result(database, column, name), pandas_result(database, column, name))
            ours: list[float] = []
            theirs: list[float] = []
            ours_process: list[float] = []
            theirs_process: list[float] = []
            for _ in range(rounds):
                ours.append(timed(interlink_result, database, column, name))
                theirs.append(timed(pandas_result, database, column, name))
                ours_process.append(interlink_process(config_file, name))
                theirs_process.append(pandas_process(database, column, name))
            kind = "epoch" if column == "created_epoch" else "text"
            for what, mine, other in (
                ("in process", ours, theirs),
                ("whole process", ours_process, theirs_process),
            ):
                a, b = statistics.median(mine), statistics.median(other)
                print(
                    f"{backend:<11} {kind:<6} {name:<6} {what:<14} {a:>9.3f} {b:>9.3f} "
                    f"{b / a:>7.2f}x  ({min(mine):.3f}-{max(mine):.3f} / "
                    f"{min(other):.3f}-{max(other):.3f})",
                    flush=True,
                )
                ratios.append((f"{backend} {kind} {name} {what}", a, b))
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--postgres", default=os.environ.get("INTERLINK_TEST_POSTGRES_URL"))
    parser.add_argument("--columns", default="epoch,text", help="time columns: epoch, text")
    parser.add_argument("--child", nargs=2, metavar=("CONFIG", "NAME"), help=argparse.SUPPRESS)
    parser.add_argument("--pandas-child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    if args.pandas_child:
        pandas_result(*args.pandas_child)
        return

    import pandas
    import sqlalchemy

    columns = [{"epoch": "created_epoch", "text": "created_at"}[c] for c in args.columns.split(",")]
    print(
        f"# metrics: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, SQLite {sqlite3.sqlite_version}, SQLAlchemy "
        f"{sqlalchemy.__version__}, pandas {pandas.__version__}; {args.rows:,} rows over "
        f"{DAYS} days, {len(STATUSES)} groups, per day in {ZONE}; median of {args.rounds} rounds"
    )
    header = (
        f"{'backend':<11} {'time':<6} {'op':<6} {'measured':<14} {'interlink':>9} "
        f"{'pandas':>9} {'ratio':>8}  (ranges, s)"
    )
    print(header)
    print("-" * len(header))
    folder = Path(tempfile.mkdtemp(prefix="interlink-bench-metrics-"))
    results: list[tuple[str, float, float]] = []
    backends = args.backends.split(",")
    if "sqlite" in backends:
        database = fill_sqlite(folder / "orders.db", args.rows)
        results += bench("sqlite", database, columns, args.rounds, folder)
    if "postgresql" in backends:
        if not args.postgres:
            print("postgresql skipped: give --postgres URL or INTERLINK_TEST_POSTGRES_URL")
        else:
            database, schema = fill_postgres(args.postgres, args.rows)
            try:
                results += bench("postgresql", database, columns, args.rounds, folder)
            finally:
                drop_postgres(args.postgres, schema)
    worst = min((b / a, label) for label, a, b in results) if results else None
    if worst is not None:
        verdict = "ok" if worst[0] >= 1.0 else "MISSED"
        print(f"# lowest ratio {worst[0]:.2f}x ({worst[1]}); target >= 1.0x: {verdict}")


if __name__ == "__main__":
    main()
