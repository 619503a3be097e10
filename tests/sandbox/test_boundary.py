"""The sandbox imitates a third party, so it must not reach into interlink's runtime."""

import ast
from pathlib import Path

import pytest

import interlink.sandbox

SANDBOX = Path(interlink.sandbox.__file__).parent


def _foreign_imports(source: str, depth: int = 1) -> list[str]:
    """Imports of interlink outside the sandbox in a module `depth` packages below sandbox."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            if node.level > depth:  # a relative import climbing out of the sandbox
                found.append(f"{'.' * node.level}{node.module or ''}")
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        else:
            continue
        found += [
            name
            for name in names
            if (name == "interlink" or name.startswith("interlink."))
            and not (name == "interlink.sandbox" or name.startswith("interlink.sandbox."))
        ]
    return found


def test_sandbox_imports_nothing_else_from_interlink() -> None:
    modules = sorted(SANDBOX.rglob("*.py"))
    assert len(modules) >= 5
    offenders = {
        str(path.relative_to(SANDBOX)): _foreign_imports(
            path.read_text(), depth=len(path.relative_to(SANDBOX).parts)
        )
        for path in modules
    }
    assert {path: names for path, names in offenders.items() if names} == {}


@pytest.mark.parametrize(
    "source",
    [
        "import interlink.http",
        "import interlink",
        "from interlink.errors import InterlinkError",
        "from interlink import config",
        "from .. import errors",
        "from ..http import ApiClient",
        "def f():\n    from interlink.http import ApiClient",
    ],
)
def test_the_check_catches_foreign_imports(source: str) -> None:
    assert _foreign_imports(source)


@pytest.mark.parametrize(
    "source",
    [
        "from interlink.sandbox import create_shop_app",
        "import interlink.sandbox._data",
        "from ._data import make_customer",
        "from . import _data",
        "import interlinked",
    ],
)
def test_the_check_allows_sandbox_imports(source: str) -> None:
    assert not _foreign_imports(source)
