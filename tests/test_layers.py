"""The layers stay layers: no import circle between modules or between layers,
``mcp`` imported only by the MCP layer, no concrete store named outside the store
package, and the pure domain importing nothing above it. Read from the source
(every import, including those inside functions and under TYPE_CHECKING)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import mcp_server_heartbeat

PACKAGE = Path(mcp_server_heartbeat.__file__).parent
NAME = "mcp_server_heartbeat"


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([NAME, *parts])


def _imports() -> dict[str, set[str]]:
    """Each module's imported names (modules of this package, and ``mcp``)."""
    modules = {_module(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = package[: len(package) - node.level + 1] if node.level else []
                target = ".".join([*base, node.module] if node.module else base)
                named = [f"{target}.{alias.name}" for alias in node.names]
                targets = [t for t in named if t in modules] or [target]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[module].update(t for t in targets if t != module)
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "(root)"


def test_no_module_imports_in_a_circle():
    graph = {m: {t for t in ts if t.startswith(NAME)} for m, ts in _imports().items()}
    assert _cycle(graph) is None


def test_no_layer_imports_in_a_circle_and_the_domain_imports_no_other_layer():
    layers: dict[str, set[str]] = defaultdict(set)
    for module, targets in _imports().items():
        for target in targets:
            if target.startswith(NAME) and _layer(target) != _layer(module):
                layers[_layer(module)].add(_layer(target))
    assert _cycle(layers) is None, dict(layers)
    assert layers.get("domain", set()) == set()


def test_only_the_mcp_layer_imports_mcp_and_only_the_store_names_a_store():
    for module, targets in _imports().items():
        if any(t == "mcp" or t.startswith("mcp.") for t in targets):
            assert _layer(module) == "mcp", module
        concrete = {
            t for t in targets if t.startswith((f"{NAME}.store.directory", f"{NAME}.store.memory"))
        }
        if concrete:
            assert _layer(module) == "store", (module, concrete)
