"""ebmlang: a probabilistic programming language for energy-based models.

    import ebmlang
    model = ebmlang.load("examples/ising.ebm", L=32)
    draws = model.sample(draws=1000, chains=4, seed=0)
"""

__version__ = "0.1.0"

from ebmlang.errors import UserError  # noqa: E402
from ebmlang.model import Model, compile_model as compile, load  # noqa: E402,F401

__all__ = ["Model", "UserError", "compile", "load", "__version__"]
