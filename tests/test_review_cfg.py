"""A hostile review of configuration (.env, `${file:}`, did-you-mean, cron) and of verbose
logging (`-v`, masking, `check`): each test here failed on the code as it was reviewed
(commits 7ee2625 and cac13f9) and names what it caught."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli._logging import configure_logging, hoist_global_options
from interlink.cli._render_check import next_run
from interlink.cli.main import app
from interlink.config import check_cron, load_config
from interlink.config._dotenv import MAX_DOTENV, read_dotenv
from interlink.config._messages import is_secret_name, scrub
from interlink.errors import ConfigError
from interlink.http import Redactor
from interlink.jobs._schedules import latest_tick

# A JWT-like secret longer than the 60 characters an echoed value is cut to.
LONG_SECRET = "eyJhbGciOiJIUzI1NiJ9." + "q7Z" * 27 + ".sig-4f2a"
PASSWORD = "p@ss-w0rd-xyz"


def _errors(path: Path, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, env=env or {})
    return "\n".join(str(e) for e in info.value.errors)


# --- secrets in config errors --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("retry: {max_attempts: VALUE}", "whole number"),
        ("transport: VALUE", "one of"),
        ("max_connections: VALUE", "whole number"),
    ],
)
@pytest.mark.parametrize("source", ["${file:jwt}", "${SHOP_TOKEN}"])
def test_a_long_secret_is_not_echoed_cut_short(tmp_path, key, value, source):
    """Was: a value longer than 60 characters was cut to 56 and then masked, so the mask
    (which looks for the whole secret) missed it and its first 56 characters showed."""
    (tmp_path / "jwt").write_text(LONG_SECRET + "\n")
    config = tmp_path / "interlink.yaml"
    config.write_text(
        "connections:\n  shop:\n    base_url: https://x.example.com\n"
        f"    {key.replace('VALUE', repr(source))}\n"
    )
    text = _errors(config, {"SHOP_TOKEN": LONG_SECRET})
    assert value in text
    assert LONG_SECRET[:12] not in text, text
    assert "***" in text


def test_an_unknown_type_from_a_secret_is_masked(tmp_path):
    """Was: an unknown `type:` skipped the masking every other message gets."""
    (tmp_path / "kind").write_text("bearer-secret-kind-77\n")
    config = tmp_path / "interlink.yaml"
    config.write_text(
        "connections:\n  shop:\n    base_url: https://x.example.com\n"
        "    auth: {type: '${file:kind}'}\n"
    )
    text = _errors(config)
    assert "auth.type" in text
    assert "bearer-secret-kind-77" not in text, text


@pytest.mark.parametrize("name", ["SMTP_PASS", "PGPASS", "DB_PWD", "SSH_PASSPHRASE", "SHOP_APIKEY"])
def test_common_password_variable_names_look_secret(tmp_path, name):
    """Was: `SMTP_PASS`, `DB_PWD`... were not secret-looking names, so a value from `.env`
    under them was echoed by an error about the key it was put in by mistake."""
    assert is_secret_name(name)
    (tmp_path / ".env").write_text(f"{name}=hunter2-horse-battery\n")
    config = tmp_path / "interlink.yaml"
    config.write_text(
        "connections:\n  shop:\n    base_url: https://x.example.com\n"
        f"    max_connections: '${{{name}}}'\n"
    )
    text = _errors(config)
    assert "hunter2" not in text, text


# --- a password with `@` in a URL ------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"https://bob:{PASSWORD}@api.example.com/v1",
        f"postgresql://app:{PASSWORD}@db:5432/app?sslmode=require",
        "https://bob:a@b@c@api.example.com",
    ],
)
def test_a_password_with_an_at_sign_is_masked_whole(url):
    """Was: the userinfo ended at the first `@`, so `p@ss-w0rd-xyz` showed as
    `***@ss-w0rd-xyz` (in `check`, in the base-URL hint of a connection error, and in the
    dashboard's connection list)."""
    shown = Redactor().url(url)
    assert shown.startswith(url.split(":")[0] + "://")
    assert re.search(r"://(bob|app):\*\*\*@(api\.example\.com|db:5432)", shown), shown
    assert "ss-w0rd" not in shown and "@c@" not in shown
    assert scrub(f"got {url!r}").count("***") == 1
    assert "ss-w0rd" not in scrub(f"got {url!r}")


def test_check_does_not_show_part_of_a_password_from_env(tmp_path):
    (tmp_path / ".env").write_text(f"API_PASS={PASSWORD}\n")
    config = tmp_path / "interlink.yaml"
    config.write_text(
        "connections:\n  shop:\n    base_url: https://bob:${API_PASS}@api.example.com\n"
    )
    result = CliRunner().invoke(app, ["check", "-c", str(config)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "bob:***@api.example.com" in result.stdout
    assert "ss-w0rd" not in result.stdout + result.stderr


# --- .env -------------------------------------------------------------------------------


def test_a_huge_dotenv_is_refused_without_reading_it_whole(tmp_path):
    """Was: `.env` was read whole whatever its size (a log file saved as `.env`, or a
    link to a device, took all memory)."""
    path = tmp_path / ".env"
    with path.open("w") as handle:
        handle.write("A=1\n" * (MAX_DOTENV // 4 + 10))
    with pytest.raises(ConfigError) as info:
        read_dotenv(path)
    assert "larger than" in str(info.value) and ".env" in str(info.value)


def test_dotenv_lines_are_counted_as_editors_count_them(tmp_path):
    """Was: `str.splitlines` also broke lines at U+2028, U+0085 and form feeds, so a value
    holding one was cut and the line numbers of later errors were off."""
    path = tmp_path / ".env"
    path.write_text("NOTE=a\u2028b\x0cc\u0085d\r\nbad line\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        read_dotenv(path)
    assert info.value.line == 2
    path.write_text("NOTE=a\u2028b\x0cc\u0085d\r\n", encoding="utf-8")
    assert read_dotenv(path) == {"NOTE": "a\u2028b\x0cc\u0085d"}


# --- cron -------------------------------------------------------------------------------


@pytest.mark.parametrize("cron", [" @daily", "@hourly ", "  */15 * * * *  "])
def test_a_schedule_with_spaces_around_is_one_the_scheduler_reads(cron):
    """Was: `' @daily'` passed the config check, then every scheduler tick raised."""
    accepted = check_cron(cron)
    latest_tick(accepted, 1_780_000_000.0)
    assert "cannot be computed" not in next_run(accepted, 1_780_000_000.0)


@pytest.mark.parametrize("cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"])
def test_a_schedule_that_never_comes_due_is_refused(cron):
    """Was: accepted; `check` said 'cannot be computed' and every scheduler tick raised,
    which also kept every other pipeline's schedule from being enqueued."""
    with pytest.raises(ValueError, match="never comes due"):
        check_cron(cron)


def test_a_leap_day_schedule_is_accepted():
    assert check_cron("0 0 29 2 *") == "0 0 29 2 *"


@pytest.mark.parametrize(
    "quartz", ["* * * * * *", "0 */5 * * * *", "*/10 * * * * ?", "0 0 12 ? * *", "0 0 0 * * *"]
)
def test_the_rewritten_schedule_in_a_refusal_is_itself_accepted(quartz):
    """Was: `* * * * * *` was refused with "write '* * * * * *'", the same refused text."""
    with pytest.raises(ValueError) as info:
        check_cron(quartz)
    suggested = re.findall(r"write '([^']+)'", str(info.value))
    assert suggested, str(info.value)
    for cron in suggested:
        assert check_cron(cron) == cron


def test_one_bad_schedule_does_not_stop_the_others(tmp_path):
    """Was: `Scheduler.tick` stopped at the first schedule that raised, so the pipelines
    after it were never enqueued."""
    from interlink.jobs import Scheduler, open_queue
    from interlink.store import Store

    config = tmp_path / "interlink.yaml"
    config.write_text(
        f"database: sqlite:///{tmp_path / 'state.db'}\n"
        "connections:\n  shop: {base_url: https://x.example.com}\n"
        "resources:\n  shop:\n    customers: {path: /customers}\n"
        "pipelines:\n"
        "  a: {source: shop.customers, destination: 'sql:a', schedule: '* * * * *'}\n"
        "  b: {source: shop.customers, destination: 'sql:b', schedule: '* * * * *'}\n"
    )
    loaded = load_config(config, env={})
    store = Store.open(loaded.database)
    try:
        queue = open_queue(loaded, store)
        scheduler = Scheduler(loaded, store, queue, clock=lambda: 1_780_000_000.0)
        scheduler.crons["a"] = "0 0 31 2 *"  # as if written before the check refused it
        scheduler.tick(1_780_000_000.0)
        enqueued = scheduler.tick(1_780_000_000.0 + 61)
        assert [job.pipeline for job in enqueued] == ["b"]
    finally:
        store.close()


# --- -v and --log-level ------------------------------------------------------------------


def test_log_level_without_its_value_says_so():
    """Was: `interlink check --log-level` answered "No such option: --log-level"."""
    assert hoist_global_options(["check", "--log-level"]) == ["--log-level=", "check"]
    result = CliRunner().invoke(app, ["check", "--log-level"], env={"COLUMNS": "200"})
    configure_logging(0, None, None)
    assert result.exit_code == 2
    assert "No such option" not in result.output
    assert "Invalid value for '--log-level'" in result.output
    assert "expected one of debug, info, warning, error" in result.output


# --- a secret `${VAR}` written into a URL -------------------------------------------------

APPID = "appid-0123456789abcdef"
URL_SECRET_CONFIG = """
connections:
  shop:
    base_url: {url}
resources:
  shop:
    customers:
      path: /customers?appid=${{SHOP_API_KEY}}
      records: data
"""


def _url_secret_project(tmp_path: Path, url: str) -> Path:
    (tmp_path / ".env").write_text(f"SHOP_API_KEY={APPID}\n")
    config = tmp_path / "interlink.yaml"
    config.write_text(URL_SECRET_CONFIG.format(url=url))
    return config


def test_check_masks_a_secret_variable_written_into_a_path(tmp_path):
    """Was: a `${SHOP_API_KEY}` in a query (`appid=`, a name the URL masking does not know)
    was masked in config errors but printed whole by `check`."""
    config = _url_secret_project(tmp_path, "https://shop.example.com")
    assert load_config(config).connections["shop"].secret_values == {APPID}
    result = CliRunner().invoke(app, ["check", "-c", str(config)], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    assert "/customers?appid=***" in result.stdout
    assert APPID not in result.stdout + result.stderr


def test_v_masks_a_secret_variable_written_into_a_path(tmp_path):
    """`-v` lines and the 404 hint printed the `${SHOP_API_KEY}` in the path whole."""
    from interlink.sandbox import SandboxServer, create_shop_app

    with SandboxServer(create_shop_app(records=3)) as server:
        config = _url_secret_project(tmp_path, server.url)
        result = CliRunner().invoke(
            app, ["-v", "read", "shop.customers", "-c", str(config), "-o", "jsonl"]
        )
    configure_logging(0, None, None)
    assert result.exit_code == 0, result.output
    assert "appid=***" in result.stderr
    assert APPID not in result.stdout + result.stderr


def test_a_masked_value_is_shown_masked_but_is_no_credential():
    """`Redactor.add_masked`: what a config secret in a path needs. As a credential
    (`add_secret`) it would be stripped from the links that carry it, and the request
    would go without it."""
    redactor = Redactor()
    redactor.add_masked(APPID)
    assert redactor.url(f"https://x.example.com/c?appid={APPID}") == (
        "https://x.example.com/c?appid=***"
    )
    assert redactor.headers([("x-echo", f"key {APPID}")]) == [("x-echo", "key ***")]
    assert not redactor.is_credential("appid", APPID)
    assert not redactor.holds_secret(f"/c?appid={APPID}")


def test_a_base_url_with_a_query_is_refused_naming_params(tmp_path):
    """`https://h/v1?appid=X` was accepted, then joined as `...?appid=X/items` (a 404)."""
    from interlink.config import load_config
    from interlink.errors import ConfigError

    path = tmp_path / "interlink.yaml"
    path.write_text("connections:\n  owm:\n    base_url: https://h.example/v1?appid=X\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    line = str(info.value)
    assert "connections.owm.base_url" in line and "params:" in line
    assert "appid=X" not in line or "***" in line


async def test_a_redirect_says_so_instead_of_not_json():
    """A 301 was taken for a success and reported as "the response is not JSON"."""
    import httpx

    from interlink.errors import ApiError
    from interlink.http import ApiClient

    def moved(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/items":
            return httpx.Response(301, headers={"location": "/v2/items?token=s3cret-tok"})
        return httpx.Response(304)

    async with ApiClient("https://api.example.com/v1", transport=httpx.MockTransport(moved)) as api:
        with pytest.raises(ApiError) as info:
            await api.get_json("/items")
        assert (await api.get("/other")).status_code == 304  # not a redirect to follow
    text = str(info.value)
    assert "HTTP 301 redirect to https://api.example.com/v2/items" in text
    assert "does not follow redirects" in text and "not JSON" not in text
    assert "s3cret-tok" not in text


async def test_user_and_password_in_base_url_are_basic_auth_on_every_page():
    """`https://ops:pw@host/api`: sent on page 1 only before (the next link's URL has no
    userinfo), and with aiohttp a raw traceback when an auth: was set too."""
    import base64

    import httpx

    from interlink.http import ApiClient

    seen: list[tuple[str, str | None]] = []

    def api(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.params.get("page") == "2":
            return httpx.Response(200, json=[{"id": 2}])
        link = '<https://warehouse.example/api/stock?page=2>; rel="next"'
        return httpx.Response(200, json=[{"id": 1}], headers={"link": link})

    async with ApiClient(
        "https://ops:p%40ss-w0rd@warehouse.example/api", transport=httpx.MockTransport(api)
    ) as client:
        await client.get("/stock")
        await client.get("https://warehouse.example/api/stock?page=2")
        assert "p@ss-w0rd" not in repr(client) and "p@ss-w0rd" not in client.base_url
        assert client.redactor.text("error: p@ss-w0rd") == "error: ***"
    expected = "Basic " + base64.b64encode(b"ops:p@ss-w0rd").decode()
    assert [auth for _, auth in seen] == [expected, expected]
    assert all("ops" not in url for url, _ in seen)


def test_user_and_password_in_base_url_beside_an_auth_is_refused(tmp_path):
    from interlink.config import load_config
    from interlink.errors import ConfigError

    path = tmp_path / "interlink.yaml"
    path.write_text(
        "connections:\n  wh:\n    base_url: https://ops:pw-123456@h.example/api\n"
        "    auth: {type: bearer, token: t0ken-abcdef}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    line = str(info.value)
    assert "connections.wh" in line and "give the credentials once" in line
    assert "pw-123456" not in line and "t0ken-abcdef" not in line
