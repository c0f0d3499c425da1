"""Tasks on a compiled model: sampling, diagnostics, exact enumeration, elimination, log Z, MAP, scores."""
