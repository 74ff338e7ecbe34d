"""Numba twins of the compiled kernels (imported lazily by ``graphrec.kernels``)."""
