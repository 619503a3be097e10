"""Lower layers never import upper ones (docs/architecture.md, DESIGN.md "Layers")."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "interlink"

# A module may import from a lower rank or from its own subpackage, never sideways or up.
RANK = {
    "_version": 0,
    "errors": 0,
    "types": 0,
    "_lazy": 0,
    "config": 1,
    "http": 2,
    "connectors": 3,
    "store": 3,
    "sync": 4,
    "oauth": 4,
    "jobs": 5,
    "metrics": 5,
    # Deliveries are processed on the job queue: webhooks sits above jobs, under the server.
    "webhooks": 6,
    "server": 7,
    "client": 7,
    "cli": 8,
    # Users' own code calls these two: a Prefect flow runs pipelines and talks to a remote
    # serve through the client; a test suite starts sandboxes and mock APIs.
    "prefect": 9,
    "testing": 9,
    # The console script (`interlink`, `python -m interlink`) starts the command line.
    "__main__": 10,
}
# The sandbox stands in for someone else's system: it imports nothing of interlink's, and
# only the CLI (interlink sandbox, interlink demo) and the testing kit import it.
ISOLATED = {"sandbox"}
SANDBOX_USERS = {"cli", "testing"}
# errors and types sit side by side at the bottom; types may name errors and vice versa.
SIBLINGS_ALLOWED = {frozenset({"errors", "types"}), frozenset({"_version", "errors"})}


def _layer(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path)
    if path.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return [(line, name) for line, name in found if name.split(".")[0] == "interlink"]


def _violations() -> list[str]:
    problems = []
    for path in sorted(SRC.rglob("*.py")):
        source = _module_name(path)
        layer = _layer(source)
        if not layer:
            continue  # the package root re-exports the public names
        for line, target in _imports(path):
            other = _layer(target)
            where = f"{path.relative_to(SRC.parent)}:{line}: {source} imports {target}"
            if other == layer:
                continue
            if layer in ISOLATED:
                problems.append(f"{where} (the sandbox is isolated)")
                continue
            if other in ISOLATED:
                # Only the CLI (interlink sandbox, interlink demo) and the testing kit's
                # fixtures start sandboxes.
                if layer not in SANDBOX_USERS:
                    problems.append(f"{where} (only the CLI may use the sandbox)")
                continue
            if not other:
                problems.append(f"{where} (import from the subpackage, not the package root)")
                continue
            if frozenset({layer, other}) in SIBLINGS_ALLOWED:
                continue
            if layer not in RANK or other not in RANK:
                problems.append(f"{where} (layer {layer or other!r} has no rank in this test)")
            elif RANK[other] >= RANK[layer]:
                problems.append(f"{where} ({other} is not below {layer})")
    return problems


def test_layers_point_down_only():
    assert _violations() == []


def test_the_checker_catches_upward_sideways_and_sandbox_imports(tmp_path, monkeypatch):
    fake = tmp_path / "interlink"
    for layer, code in {
        "http": "from interlink.cli import main\n",
        "config": "from ..http import ApiClient\n",
        "sandbox": "from interlink.errors import ApiError\n",
        "connectors": "import interlink.store\n",
    }.items():
        (fake / layer).mkdir(parents=True)
        (fake / layer / "_bad.py").write_text(code)
    monkeypatch.setattr(sys.modules[__name__], "SRC", fake)
    problems = _violations()
    assert any("cli is not below http" in p for p in problems)
    assert any("http is not below config" in p for p in problems)
    assert any("sandbox is isolated" in p for p in problems)
    assert any("store is not below connectors" in p for p in problems)
