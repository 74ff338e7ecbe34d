"""Bench task definitions; each module registers one task's methods and datasets."""
