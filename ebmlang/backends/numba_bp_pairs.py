"""The flooding schedule of loopy BP specialised to binary pairwise graphs (every variable of
two states, every factor of two variables: Ising-like models, the UAI grids).

The same iteration as `numba_bp.flood` (every factor -> variable message from the old ones,
geometric damping in log space, the largest change in probability), in another representation:
a message to a binary variable is its ratio rho = m(1) / m(0) > 0, a factor f over (u, w) keeps
psi_f = exp(T_f - max T_f) (4 entries, C order over (x_u, x_w)), and a variable's belief is the
ratio exp(u_1 - u_0) * the product of its incoming ratios. Then a message costs no transcendental
call: with c the cavity ratio of w (its belief ratio / the message f -> w),

    rho_new = (psi_10 + psi_11 c) / (psi_00 + psi_01 c),
    rho     = rho_old^damping * rho_new^(1 - damping)   (sqrt(rho_old rho_new) at 0.5),

and the change is |rho / (1 + rho) - p_old|. Structure of arrays, one branch-free loop over the
factors per direction. `infer.bp.pairwise` decides when it applies: finite tables whose
log ranges keep every ratio within exp(+-600), so nothing overflows or underflows.
Compiled once per installation (numba's on-disk cache).
"""

import math

import numpy as np
from numba import njit, uint64


@njit(cache=True, error_model="numpy", inline="always")
def _damp(mode, alpha, old, new):
    """rho_old^alpha * rho_new^(1 - alpha): mode 0 no damping, 1 alpha = 0.5, 2 any alpha."""
    if mode == 0:
        return new
    if mode == 1:
        return math.sqrt(old * new)
    return new * math.exp(alpha * math.log(old / new))


@njit(cache=True, error_model="numpy")
def _sweep(mode, alpha, bu, fu, fw, psi, ru, rw, pu, pw, b, nu, nw, qu, qw):
    """One flooding iteration from (ru, rw) into (nu, nw) and their probabilities (qu, qw);
    returns the largest change in probability."""
    b[:] = bu
    for f in range(fu.shape[0]):                 # unsigned ids: no test for a negative index
        b[uint64(fu[f])] *= ru[f]
        b[uint64(fw[f])] *= rw[f]
    worst = 0.0
    for f in range(fu.shape[0]):
        c = b[uint64(fw[f])] / rw[f]             # cavity ratio of w: f -> u
        new = (psi[f, 2] + psi[f, 3] * c) / (psi[f, 0] + psi[f, 1] * c)
        r = _damp(mode, alpha, ru[f], new)
        q = r / (1.0 + r)
        worst = max(worst, abs(q - pu[f]))
        nu[f], qu[f] = r, q
    for f in range(fu.shape[0]):
        c = b[uint64(fu[f])] / ru[f]             # cavity ratio of u: f -> w
        new = (psi[f, 1] + psi[f, 3] * c) / (psi[f, 0] + psi[f, 2] * c)
        r = _damp(mode, alpha, rw[f], new)
        q = r / (1.0 + r)
        worst = max(worst, abs(q - pw[f]))
        nw[f], qw[f] = r, q
    return worst


@njit(cache=True, error_model="numpy")
def flood_pairs(iters, tol, alpha, bu, fu, fw, psi, ru, rw, pu, pw):
    """Up to `iters` flooding iterations on the ratios ru, rw (updated in place with their
    probabilities pu, pw), stopping below tol (tol < 0: never); returns (iterations, the last
    largest change). bu: (V,) unary ratios; fu, fw: (F,) the factors' variable rows."""
    mode = 0 if alpha == 0.0 else (1 if alpha == 0.5 else 2)
    b = np.empty_like(bu)
    nu, nw, qu, qw = np.empty_like(ru), np.empty_like(rw), np.empty_like(pu), np.empty_like(pw)
    worst = np.inf
    it = 0
    while it < iters:
        worst = _sweep(mode, alpha, bu, fu, fw, psi, ru, rw, pu, pw, b, nu, nw, qu, qw)
        ru, nu = nu, ru
        rw, nw = nw, rw
        pu, qu = qu, pu
        pw, qw = qw, pw
        it += 1
        if worst < tol:
            break
    if it % 2 == 1:                              # the results are in the scratch arrays
        nu[:], nw[:], qu[:], qw[:] = ru, rw, pu, pw
    return it, worst
