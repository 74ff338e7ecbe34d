// pybind11 bindings of the kernels on numpy buffers (graphrec._ext).
//
// The Python dispatch (graphrec/kernels/__init__.py) checks values (ids in range, NaN reporting,
// dtypes); here the casts enforce dtype and C order, and the O(1) shape checks below keep a
// direct call from reading out of bounds through a wrong length.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "kernels.hpp"

namespace py = pybind11;

namespace {

template <typename T>
using Array = py::array_t<T, py::array::c_style>;

void require(bool condition, const std::string& message) {
    if (!condition) throw std::invalid_argument(message);
}

// Returns (ids (b, k) int64, values (b, k), ok); ok is false when scores hold a NaN.
template <typename T>
py::tuple topk_exclude_py(Array<T> scores, int64_t k, Array<int64_t> excl_indptr, Array<int64_t> excl_indices,
                          int n_threads) {
    require(scores.ndim() == 2, "scores must be 2-dimensional (b, n_items)");
    require(k >= 1, "k must be >= 1");
    require(n_threads >= 1, "n_threads must be >= 1");
    const int64_t b = scores.shape(0), n = scores.shape(1);
    require(excl_indptr.ndim() == 1 && excl_indptr.shape(0) == b + 1, "exclude_indptr must have length b + 1");
    require(excl_indices.ndim() == 1 && excl_indptr.at(0) == 0 && excl_indptr.at(b) <= excl_indices.shape(0),
            "exclude_indptr must start at 0 and end within exclude_indices");
    Array<int64_t> ids({b, k});
    Array<T> vals({b, k});
    bool ok;
    {
        py::gil_scoped_release release;
        ok = graphrec::topk_exclude<T>(scores.data(), b, n, k, excl_indptr.data(), excl_indices.data(),
                                       ids.mutable_data(), vals.mutable_data(), n_threads);
    }
    return py::make_tuple(ids, vals, ok);
}

// indptr and indices share the index type I (int32 as scipy makes them, or int64): no copy.
template <typename T, typename I>
Array<T> csr_matmul_py(Array<I> indptr, Array<I> indices, Array<T> data, Array<T> x, int n_threads) {
    require(indptr.ndim() == 1 && indptr.shape(0) >= 1, "indptr must be 1-dimensional with length m + 1");
    require(x.ndim() == 2, "x must be 2-dimensional (n, d)");
    require(n_threads >= 1, "n_threads must be >= 1");
    const int64_t m = indptr.shape(0) - 1, d = x.shape(1);
    const int64_t nnz = indptr.at(m);
    require(indptr.at(0) == 0 && indices.shape(0) >= nnz && data.shape(0) >= nnz,
            "indptr must start at 0 and end within indices and data");
    Array<T> y({m, d});
    {
        py::gil_scoped_release release;
        graphrec::csr_matmul<T, I>(indptr.data(), indices.data(), data.data(), m, x.data(), d, y.mutable_data(),
                                   n_threads);
    }
    return y;
}

template <typename T, typename I>
Array<T> csr_horner_py(Array<I> indptr, Array<I> indices, Array<T> data, Array<T> h, T alpha, int64_t steps,
                       int n_threads) {
    require(indptr.ndim() == 1 && indptr.shape(0) >= 1, "indptr must be 1-dimensional with length m + 1");
    require(h.ndim() == 2 && h.shape(0) == indptr.shape(0) - 1, "h must be 2-dimensional (m, d) for a square A");
    require(n_threads >= 1, "n_threads must be >= 1");
    require(steps >= 0, "steps must be >= 0");
    const int64_t m = indptr.shape(0) - 1, d = h.shape(1);
    const int64_t nnz = indptr.at(m);
    require(indptr.at(0) == 0 && indices.shape(0) >= nnz && data.shape(0) >= nnz,
            "indptr must start at 0 and end within indices and data");
    Array<T> out({m, d});
    {
        py::gil_scoped_release release;
        graphrec::csr_horner<T, I>(indptr.data(), indices.data(), data.data(), m, h.data(), d, alpha, steps,
                                   out.mutable_data(), n_threads);
    }
    return out;
}

template <typename T, typename I>
void def_csr_matmul(py::module_& m, const char* name, const char* horner) {
    m.def(name, &csr_matmul_py<T, I>, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("x"),
          py::arg("n_threads"));
    m.def(horner, &csr_horner_py<T, I>, py::arg("indptr"), py::arg("indices"), py::arg("data"), py::arg("h"),
          py::arg("alpha"), py::arg("steps"), py::arg("n_threads"));
}

}  // namespace

PYBIND11_MODULE(_ext, m) {
    m.doc() = "graphrec compiled kernels (C++17 on numpy buffers, std::thread); use graphrec.kernels";
    m.def("topk_exclude_f32", &topk_exclude_py<float>, py::arg("scores"), py::arg("k"), py::arg("excl_indptr"),
          py::arg("excl_indices"), py::arg("n_threads"));
    m.def("topk_exclude_f64", &topk_exclude_py<double>, py::arg("scores"), py::arg("k"), py::arg("excl_indptr"),
          py::arg("excl_indices"), py::arg("n_threads"));
    def_csr_matmul<float, int32_t>(m, "csr_matmul_f32_i32", "csr_horner_f32_i32");
    def_csr_matmul<float, int64_t>(m, "csr_matmul_f32_i64", "csr_horner_f32_i64");
    def_csr_matmul<double, int32_t>(m, "csr_matmul_f64_i32", "csr_horner_f64_i32");
    def_csr_matmul<double, int64_t>(m, "csr_matmul_f64_i64", "csr_horner_f64_i64");
}
