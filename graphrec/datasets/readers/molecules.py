"""Readers for molecules data sets."""
