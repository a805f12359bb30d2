"""The layers, read from the import graph of the source (imports inside functions count):
the CLI modules import no CLI module that imports them back, ``runtime/`` never imports
``training/``, and the core never imports a task plugin."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "nlpapp"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the nlpapp modules it imports, anywhere in its body."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for alias in node.names:  # "from . import x" may name a module
                    candidate = f"{base}.{alias.name}"
                    found.add(candidate if candidate in modules else base)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in modules and m != name}
    return graph


def _cycle(graph: dict[str, set[str]], nodes: set[str]) -> list[str] | None:
    """A cycle among ``nodes`` (following edges inside ``nodes`` only), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node] & nodes):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(nodes):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert "nlpapp.training.trainer" in graph["nlpapp.api"]  # imported inside Runtime.train
    assert "nlpapp.cli.state" in graph["nlpapp.cli.run"]


def test_no_import_cycle_inside_the_cli():
    graph = import_graph()
    cli = {m for m in graph if m.startswith("nlpapp.cli.")}
    assert _cycle(graph, cli) is None, f"import cycle: {' -> '.join(_cycle(graph, cli))}"


def test_the_runtime_does_not_import_training():
    graph = import_graph()
    leaks = {m: sorted(t for t in targets if t.startswith("nlpapp.training"))
             for m, targets in graph.items() if m.startswith("nlpapp.runtime")}
    assert not {m: t for m, t in leaks.items() if t}


def test_the_core_imports_no_task_plugin():
    graph = import_graph()
    assert not any(t.startswith("nlpapp_") for targets in graph.values() for t in targets)
    sources = "\n".join(p.read_text() for p in PACKAGE.rglob("*.py"))
    assert "import nlpapp_" not in sources and "from nlpapp_" not in sources


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"a"}, "c": set()}, {"a", "b", "c"}) == ["a", "b", "a"]
