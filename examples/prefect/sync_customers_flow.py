"""The Oro guide's `sync_customers` flow: extract, transform, load, run by Prefect.

interlink.yaml beside this file says where the customers come from, how they become Oro
customers and how to reach Oro's JSON:API (OAuth2 client credentials); `run_pipeline`
runs it as a Prefect task whose result and artifact are the run's counts.
"""

from pathlib import Path

from interlink.prefect import RunCounts, run_pipeline
from prefect import flow

CONFIG = Path(__file__).with_name("interlink.yaml")


@flow(name="sync-customers")
def sync_customers(full_refresh: bool = False) -> RunCounts:
    return run_pipeline("customers", config=CONFIG, full_refresh=full_refresh)


if __name__ == "__main__":
    print(sync_customers().summary())
