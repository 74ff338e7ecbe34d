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

// LowFER training step (lowfer.cpp). Every array is taken as is (noconvert: no silent copy, so
// that in-place outputs land in the caller's buffers).
py::tuple philox4x32_10_py(Array<uint32_t> counter, Array<uint32_t> key) {
    require(counter.ndim() == 1 && counter.shape(0) == 4, "counter must hold 4 uint32 words");
    require(key.ndim() == 1 && key.shape(0) == 2, "key must hold 2 uint32 words");
    uint32_t out[4];
    graphrec::philox4x32_10(counter.data(), key.data(), out);
    return py::make_tuple(out[0], out[1], out[2], out[3]);
}

void require_threshold(uint64_t threshold) {
    require(threshold >= 1 && threshold <= (uint64_t{1} << 32), "threshold must be in [1, 2^32]");
}

void dropout_keep_py(Array<uint8_t> keep, uint64_t key, uint32_t stream, uint64_t threshold) {
    require_threshold(threshold);
    graphrec::dropout_keep(keep.mutable_data(), keep.size(), key, stream, threshold);
}

template <typename T>
void dropout_mask_py(Array<T> mask, uint64_t key, uint32_t stream, uint64_t threshold, T scale) {
    require_threshold(threshold);
    graphrec::dropout_mask<T>(mask.mutable_data(), mask.size(), key, stream, threshold, scale);
}

// Shapes shared by both passes: A and keep (b, d k), RV (n_rows, d k), row_of (b,) in [0, n_rows).
template <typename T>
void check_pool_shapes(const Array<T>& A, const Array<T>& RV, const Array<int64_t>& row_of,
                       const Array<uint8_t>& keep, int64_t d, int64_t k) {
    require(d >= 1 && k >= 1, "d and k must be >= 1");
    require(A.ndim() == 2 && A.shape(1) == d * k, "A must be (b, d k)");
    require(RV.ndim() == 2 && RV.shape(1) == d * k, "RV must be (n_rows, d k)");
    require(keep.ndim() == 2 && keep.shape(0) == A.shape(0) && keep.shape(1) == d * k, "keep must be (b, d k)");
    require(row_of.ndim() == 1 && row_of.shape(0) == A.shape(0), "row_of must be (b,)");
    for (int64_t i = 0; i < row_of.shape(0); ++i)
        require(row_of.at(i) >= 0 && row_of.at(i) < RV.shape(0), "row_of must index rows of RV");
}

template <typename T>
void lowfer_pool_forward_py(Array<T> A, Array<T> RV, Array<int64_t> row_of, Array<uint8_t> keep, int64_t k,
                            T scale, Array<T> z) {
    const int64_t d = z.ndim() == 2 ? z.shape(1) : 0;
    check_pool_shapes(A, RV, row_of, keep, d, k);
    require(z.shape(0) == A.shape(0), "z must be (b, d)");
    graphrec::lowfer_pool_forward<T>(A.data(), RV.data(), row_of.data(), keep.data(), A.shape(0), d, k, scale,
                                     z.mutable_data());
}

template <typename T>
void lowfer_pool_backward_py(Array<T> grad, Array<T> A, Array<T> RV, Array<int64_t> row_of, Array<uint8_t> keep,
                             int64_t k, T scale, Array<T> dRV) {
    const int64_t d = grad.ndim() == 2 ? grad.shape(1) : 0;
    check_pool_shapes(A, RV, row_of, keep, d, k);
    require(grad.shape(0) == A.shape(0), "grad must be (b, d)");
    require(dRV.ndim() == 2 && dRV.shape(0) == RV.shape(0) && dRV.shape(1) == d * k, "dRV must be shaped like RV");
    graphrec::lowfer_pool_backward<T>(grad.data(), A.mutable_data(), RV.data(), row_of.data(), keep.data(),
                                      A.shape(0), d, k, scale, RV.shape(0), dRV.mutable_data());
}

template <typename T>
void def_lowfer(py::module_& m, const char* mask, const char* forward, const char* backward) {
    m.def(mask, &dropout_mask_py<T>, py::arg("mask").noconvert(), py::arg("key"), py::arg("stream"),
          py::arg("threshold"), py::arg("scale"));
    m.def(forward, &lowfer_pool_forward_py<T>, py::arg("A").noconvert(), py::arg("RV").noconvert(),
          py::arg("row_of").noconvert(), py::arg("keep").noconvert(), py::arg("k"), py::arg("scale"),
          py::arg("z").noconvert());
    m.def(backward, &lowfer_pool_backward_py<T>, py::arg("grad").noconvert(), py::arg("A").noconvert(),
          py::arg("RV").noconvert(), py::arg("row_of").noconvert(), py::arg("keep").noconvert(), py::arg("k"),
          py::arg("scale"), py::arg("dRV").noconvert());
}

