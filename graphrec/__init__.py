"""graphrec: subspace learning on graphs and recommender data.

``import graphrec`` stays light: it loads numpy only. torch, scipy, scikit-learn, PyG and the
compiled kernels are imported by the subpackages that need them.
"""
import logging

from graphrec._config import get_data_home, set_data_home

__version__ = "0.1.0"
__all__ = ["__version__", "get_data_home", "set_data_home"]

logging.getLogger(__name__).addHandler(logging.NullHandler())
