"""Readers for kg data sets."""
