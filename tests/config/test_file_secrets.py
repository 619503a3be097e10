"""`${file:PATH}`: a secret read from a file (Docker and Kubernetes secrets), relative to
interlink.yaml, masked like `${VAR}`, and never printed (issue 16, section 4)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from interlink.config import expand_env, load_config, load_config_source
from interlink.errors import ConfigError

SECRET = "s3cr3t-9d2f6b1a"


def write_config(tmp_path: Path, value: str, key: str = "token") -> Path:
    path = tmp_path / "interlink.yaml"
    path.write_text(
        "connections:\n"
        "  shop:\n"
        "    base_url: https://shop.example.com\n"
        f"    auth: {{type: bearer, {key}: '{value}'}}\n"
    )
    return path


def token_of(path: Path) -> str:
    auth = load_config(path, env={}).connections["shop"].auth
    return auth.token.get_secret_value()  # type: ignore[union-attr]


def error_of(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    lines = [str(e) for e in info.value.errors]
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    ("content", "value"),
    [
        (f"{SECRET}\n", SECRET),
        (f"{SECRET}\r\n", SECRET),
        (SECRET, SECRET),
        (f"{SECRET}\n\n", f"{SECRET}\n"),  # one line break is the file's end, not two
        (f"  {SECRET} \n", f"  {SECRET} "),
    ],
)
def test_the_file_is_read_relative_to_the_config_with_its_line_break_dropped(
    tmp_path, content, value
):
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "shop_token").write_bytes(content.encode())
    path = write_config(tmp_path, "${file:secrets/shop_token}")
    assert token_of(path) == value


def test_an_absolute_path_and_text_around_the_reference(tmp_path):
    secret = tmp_path / "run" / "token"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    path = write_config(tmp_path / "run", f"Bearer ${{file:{secret}}}!")
    assert token_of(path) == f"Bearer {SECRET}!"


def test_not_relative_to_the_working_directory(tmp_path, monkeypatch):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "token").write_text("right")
    (tmp_path / "token").write_text("wrong")
    monkeypatch.chdir(tmp_path)
    assert token_of(write_config(tmp_path / "conf", "${file:token}")) == "right"


def test_a_missing_file_is_one_line_with_config_line_key_and_path(tmp_path):
    path = write_config(tmp_path, "${file:secrets/shop_token}")
    assert error_of(path) == (
        f"{path}:4: connections.shop.auth.token: ${{file:secrets/shop_token}} "
        f"({tmp_path / 'secrets' / 'shop_token'}): no such file"
    )


def test_a_folder_is_refused(tmp_path):
    (tmp_path / "secrets").mkdir()
    path = write_config(tmp_path, "${file:secrets}")
    assert error_of(path).endswith(": is a folder, not a file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_refused(tmp_path):
    secret = tmp_path / "token"
    secret.write_text(SECRET)
    secret.chmod(0)
    path = write_config(tmp_path, "${file:token}")
    assert error_of(path).endswith(": cannot read the file: permission denied")


@pytest.mark.parametrize(
    ("content", "ending"),
    [
        (SECRET.encode() + b"\xff\xfe", ": not UTF-8 text"),
        (SECRET.encode() * 5000, ": larger than 64 KiB; ${file:PATH} reads a secret such as a "),
    ],
)
def test_what_cannot_be_a_secret_is_refused_without_its_content(tmp_path, content, ending):
    (tmp_path / "token").write_bytes(content)
    line = error_of(write_config(tmp_path, "${file:token}"))
    assert ending in line
    assert SECRET not in line


def test_an_empty_path_is_refused(tmp_path):
    line = error_of(write_config(tmp_path, "${file:}"))
    assert line.endswith(
        "connections.shop.auth.token: ${file:} names no file; expected ${file:PATH}"
    )


def test_file_values_are_masked_whatever_the_key_is_called(tmp_path):
    (tmp_path / "value").write_text(SECRET)
    path = tmp_path / "interlink.yaml"
    path.write_text("connections:\n  shop:\n    base_url: 'ftp://x/${file:value}'\n")
    with pytest.raises(ConfigError) as info:
        load_config_source(path, env={})
    assert SECRET not in str(info.value)
    assert "ftp://x/***" in str(info.value)


def test_file_values_are_the_sources_secrets(tmp_path):
    (tmp_path / "value").write_text(SECRET)
    path = write_config(tmp_path, "${file:value}")
    _, source = load_config_source(path, env={})
    assert SECRET in source.secrets
    located = source.locate(ConfigError(f"cannot use {SECRET}", key="connections.shop"))
    assert SECRET not in str(located)


def test_a_variable_named_file_with_a_default_is_still_a_variable():
    assert expand_env("${file:-fallback}", {}) == "fallback"
    assert expand_env("${file}", {"file": "v"}) == "v"


def test_escaped_file_reference_is_literal():
    assert expand_env("$${file:x}", {}) == "${file:x}"


def test_expand_env_reports_the_file_as_used(tmp_path):
    (tmp_path / "t").write_text("abc\n")
    used: list[tuple[str, str]] = []
    assert expand_env("${file:t}", {}, used=used, base_dir=tmp_path) == "abc"
    assert used == [("file:t", "abc")]
