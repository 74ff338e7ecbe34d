// pybind11 bindings of the kernels on numpy buffers (graphrec._ext). Argument checking
// (shapes, dtypes, ranges) is done in graphrec/kernels/__init__.py; here only contiguity
// and dtype are enforced by the casts.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>

#include "kernels.hpp"

namespace py = pybind11;

namespace {

template <typename T>
py::tuple topk_exclude_py(py::array_t<T, py::array::c_style> scores, int64_t k,
                          py::object excl_indptr, py::object excl_indices, int n_threads) {
    if (scores.ndim() != 2) throw std::invalid_argument("scores must be 2-d");
    const int64_t b = scores.shape(0), n = scores.shape(1);
    py::array_t<int64_t> ids({b, k});
    py::array_t<T> vals({b, k});
    const int64_t* indptr = nullptr;
    const int64_t* indices = nullptr;
    py::array_t<int64_t, py::array::c_style | py::array::forcecast> ip, ix;
    if (!excl_indptr.is_none()) {
        ip = py::array_t<int64_t, py::array::c_style | py::array::forcecast>(excl_indptr);
        ix = py::array_t<int64_t, py::array::c_style | py::array::forcecast>(excl_indices);
        indptr = ip.data();
        indices = ix.data();
    }
    bool ok;
    {
        py::gil_scoped_release release;
        ok = graphrec::topk_exclude<T>(scores.data(), b, n, k, indptr, indices, ids.mutable_data(),
                                       vals.mutable_data(), n_threads);
    }
    if (!ok) throw std::invalid_argument("scores contains NaN");
    return py::make_tuple(ids, vals);
}

template <typename T>
py::array_t<T> csr_matmul_py(py::array_t<int64_t, py::array::c_style> indptr,
                             py::array_t<int64_t, py::array::c_style> indices,
                             py::array_t<T, py::array::c_style> data, py::array_t<T, py::array::c_style> x,
                             int n_threads) {
    const int64_t m = indptr.shape(0) - 1, d = x.shape(1);
    py::array_t<T> y({m, d});
    {
        py::gil_scoped_release release;
        graphrec::csr_matmul<T>(indptr.data(), indices.data(), data.data(), m, x.data(), d, y.mutable_data(),
                                n_threads);
    }
    return y;
}

}  // namespace

PYBIND11_MODULE(_ext, m) {
    m.doc() = "graphrec compiled kernels (C++ on numpy buffers)";
    m.def("topk_exclude_f32", &topk_exclude_py<float>);
    m.def("topk_exclude_f64", &topk_exclude_py<double>);
    m.def("csr_matmul_f32", &csr_matmul_py<float>);
    m.def("csr_matmul_f64", &csr_matmul_py<double>);
}
