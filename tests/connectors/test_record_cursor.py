"""The cursor paginator's options for Stripe-like lists: the cursor taken from the last
record (`cursor_field`) and a stop flag in the body (`stop_when`); pure, driven by hand,
then one whole read of the Stripe stand-in through a resource."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from interlink.config import InterlinkConfig, load_config
from interlink.connectors import Catalog, CursorPaginator, Fetched, RequestSpec, create_paginator
from interlink.errors import ConfigError, PaginationError
from interlink.sandbox import SandboxServer
from tests.connectors.api_shapes import stripe_app


def page(body) -> Fetched:
    request = httpx.Request("GET", "https://api.test/v1/customers")
    return Fetched(body, httpx.Response(200, request=request))


def stripe(ids, has_more) -> tuple[Fetched, list[dict]]:
    records = [{"id": i} for i in ids]
    return page({"object": "list", "data": records, "has_more": has_more}), records


STOP = {"path": "has_more", "equals": False}


def test_the_last_records_id_is_sent_as_starting_after():
    p = CursorPaginator(cursor_field="id", cursor_param="starting_after", stop_when=STOP)
    spec = RequestSpec("/v1/customers")
    p.init_request(spec)
    p.update_state(*stripe(["cus_1", "cus_2"], True))
    assert p.has_next_page
    p.update_request(spec)
    assert spec.params == {"starting_after": "cus_2"}
    assert p.state() == {"cursor": "cus_2"}
    p.update_state(*stripe(["cus_3"], False))
    assert not p.has_next_page and p.state() is None


def test_stop_when_ends_the_read_whatever_cursor_the_body_carries():
    p = CursorPaginator("next", stop_when={"path": "more", "equals": False})
    p.update_state(page({"data": [{"id": 1}], "next": "abc", "more": True}), [{"id": 1}])
    assert p.has_next_page and p.cursor == "abc"
    p.update_state(page({"data": [{"id": 2}], "next": "def", "more": False}), [{"id": 2}])
    assert not p.has_next_page


def test_stop_when_compares_the_type_too():
    # "false" the string, or 0, is not `false`: the read goes on by its cursor.
    p = CursorPaginator(cursor_field="id", stop_when=STOP)
    p.update_state(*stripe([1], "false"))
    assert p.has_next_page


def test_without_stop_when_an_empty_page_ends_a_record_cursor_read():
    p = CursorPaginator(cursor_field="id", cursor_param="starting_after")
    p.update_state(*stripe(["a"], True))
    assert p.has_next_page
    p.update_state(*stripe([], True))
    assert not p.has_next_page


def test_the_same_last_id_twice_stops_a_loop():
    p = CursorPaginator(cursor_field="id", cursor_param="starting_after")
    p.update_state(*stripe(["a", "b"], True))
    with pytest.raises(PaginationError, match="'b' twice"):
        p.update_state(*stripe(["a", "b"], True))


def test_a_record_cursor_read_is_not_guessed_ahead():
    p = CursorPaginator(cursor_field="id")
    fetched, _ = stripe(["a"], True)
    assert p.peek(fetched, RequestSpec("/v1/customers")) is None


def test_resume_from_a_record_cursor_checkpoint():
    p = CursorPaginator(cursor_field="id", cursor_param="starting_after", page_size=50)
    spec = RequestSpec("/v1/customers")
    p.restore({"cursor": "cus_9"}, spec)
    assert spec.params == {"limit": 50, "starting_after": "cus_9"}


def test_config_takes_the_new_options_and_checks_their_paths():
    config = InterlinkConfig.model_validate(
        {
            "connections": {"s": {"base_url": "https://api.test"}},
            "resources": {
                "s": {
                    "c": {
                        "path": "/v1/customers",
                        "paginate": {
                            "type": "cursor",
                            "cursor_field": "id",
                            "cursor_param": "starting_after",
                            "stop_when": {"path": "has_more"},
                        },
                    }
                }
            },
        }
    )
    paginate = config.resources["s"]["c"].paginate
    built = create_paginator(paginate)
    assert isinstance(built, CursorPaginator)
    built.update_state(*stripe(["x"], False))
    assert not built.has_next_page


def test_a_bad_stop_when_path_is_a_config_error(tmp_path):
    path = tmp_path / "interlink.yaml"
    path.write_text(
        "connections: {s: {base_url: 'https://api.test'}}\n"
        "resources:\n  s:\n    c:\n      path: /c\n"
        "      paginate: {type: cursor, stop_when: {path: 'a[?'}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert caught.value.errors[0].key == "resources.s.c.paginate.stop_when.path"


def test_a_whole_stripe_like_read_gets_every_record_once():
    with SandboxServer(stripe_app(57)) as server:
        config = InterlinkConfig.model_validate(
            {
                "connections": {"s": {"base_url": server.url}},
                "resources": {
                    "s": {
                        "customers": {
                            "path": "/v1/customers",
                            "records": "data",
                            "paginate": {
                                "type": "cursor",
                                "cursor_field": "id",
                                "cursor_param": "starting_after",
                                "page_size": 20,
                                "stop_when": {"path": "has_more", "equals": False},
                            },
                        }
                    }
                },
            }
        )

        async def read() -> list[list[str]]:
            async with Catalog(config) as catalog:
                pages = catalog.resource("s.customers").pages()
                return [[r["id"] for r in p.records] async for p in pages]

        pages = asyncio.run(read())
    assert [len(p) for p in pages] == [20, 20, 17]
    ids = [i for p in pages for i in p]
    assert ids == [f"cus_{i:04d}" for i in range(1, 58)]
