"""The package's layout: imports run one way, from the command line down to the files, never in a circle."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ebmlang"

# Lowest first. A module may import modules of its own layer or of lower ones.
LAYERS = ["errors", "cachedir", "table", "reprs", "io", "frontend", "middle", "backends", "infer", "learn",
          "report", "distributed", "model_cache", "model", "cli"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules) -> set[str]:
    """Every ebmlang module `name` imports, at top level or inside a function."""
    found = set()
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("ebmlang.")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            if not mod.startswith("ebmlang"):
                continue
            for alias in node.names:
                sub = f"{mod}.{alias.name}"
                found.add(sub if sub in modules else mod)
    return {m for m in found if m in modules and m != name}


def _graph() -> nx.DiGraph:
    modules = _modules()
    g = nx.DiGraph()
    for name, path in modules.items():
        g.add_node(name)
        for dep in _imports(name, path, modules):
            g.add_edge(name, dep)
    return g


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_no_import_circles():
    g = _graph()
    g.remove_nodes_from(["ebmlang", "ebmlang.__main__"])   # the facade and the entry point
    circles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert circles == []


def test_imports_run_down_the_layers():
    upward = sorted(f"{a} -> {b}" for a, b in _graph().edges
                    if _layer(a) is not None and _layer(b) is not None and _layer(a) < _layer(b))
    assert upward == []


def test_every_module_is_in_a_layer():
    assert sorted(m for m in _modules() if _layer(m) is None) == ["ebmlang", "ebmlang.__main__"]


HEAVY = ("sympy", "networkx", "numba", "lark", "ray")


@pytest.mark.parametrize("code", [
    "import ebmlang",
    "import sys; sys.argv = ['ebmlang', '--help']\ntry:\n    import runpy; runpy.run_module('ebmlang', run_name='__main__')\nexcept SystemExit:\n    pass",
    "import sys; sys.argv = ['ebmlang', '--version']\ntry:\n    import runpy; runpy.run_module('ebmlang', run_name='__main__')\nexcept SystemExit:\n    pass",
])
def test_a_fast_start_imports_no_compiler(code):
    """`import ebmlang`, `ebmlang --help` and `--version` load none of the compile-time libraries."""
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout.splitlines()[-1]
    assert out == "[]"
