"""The classifier of tests/docs/snippets.py: what it runs, what it refuses to guess."""

from __future__ import annotations

from pathlib import Path

from tests.docs.snippets import parse_marker, snippets_of

PAGE = """\
# A page

```yaml
database: sqlite:///x.db
```

```
interlink run customers
```

<!-- snippet: skip, needs the real API -->
```sh
interlink run customers
```

<!-- snippet: skip -->
```sh
interlink runs
```

```text
$ interlink check
```

```
queued --claim--> running
```

<!-- snippet: under resources.shop.customers; project examples/quickstart -->
```yaml
paginate: offset
```

```console
$ interlink check \\
    --config a.yaml
Checked a.yaml.
$ interlink runs
```

```ruby
puts 1
```
"""


def test_each_fence_is_classified_or_refused(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(PAGE, encoding="utf-8")
    found = {snippet.line: snippet for snippet in snippets_of(page, "page.md")}
    kinds = {line: snippet.kind for line, snippet in found.items()}
    assert kinds == {
        3: "yaml",
        7: "unclassified",  # commands without a tag: the docs test fails on it
        12: "skip",
        17: "unclassified",  # a skip needs its reason
        21: "unclassified",  # a transcript labelled text
        25: "plain",
        30: "yaml",
        34: "shell",
        41: "unclassified",  # an unknown info string
    }
    assert "reason" in found[17].why_unclassified()
    assert "not tagged sh or console" in found[7].why_unclassified()
    assert found[12].marker.skip == "needs the real API"
    assert found[30].marker.under == "resources.shop.customers"
    assert found[30].marker.project == "examples/quickstart"
    assert found[34].commands() == "interlink check \\\n    --config a.yaml\ninterlink runs\n"


def test_markers_that_do_not_parse_say_what_to_write() -> None:
    assert parse_marker("under resources.shop; above").above
    wrong = parse_marker("run it please")
    assert wrong.error is not None and "'skip, REASON'" in wrong.error
