// graphrec compiled kernels: plain C++ on raw buffers, multi-threaded with std::thread.
// No torch or numpy headers here; module.cpp adapts numpy arrays to these signatures.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

namespace graphrec {

// Top-k of each row of a (b x n) score block, skipping the items listed for that row in the
// CSR structure (excl_indptr[b+1] starting at 0, excl_indices in [0, n); duplicates allowed).
// Output ids/vals are (b x k), sorted by descending score, ties by ascending id;
// rows with fewer than k candidates are padded with id -1 and value -inf. Returns false (and
// leaves the output unspecified) if a NaN score is found anywhere in the block.
template <typename T>
bool topk_exclude(const T* scores, int64_t b, int64_t n, int64_t k, const int64_t* excl_indptr,
                  const int64_t* excl_indices, int64_t* out_ids, T* out_vals, int n_threads);

// y (m x d) = A (m x n, CSR with indptr/indices of index type I) @ x (n x d, C order), rows
// split across threads into chunks of about equal non-zeros.
template <typename T, typename I>
void csr_matmul(const I* indptr, const I* indices, const T* data, int64_t m, const T* x, int64_t d, T* y,
                int n_threads);

// Horner's rule for out (m x d) = sum_{t=0..steps} alpha^t A^t h with A square (m x m, CSR):
// r <- alpha A r + h, steps times from r = h, each step one fused pass over A's rows.
template <typename T, typename I>
void csr_horner(const I* indptr, const I* indices, const T* data, int64_t m, const T* h, int64_t d, T alpha,
                int64_t steps, T* out, int n_threads);

// Boundaries (chunks + 1 of them) splitting [0, n) into chunks = clamp(n_chunks, 1, n)
// contiguous chunks: of about equal cost when a prefix array is given (the cost of [0, i) is
// prefix[i]; chunk t starts at the first i with prefix[i] >= t / chunks of the total), else of
// equal length.
template <typename I>
std::vector<int64_t> chunk_bounds(int64_t n, int64_t n_chunks, const I* prefix) {
    const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(n_chunks, n));
    std::vector<int64_t> bounds(chunks + 1, n);
    bounds[0] = 0;
    const int64_t total = prefix != nullptr ? static_cast<int64_t>(prefix[n]) : 0;
    for (int64_t t = 1; t < chunks; ++t) {
        bounds[t] = total > 0 ? std::lower_bound(prefix, prefix + n + 1, total * t / chunks) - prefix : n * t / chunks;
        bounds[t] = std::min(n, std::max(bounds[t], bounds[t - 1]));
    }
    return bounds;
}

// Chunks per thread handed out by run_chunks: a thread that starts late (a busy core) or gets
// slow rows leaves its share to the others.
constexpr int64_t kChunksPerThread = 8;

// Run fn(bounds[t], bounds[t + 1]) for every chunk t on up to n_threads threads (the calling
// thread and detached std::threads), each taking the next chunk not yet taken; returns once
// every chunk is done, rethrowing the first exception a chunk threw.
void run_chunks(const std::vector<int64_t>& bounds, int n_threads, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace graphrec
