// graphrec compiled kernels: plain C++ on raw buffers, multi-threaded with std::thread.
// No torch or numpy headers here; module.cpp adapts numpy arrays to these signatures.
#pragma once
#include <cstdint>
#include <functional>

namespace graphrec {

// Top-k of each row of a (b x n) score block, skipping the items listed for that row in the
// CSR structure (excl_indptr[b+1], excl_indices). Output ids/vals are (b x k), sorted by
// descending score, ties by ascending id; rows with fewer than k candidates are padded with
// id -1 and value -inf. Returns false if a NaN score is found.
template <typename T>
bool topk_exclude(const T* scores, int64_t b, int64_t n, int64_t k, const int64_t* excl_indptr,
                  const int64_t* excl_indices, int64_t* out_ids, T* out_vals, int n_threads);

// y (m x d) = A (m x n, CSR with int64 indptr/indices) @ x (n x d), rows split by nnz across threads.
template <typename T>
void csr_matmul(const int64_t* indptr, const int64_t* indices, const T* data, int64_t m,
                const T* x, int64_t d, T* y, int n_threads);

// Run fn(begin, end) over [0, n) split into n_threads contiguous chunks of roughly equal cost,
// where cost(i) is given by a prefix array (cost of rows [0, i) = prefix[i]), or uniform if null.
void parallel_ranges(int64_t n, const int64_t* prefix, int n_threads,
                     const std::function<void(int64_t, int64_t)>& fn);

}  // namespace graphrec
