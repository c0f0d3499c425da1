"""The ground arrays of the compiled backend: for the variables of a block part, CSR incidence
arrays per term (for each variable, the instances that read it and a bit mask of which reads
hit it) and the ids of each variable's neighbours (the other reads of those instances, in the
same order).

Built read by read (no (reads x instances) temporaries), with int32 instance and neighbour ids,
and for any subset of a part's variables: a tabulated part needs the full incidence of none of
them, only its patterns (built chunk by chunk, see `numba_tables`) and the incidence of one
representative per blanket signature. Term ids may be int32 or int64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ebmlang.backends.numba_codegen import term_sig

INT32 = np.iinfo(np.int32).max


@dataclass
class Incidence:
    """For some variables of a part: per term (ptr, inst, hit, pos, idx), and each variable's
    neighbours. `inst` numbers columns of pos and idx (the term's params and bound indices)."""

    ids: np.ndarray               # (m,) the variables
    terms: tuple
    nb_ptr: np.ndarray            # (m + 1,) offsets into nb_ids
    nb_ids: np.ndarray            # state ids of the other reads, term by term, instance by instance

    @property
    def flat(self) -> tuple:
        """The term arrays as the generated functions take them: ptr0, inst0, ..., idx0, ptr1..."""
        return tuple(a for arrays in self.terms for a in arrays)


def scratch(model) -> np.ndarray:
    """A state-sized map to rows (-1: not a variable of the rows), reused by `incidence`."""
    if model.checked.n_state > INT32 or any(t.size > INT32 for t in model.terms):
        raise ValueError("more than 2^31 ground variables or instances")
    return np.full(model.checked.n_state, -1, np.int32)


def _hitting(t, where: np.ndarray) -> np.ndarray:
    """The instances of term t that read a variable marked in `where`."""
    mask = np.zeros(t.size, bool)
    for r in t.reads:
        mask |= where[r.ids] >= 0
    return np.flatnonzero(mask).astype(np.int32)


def _term_incidence(t, where: np.ndarray, m: int):
    """CSR of the term's instances by the row they read, and, flattened in the same order, the
    ids of their other reads and the row each belongs to."""
    rows = _hitting(t, where)
    pos = np.stack([where[r.ids[rows]] for r in t.reads])          # (R, hits), small
    hitm = pos >= 0
    target = pos.max(axis=0)
    hit = (hitm.astype(np.int64) << np.arange(len(t.reads), dtype=np.int64)[:, None]).sum(axis=0)
    order = np.lexsort((rows, hit, target))        # the same order for every variable
    inst, target, hit, hitm = rows[order], target[order], hit[order], hitm[:, order]
    ptr = np.zeros(m + 1, np.int64)
    np.cumsum(np.bincount(target, minlength=m), out=ptr[1:])
    other = ~hitm.T                                                  # (nnz, R), entry-major
    nb = np.stack([r.ids[inst] for r in t.reads], axis=1)[other].astype(np.int32)
    owner = np.repeat(target, other.sum(axis=1))
    return ptr, inst, hit, nb, owner


def term_params(model, t, inst: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(pos, idx): theta positions of the param reads and, if the body uses them, the bound
    indices, for the instances `inst` (None: all, sharing the model's array when it can)."""
    _, sig = term_sig(t, model.checked.consts)
    take = slice(None) if inst is None else inst
    pos = np.stack([p.pos[take] for p in t.preads]) if t.preads else np.zeros((0, 0), np.int64)
    idx = t.space.tuples[take, :sig.n_index].T.astype(np.float64) if sig.n_index \
        else np.zeros((0, 0))
    return np.ascontiguousarray(pos, np.int64), np.ascontiguousarray(idx)


def incidence(model, ids: np.ndarray, terms: tuple, where: np.ndarray, params: str = "used",
              cache: dict | None = None) -> Incidence:
    """The incidence of the variables `ids` in the terms (indices into model.terms); `where`
    from `scratch`, left as it was found. Each term's pos and idx: `params` "used", for the
    instances read here, renumbered; "all", for every instance (shared by the parts through
    `cache`); "none": not wanted (empty)."""
    m = len(ids)
    where[ids] = np.arange(m, dtype=np.int32)
    tuples, nbs, owners = [], [], []
    for k in terms:
        t = model.terms[k]
        ptr, inst, hit, nb, owner = _term_incidence(t, where, m)
        if params == "used":
            used, inst = np.unique(inst, return_inverse=True)
            arrays = term_params(model, t, used)
        elif params == "all":
            arrays = cache[k] if k in cache else cache.setdefault(k, term_params(model, t))
        else:
            arrays = (np.zeros((0, 0), np.int64), np.zeros((0, 0)))
        tuples.append((ptr, inst.astype(np.int32).reshape(-1), hit) + arrays)
        nbs.append(nb)
        owners.append(owner)
    where[ids] = -1
    counts = [np.bincount(o, minlength=m) for o in owners]
    nb_ptr = np.zeros(m + 1, np.int64)
    np.cumsum(sum(counts), out=nb_ptr[1:])
    nb_ids = np.empty(nb_ptr[-1], np.int32)
    before = nb_ptr[:-1].copy()                                # where each term's block starts
    for nb, owner, c in zip(nbs, owners, counts):
        start = np.cumsum(c) - c                               # the owner's first entry in nb
        nb_ids[before[owner] + np.arange(len(nb)) - start[owner]] = nb
        before += c
    return Incidence(np.asarray(ids), tuple(tuples), nb_ptr, nb_ids)
