"""The family-level factor graph as Graphviz DOT, and `.dot`/`.svg`/`.png` files of it.

Variable families are ellipses (latent dashed, input filled grey), factor terms small black
squares labelled with their owner, edges labelled with the index expression of the read.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections import Counter

from ebmlang.io.csvio import atomic_write, atomic_write_bytes
from ebmlang.io.images import tag_png
from ebmlang.errors import UserError

_VAR_STYLE = {
    "var": 'shape=ellipse',
    "latent": 'shape=ellipse, style=dashed',
    "input": 'shape=ellipse, style=filled, fillcolor="#d9d9d9"',
}
_FACTOR_STYLE = ('shape=square, style=filled, fillcolor=black, width=0.15, height=0.15, '
                 'fixedsize=true, label=""')


def _q(text: str) -> str:
    """A DOT double-quoted string; newlines become centred line breaks."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\n", "\\n") + '"'


def _node_id(node: tuple) -> str:
    return _q(":".join(str(p) for p in node))


def to_dot(model) -> str:
    """DOT text of `model.graph.nx`: one node per family and per factor term."""
    g = model.graph.nx
    terms = Counter(n[1] for n in g.nodes if n[0] == "factor")
    lines = [f"graph {_q(model.name)} {{",
             '  graph [overlap=false, splines=true, comment="ebmlang graph"];',
             "  node [fontname=Helvetica]; edge [fontname=Helvetica, fontsize=10];"]
    for node, attrs in g.nodes(data=True):
        if node[0] == "var":
            fam = model.vars[node[1]]
            index = f"[{', '.join(fam.space.names)}]" if fam.space.ndim else ""
            n = attrs["size"]
            label = f"{fam.name}{index} : {attrs['domain']}\n{n:,} variable{'s' * (n != 1)}"
            style = _VAR_STYLE.get(attrs["kind"], _VAR_STYLE["var"])
            lines.append(f"  {_node_id(node)} [label={_q(label)}, {style}];")
        else:
            _, owner, number = node
            label = owner + (f" #{number}" if terms[owner] > 1 else "")
            sign = "energy, " if attrs.get("sign", 1.0) < 0 else ""
            tip = f"{label}: {sign}{attrs['size']:,} instances"
            lines.append(f"  {_node_id(node)} [{_FACTOR_STYLE}, xlabel={_q(label)}, "
                         f"tooltip={_q(tip)}];")
    for a, b, attrs in g.edges(data=True):
        fac, var = (a, b) if a[0] == "factor" else (b, a)
        lines.append(f"  {_node_id(fac)} -- {_node_id(var)} [label={_q(attrs.get('read', ''))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def write_graph(model, path: str) -> None:
    """Write the graph as `.dot` text, or render `.svg`/`.png` with Graphviz's `dot`."""
    ext = os.path.splitext(path)[1].lower()
    text = to_dot(model)
    if ext == ".dot" or ext == ".gv":
        with atomic_write(path) as f:
            f.write(text)
        return
    if ext not in (".svg", ".png"):
        raise UserError(f"cannot write a graph as '{ext or path}': use -o FILE.dot, FILE.svg "
                        "or FILE.png", file=path)
    exe = shutil.which("dot")
    if exe is None:
        raise UserError(f"writing {ext} needs Graphviz's `dot` program, which is not on PATH "
                        "(install Graphviz, e.g. `apt-get install graphviz`); -o FILE.dot works "
                        "without it", file=path)
    try:
        done = subprocess.run([exe, f"-T{ext[1:]}"], input=text.encode("utf-8"),
                              capture_output=True, check=False, timeout=600)
    except OSError as exc:
        raise UserError(f"cannot run Graphviz's dot ({exe}): {exc.strerror or exc}",
                        file=path) from None
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()
        raise UserError(f"Graphviz's dot failed (status {done.returncode}): {err}", file=path)
    atomic_write_bytes(path, tag_png(done.stdout) if ext == ".png" else done.stdout)
