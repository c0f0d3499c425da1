"""PGMax's loopy BP on tables handed over in an .npz; run by bench/bp_side_by_side.py with the
python of PGMax's own virtual environment (pgmax 0.6.1, jax/jaxlib 0.4.30), never imported.

    python pgmax_bp_worker.py IN.npz OUT.npz ITERS DAMPING REPS

IN holds `unary` (V, K) log tables (PGMax's evidence), and for each group g of factors of one
shape `scopes_g` (F, k) variable rows and `logp_g` (F, K^k) log tables in C order. OUT gets
`marginals` (V, K), `first` (seconds of the first call: trace, compile and run), `times`
(seconds of the REPS calls after it) and `build` (seconds to build the factor graph).
"""

import itertools
import sys
import time

import numpy as np

import jax
from pgmax import fgraph, fgroup, infer, vgroup


def main(src, dst, iters, damping, reps):
    data = np.load(src)
    unary = data["unary"]
    V, K = unary.shape
    t = time.perf_counter()
    variables = vgroup.NDVarArray(num_states=K, shape=(V,))
    fg = fgraph.FactorGraph(variable_groups=variables)
    g = 0
    while f"scopes_{g}" in data:
        scopes, logp = data[f"scopes_{g}"], data[f"logp_{g}"]
        configs = np.array(list(itertools.product(range(K), repeat=scopes.shape[1])))
        fg.add_factors(fgroup.EnumFactorGroup(
            variables_for_factors=[[variables[int(v)] for v in s] for s in scopes],
            factor_configs=configs, log_potentials=logp))
        g += 1
    bp = infer.build_inferer(fg.bp_state, backend="bp")
    arrays = bp.init(evidence_updates={variables: unary})
    build = time.perf_counter() - t

    @jax.jit
    def marginals(arrays):
        out = bp.run(arrays, num_iters=iters, damping=damping, temperature=1.0)   # 0: max-product
        return infer.get_marginals(bp.get_beliefs(out))[variables]

    t = time.perf_counter()
    result = marginals(arrays).block_until_ready()
    first = time.perf_counter() - t
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        result = marginals(arrays).block_until_ready()
        times.append(time.perf_counter() - t)
    np.savez(dst, marginals=np.asarray(result), first=first, times=np.array(times), build=build)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5]))
