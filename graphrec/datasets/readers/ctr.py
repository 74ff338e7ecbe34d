"""Readers for ctr data sets."""
