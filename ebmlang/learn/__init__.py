"""Fitting params to data: PCD, CD-k, pseudo-likelihood, exact maximum likelihood, optimizers, metrics."""
