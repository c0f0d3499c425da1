"""ebmlang: a probabilistic programming language for energy-based models."""

__version__ = "0.1.0"
