"""Fuzz the OpenAPI document with schemathesis: no 5xx, every answer as documented.

Every default check of schemathesis 4 runs (not_a_server_error, response schema, status
code and content type conformance, negative data rejected, positive data accepted,
missing auth refused, unsupported methods answered 405 with Allow), with an admin key,
30 examples per operation.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from interlink.jobs import open_queue
from interlink.server import OPENAPI_URL, create_app
from interlink.store import Store, create_api_key

from .conftest import make_config

# schemathesis' pytest integration builds one test per operation when the module is
# collected, so the app (on a temporary SQLite file) is made here, closed by `_cleanup`.
_DIR = Path(tempfile.mkdtemp(prefix="interlink-fuzz-"))
_CONFIG = make_config(
    f"sqlite:///{_DIR / 'fuzz.db'}",
    # Limits high enough that fuzzing is never throttled; 429 has its own tests.
    server={"rate_limits": {"POST /jobs": "1000000/min", "default": "1000000/min"}},
)
_STORE = Store.open(_CONFIG.database)
_QUEUE = open_queue(_CONFIG, _STORE)
APP = create_app(_CONFIG, store=_STORE, queue=_QUEUE)
KEY = create_api_key(_STORE.engine, "fuzzer", "admin").secret

schema = schemathesis.openapi.from_asgi(OPENAPI_URL, APP)


@schema.auth(refresh_interval=None)
class _AdminKey:
    def get(self, case, context):
        return KEY

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@pytest.fixture(scope="module", autouse=True)
def _cleanup():
    yield
    _QUEUE.close()
    _STORE.close()
    shutil.rmtree(_DIR, ignore_errors=True)


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_api_answers_as_documented(case):
    case.call_and_validate()
