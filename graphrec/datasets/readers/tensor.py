"""Readers for tensor data sets."""
