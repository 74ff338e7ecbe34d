"""Build hooks that ``pyproject.toml`` cannot express.

* The optional C++ kernels ``graphrec._ext`` from ``cpp_ext/``: pybind11 on numpy buffers only
  (no torch headers), so the module is not tied to one torch version. If it is missing at run
  time, ``graphrec.kernels`` falls back to the Numba twins with one warning.
* The dataset cards: the top-level ``datasets/`` folder ships as the package data
  ``graphrec._cards``.
"""
from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import find_packages, setup

ext_modules = [
    Pybind11Extension(
        "graphrec._ext",
        sources=["cpp_ext/module.cpp", "cpp_ext/topk.cpp", "cpp_ext/spmm.cpp"],
        include_dirs=["cpp_ext"],
        cxx_std=17,
        extra_compile_args=["-O3"],
    ),
]

setup(
    packages=find_packages(include=["graphrec", "graphrec.*"]) + ["graphrec._cards"],
    package_dir={"graphrec._cards": "datasets"},
    package_data={"graphrec._cards": ["*.toml"]},
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
)
