"""ebmlang: a probabilistic programming language for energy-based models.

    import ebmlang
    model = ebmlang.load("examples/ising.ebm", L=32)
    draws = model.sample(draws=1000, chains=4, seed=0)

Importing ebmlang is cheap: the compiler's libraries (lark, sympy, networkx, numba) are
imported when a model is first loaded or compiled, not before.
"""

__version__ = "0.1.0"

from ebmlang.errors import UserError  # noqa: E402

# Public names that pull in the compiler, resolved on first use (PEP 562).
_LAZY = {
    "Model": ("ebmlang.model", "Model"),
    "compile": ("ebmlang.model", "compile_model"),
    "load": ("ebmlang.model", "load"),
    "Samples": ("ebmlang.infer.sample", "Samples"),
}

__all__ = ["Model", "Samples", "UserError", "compile", "load", "__version__"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'ebmlang' has no attribute {name!r}")
    import importlib
    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
