"""Subspace clustering and subspace representation learning on the shared core (:mod:`graphrec.core`)."""
