"""Every path into a response body is checked when the config loads, as `records` was.

Before, a JMESPath that does not compile in a paginator, `incremental.field` or `error`
passed `interlink check`, then `interlink run` died with a jmespath traceback.
"""

from __future__ import annotations

import pytest

from interlink.config import parse_config
from interlink.errors import ConfigError

BAD = "a[?"

CONFIG = """\
connections:
  shop: {{base_url: "http://127.0.0.1:9"}}
resources:
  shop:
    customers:
      path: /customers
      {setting}
"""

SETTINGS = {
    "records": (f'records: "{BAD}"', "records"),
    "offset total": (f'paginate: {{type: offset, total_path: "{BAD}"}}', "paginate.total_path"),
    "page total": (f'paginate: {{type: page, total_path: "{BAD}"}}', "paginate.total_path"),
    "page total pages": (
        f'paginate: {{type: page, total_pages_path: "{BAD}"}}',
        "paginate.total_pages_path",
    ),
    "cursor": (f'paginate: {{type: cursor, cursor_path: "{BAD}"}}', "paginate.cursor_path"),
    "cursor total": (f'paginate: {{type: cursor, total_path: "{BAD}"}}', "paginate.total_path"),
    "next url": (f'paginate: {{type: next_url, next_path: "{BAD}"}}', "paginate.next_path"),
    "link total": (
        f'paginate: {{type: link_header, total_path: "{BAD}"}}',
        "paginate.total_path",
    ),
    "relay": (f'paginate: {{type: relay, path: "{BAD}"}}', "paginate.path"),
    "incremental": (f'incremental: {{field: "{BAD}"}}', "incremental.field"),
    "error path": (f'error: {{path: "{BAD}"}}', "error.path"),
    "error message": (f'error: {{message_path: "{BAD}"}}', "error.message_path"),
}


@pytest.mark.parametrize(("setting", "key"), SETTINGS.values(), ids=SETTINGS.keys())
def test_a_path_that_does_not_compile_is_a_config_error(setting, key):
    with pytest.raises(ConfigError) as info:
        parse_config(CONFIG.format(setting=setting), file="interlink.yaml", env={})
    lines = [str(e) for e in vars(info.value)["errors"]]
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"interlink.yaml:7: resources.shop.customers.{key}: "
        f"expected a dotted path or JMESPath expression; got '{BAD}'"
    ), lines[0]


@pytest.mark.parametrize("path", ["data", "data.items", "items[0].id", "data[?active].id", "a-b"])
def test_good_paths_load(path):
    setting = f'paginate: {{type: cursor, cursor_path: "{path}"}}'
    config = parse_config(CONFIG.format(setting=setting), file="interlink.yaml", env={})
    assert config.resources["shop"]["customers"].paginate.cursor_path == path  # type: ignore[union-attr]
