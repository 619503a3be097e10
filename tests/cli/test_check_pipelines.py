"""`interlink check` refuses what `interlink run` would refuse, with the file:line prefix.

See issue 11, section 2: check passed configs whose filter, field mapping or `call:` import
did not compile; run then refused them, without saying where in the file.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from interlink.cli.main import app

HEAD = """\
database: "sqlite:///{db}"
connections:
  shop: {{base_url: "http://127.0.0.1:9"}}
  soap: {{base_url: "http://127.0.0.1:9"}}
resources:
  shop:
    customers: {{path: /customers}}
    orders: {{path: /orders}}
  soap:
    people: {{type: soap, wsdl: "/x?wsdl", operation: List}}
pipelines:
"""

# Each: the pipeline (from line 12 on), the key path, the line, and words of the error.
CASES = {
    "filter syntax": (
        """\
        copy:
          source: shop.customers
          destination: "sql:customers"
          filter: status ==
        """,
        "pipelines.copy.filter",
        15,
        "invalid expression 'status =='",
    ),
    "filter arithmetic": (
        """\
        copy:
          source: shop.customers
          destination: "sql:customers"
          filter: "total * 2 > 10"
        """,
        "pipelines.copy.filter",
        15,
        "unsupported expression",
    ),
    "filter call import": (
        """\
        copy:
          source: shop.customers
          destination: "sql:customers"
          filter: {call: "no_such_module_x:keep"}
        """,
        "pipelines.copy.filter",
        15,
        "cannot import 'no_such_module_x'",
    ),
    "filter call attribute": (
        """\
        copy:
          source: shop.customers
          destination: "sql:customers"
          filter: {call: "os.path:no_such_function"}
        """,
        "pipelines.copy.filter",
        15,
        "has no attribute 'no_such_function'",
    ),
    "mapping template": (
        """\
        copy:
          source: shop.customers
          destination: "sql:customers"
          fields:
            id: id
            name: "{first_name"
        """,
        "pipelines.copy.fields.name",
        17,
        "",
    ),
    "mapping call import": (
        """\
        copy:
          source: shop.customers
          destination: "sql:customers"
          fields:
            id: id
            score: {call: "no_such_module_y:score"}
        """,
        "pipelines.copy.fields.score",
        17,
        "cannot import 'no_such_module_y'",
    ),
    "mapping bad path": (
        """\
        copy:
          source: shop.customers
          destination: "sql:customers"
          fields:
            id: "items[?"
        """,
        "pipelines.copy.fields.id",
        16,
        "invalid path 'items[?'",
    ),
    "mapping unknown key": (
        """\
        copy:
          source: shop.customers
          destination: "sql:customers"
          fields:
            id: {path: id, defualt: 1}
        """,
        "pipelines.copy.fields.id",
        16,
        "unknown key 'defualt'",
    ),
    "write to soap": (
        """\
        copy:
          source: shop.customers
          destination: soap.people
        """,
        "pipelines.copy.destination",
        14,
        "soap.people is a soap resource; only REST resources can be written",
    ),
}


def write(tmp_path: Path, pipeline: str) -> Path:
    path = tmp_path / "interlink.yaml"
    text = HEAD.format(db=tmp_path / "interlink.db") + textwrap.indent(
        textwrap.dedent(pipeline), "  "
    )
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "command", [["check"], ["run", "copy"], ["worker", "--burst"]], ids=["check", "run", "worker"]
)
@pytest.mark.parametrize(("pipeline", "key", "line", "words"), CASES.values(), ids=CASES.keys())
def test_what_run_refuses_check_refuses_with_its_line(
    tmp_path, command, pipeline, key, line, words
):
    path = write(tmp_path, pipeline)
    result = CliRunner().invoke(app, [*command, "-c", str(path)])
    assert result.exit_code == 2, (result.output, result.exception)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"{path}:{line}: {key}: "), lines[0]
    assert words in lines[0]
    # Refused before the database was opened.
    assert not (tmp_path / "interlink.db").exists()


def test_check_lists_every_problem_in_file_order(tmp_path):
    path = write(
        tmp_path,
        """\
        one:
          source: shop.customers
          destination: "sql:one"
          filter: "a +"
        two:
          source: shop.orders
          destination: "sql:two"
          fields: {x: {call: "nope_module:f"}}
        """,
    )
    result = CliRunner().invoke(app, ["check", "-c", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert [line.split(": ")[0] for line in lines] == [f"{path}:15", f"{path}:19"]
    assert lines[0].startswith(f"{path}:15: pipelines.one.filter: invalid expression")
    assert lines[1].startswith(f"{path}:19: pipelines.two.fields.x: cannot import 'nope_module'")


def test_run_names_an_unknown_pipeline_before_it_starts(tmp_path):
    path = write(tmp_path, 'copy: {source: shop.customers, destination: "sql:c"}\n')
    result = CliRunner().invoke(app, ["run", "nope", "-c", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}:11: pipelines: unknown pipeline 'nope'; known: copy"
    ]


def test_a_custom_paginator_that_does_not_import(tmp_path):
    path = tmp_path / "interlink.yaml"
    path.write_text(
        "connections:\n"
        '  shop: {base_url: "http://127.0.0.1:9"}\n'
        "resources:\n"
        "  shop:\n"
        "    customers:\n"
        "      path: /customers\n"
        '      paginate: {type: custom, class: "no_such_pager:Pager"}\n'
    )
    result = CliRunner().invoke(app, ["check", "-c", str(path)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}:7: resources.shop.customers.paginate: cannot build the paginator: "
        "cannot import paginator 'no_such_pager:Pager': No module named 'no_such_pager'"
    ]


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*/interlink.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_example_passes_check_with_its_pipelines_built(path):
    result = CliRunner().invoke(app, ["check", "-c", str(path)])
    assert result.exit_code == 0, result.output
