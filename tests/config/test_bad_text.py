"""Text the YAML reader refuses is one line naming the file and the line, never a traceback.

See issue 11, section 2: a NUL byte in interlink.yaml gave a traceback from PyYAML's reader.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from interlink.config import load_config
from interlink.errors import ConfigError


def refused(tmp_path: Path, raw: bytes) -> str:
    path = tmp_path / "interlink.yaml"
    path.write_bytes(raw)
    with pytest.raises(ConfigError) as info:
        load_config(path, env={})
    line = str(info.value)
    assert "\n" not in line
    assert line.startswith(f"{path}:"), line
    return line.removeprefix(f"{path}:")


def test_a_nul_byte_names_its_line_and_column(tmp_path):
    line = refused(tmp_path, b'database: "sqlite:///x.db"\nconnections:\n  a\x00b: 1\n')
    assert line == (
        "3: invalid YAML: a control character (\\x00) at column 4; YAML text cannot contain it"
    )


@pytest.mark.parametrize("char", [b"\x07", b"\x08", b"\x1b", b"\x7f"])
def test_other_control_characters(tmp_path, char):
    line = refused(tmp_path, b"connections:\n  shop:\n    base_url: 'http://x" + char + b"'\n")
    code = f"\\x{char[0]:02x}"
    assert line == (
        f"3: invalid YAML: a control character ({code}) at column 24; YAML text cannot contain it"
    )


def test_a_non_character_is_refused_like_a_control_character(tmp_path):
    line = refused(tmp_path, "a: 1\nb: '\ufffe'\n".encode())
    assert line == (
        "2: invalid YAML: a character that is not allowed (U+FFFE) at column 5; "
        "YAML text cannot contain it"
    )


def test_a_nul_in_a_quoted_escape_is_refused_with_its_key(tmp_path):
    # `"\0"` is YAML's own escape for NUL: the reader accepts it, the value carries it.
    line = refused(tmp_path, b'connections: {}\ndatabase: "sqlite:///a\\0b.db"\n')
    assert line == "2: database: the value contains a NUL character (\\0); remove it"


def test_a_nul_in_a_key_is_refused(tmp_path):
    line = refused(tmp_path, b'connections:\n  "sh\\0op": {base_url: "http://x"}\n')
    assert line == "2: connections: a key contains a NUL character (\\0); remove it"


def test_invalid_utf8(tmp_path):
    line = refused(tmp_path, b'connections:\n  shop:\n    base_url: "http://x\xff"\n')
    assert line == "3: not UTF-8 text (bad byte at offset 44)"


def test_a_tab_in_indentation(tmp_path):
    line = refused(tmp_path, b"connections:\n\tshop:\n    base_url: http://x\n")
    assert line.startswith("2: invalid YAML: found character '\\t' that cannot start any token")
    assert line.endswith("; indent with spaces, not tabs")


def test_an_unterminated_quote(tmp_path):
    line = refused(tmp_path, b'connections:\n  shop:\n    base_url: "http://x\n')
    assert line.startswith("4: invalid YAML: found unexpected end of stream")
    assert "while scanning a quoted scalar on line 3" in line


@pytest.mark.parametrize("opening", ["[", "{a: "])
def test_nesting_too_deep_for_the_parser(tmp_path, opening):
    closing = "]" if opening == "[" else "}"
    text = "connections: " + opening * 5000 + "1" + closing * 5000 + "\n"
    line = refused(tmp_path, text.encode())
    assert line.startswith("1: invalid YAML: nested too deeply (more than 100 levels) (column ")
