"""Writing marginals: a CSV with one row per ground variable, or the UAI competition's MAR
format.

CSV: `variable,p(V1),p(V2),...`, one column per value of the union of the variables' domains
(a cell is empty where the value is outside the variable's domain), then `se(V1),...` when
the marginals are Monte Carlo estimates.

MAR: `MAR`, then on one line the number of variables and, for each, its cardinality and its
probabilities. For a UAI network the variables are the network's own, in its order (an
observed one gets a point mass at its value), so the file compares with the published .MAR.
"""

from __future__ import annotations

import numpy as np

from ebmlang.io.csvio import atomic_write


def write_marginals(model, res, path: str) -> None:
    """The CSV, or the MAR file when `path` ends in .MAR (any case)."""
    if str(path).lower().endswith(".mar"):
        write_mar(path, mar_rows(model, res))
    else:
        write_csv(res, path)


def write_csv(res, path: str) -> None:
    union = sorted(set().union(*(v.tolist() for v in res.values)))
    cols = {v: k for k, v in enumerate(union)}
    head = ["variable"] + [f"p({v:g})" for v in union]
    if res.se is not None:
        head += [f"se({v:g})" for v in union]
    with atomic_write(path) as fh:
        fh.write(",".join(head) + "\n")
        for k, (name, vals, p) in enumerate(zip(res.names, res.values, res.probs)):
            cells = [""] * (len(union) * (2 if res.se is not None else 1))
            for j, v in enumerate(vals.tolist()):
                cells[cols[v]] = repr(float(p[j]))
                if res.se is not None:
                    cells[len(union) + cols[v]] = repr(float(res.se[k][j]))
            fh.write(",".join([f'"{name}"' if "," in name else name] + cells) + "\n")


def mar_rows(model, res) -> list[np.ndarray]:
    """Per variable of the MAR file, its probabilities: the UAI network's variables (observed
    ones a point mass) or the model's ground variables in state order."""
    names = getattr(model, "uai_names", None)
    if names is None:
        return list(res.probs)
    by_name = res.as_dict()
    out = []
    for v, name in enumerate(names):
        if name is None:
            value = model.uai_evidence[v]
            row = np.zeros(model.uai_cards[v])
            row[value] = 1.0
            out.append(row)
        else:
            out.append(by_name[name])
    return out


def write_mar(path: str, rows: list[np.ndarray]) -> None:
    body = " ".join(f"{len(p)} " + " ".join(f"{float(q):.9g}" for q in p) for p in rows)
    with atomic_write(path) as fh:
        fh.write(f"MAR\n{len(rows)} {body}\n")
