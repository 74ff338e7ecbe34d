"""Build hooks that ``pyproject.toml`` cannot express.

* The C++ kernels ``graphrec._ext`` from ``cpp_ext/``: pybind11 on numpy buffers only
  (no torch headers), so the module is not tied to one torch version. If it is missing at run
  time, ``graphrec.kernels`` falls back to the Numba twins with one warning.
* The dataset cards: the top-level ``datasets/`` folder ships as the package data
  ``graphrec._cards``.
"""
import os

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import find_packages, setup

# graphrec builds from source on the machine that runs it, so the kernels are tuned for its CPU
# (AVX2 / AVX-512 where present: about 2x on the CSR product). Set GRAPHREC_PORTABLE_BUILD=1
# when building a wheel for other machines.
native = [] if os.environ.get("GRAPHREC_PORTABLE_BUILD") else ["-march=native"]

ext_modules = [
    Pybind11Extension(
        "graphrec._ext",
        sources=[
            "cpp_ext/module.cpp", "cpp_ext/topk.cpp", "cpp_ext/spmm.cpp", "cpp_ext/lowfer.cpp", "cpp_ext/pe.cpp",
        ],
        include_dirs=["cpp_ext"],
        cxx_std=17,
        # -fopenmp-simd honours `#pragma omp simd` only: no OpenMP runtime is linked (torch ships
        # its own libgomp), threads are std::thread.
        extra_compile_args=["-O3", "-fopenmp-simd", *native],
    ),
]

setup(
    packages=find_packages(include=["graphrec", "graphrec.*"]) + ["graphrec._cards"],
    package_dir={"graphrec._cards": "datasets"},
    package_data={"graphrec._cards": ["*.toml"]},
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
)
