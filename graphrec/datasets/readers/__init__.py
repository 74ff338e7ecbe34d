"""File-format readers; importing this package registers every one of them."""
from graphrec.datasets.readers import ctr, graphs, kg, molecules, recsys, tensor  # noqa: F401