// SPE rho passes (pe.cpp). Every array is taken as is (noconvert: a wrong dtype or layout is a
// TypeError, never a silent copy, so outputs land in the caller's buffers); the O(nnz) checks
// keep a bad CSR structure from reading out of bounds.
template <typename T>
void gin_aggregate_py(Array<int64_t> indptr, Array<int64_t> indices, Array<T> y, T alpha, Array<T> bias,
                      Array<T> post, bool relu, Array<T> out, int n_threads) {
    require(y.ndim() == 2, "y must be 2-dimensional (m, d)");
    const int64_t m = y.shape(0), d = y.shape(1);
    require(indptr.ndim() == 1 && indptr.shape(0) == m + 1, "indptr must have length m + 1 (m = rows of y)");
    require(indices.ndim() == 1, "indices must be 1-dimensional");
    require(bias.ndim() == 1 && bias.shape(0) == d, "bias must have shape (d,) (d = columns of y)");
    require(post.ndim() == 1 && post.shape(0) == d, "post must have shape (d,) (d = columns of y)");
    require(out.ndim() == 2 && out.shape(0) == m && out.shape(1) == d, "out must have the shape of y");
    require(n_threads >= 1, "n_threads must be >= 1");
    const int64_t* ip = indptr.data();
    require(ip[0] == 0 && ip[m] <= indices.shape(0), "indptr must start at 0 and end within indices");
    bool sorted = true, in_range = true;   // one require each: building its message per entry costs more
    for (int64_t r = 0; r < m; ++r) sorted &= ip[r] <= ip[r + 1];
    require(sorted, "indptr must be non-decreasing");
    const int64_t* ix = indices.data();
    for (int64_t p = 0; p < ip[m]; ++p) in_range &= ix[p] >= 0 && ix[p] < m;
    require(in_range, "indices must be column ids in [0, m)");
    const T* y0 = y.data();
    const T* o0 = out.data();
    require(m * d == 0 || o0 + m * d <= y0 || y0 + m * d <= o0, "out must not overlap y");
    py::gil_scoped_release release;
    graphrec::gin_aggregate<T>(ip, ix, m, y0, d, alpha, bias.data(), post.data(), relu, out.mutable_data(),
                               n_threads);
}

template <typename T>
void bias_act_py(Array<T> x, Array<T> bias, bool relu, int n_threads) {
    require(x.ndim() == 2, "x must be 2-dimensional (m, d)");
    require(bias.ndim() == 1 && bias.shape(0) == x.shape(1), "bias must have shape (d,) (d = columns of x)");
    require(n_threads >= 1, "n_threads must be >= 1");
    T* x0 = x.mutable_data();
    py::gil_scoped_release release;
    graphrec::bias_act<T>(x0, x.shape(0), x.shape(1), bias.data(), relu, n_threads);
}

template <typename T>
void def_pe(py::module_& m, const char* aggregate, const char* bias_act) {
    m.def(aggregate, &gin_aggregate_py<T>, py::arg("indptr").noconvert(), py::arg("indices").noconvert(),
          py::arg("y").noconvert(), py::arg("alpha"), py::arg("bias").noconvert(), py::arg("post").noconvert(),
          py::arg("relu"), py::arg("out").noconvert(), py::arg("n_threads"));
    m.def(bias_act, &bias_act_py<T>, py::arg("x").noconvert(), py::arg("bias").noconvert(), py::arg("relu"),
          py::arg("n_threads"));
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
    m.def("philox4x32_10", &philox4x32_10_py, py::arg("counter").noconvert(), py::arg("key").noconvert());
    m.def("dropout_keep", &dropout_keep_py, py::arg("keep").noconvert(), py::arg("key"), py::arg("stream"),
          py::arg("threshold"));
    def_lowfer<float>(m, "dropout_mask_f32", "lowfer_pool_forward_f32", "lowfer_pool_backward_f32");
    def_lowfer<double>(m, "dropout_mask_f64", "lowfer_pool_forward_f64", "lowfer_pool_backward_f64");
    def_pe<float>(m, "gin_aggregate_f32", "bias_act_f32");
    def_pe<double>(m, "gin_aggregate_f64", "bias_act_f64");
}
