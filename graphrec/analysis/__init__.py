"""Measurements of learned representations and data on the shared core: subspace overlaps, neuron
matching, alignment of embedding spaces, intrinsic dimension, sampling bounds, data selection."""
