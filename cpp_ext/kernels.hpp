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

// LowFER training step (lowfer.cpp). Philox4x32-10 of one counter under one key (known-answer tests).
void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]);

// keep[e] = 1 if the Philox word of entry e (layout in lowfer.cpp) of stream `stream` under `key`
// is < threshold, else 0, for e < n: independent Bernoulli(threshold / 2^32) entries
// (threshold in [1, 2^32]).
void dropout_keep(uint8_t* keep, int64_t n, uint64_t key, uint32_t stream, uint64_t threshold);

// mask[e] = scale where dropout_keep would keep entry e, else 0.
template <typename T>
void dropout_mask(T* mask, int64_t n, uint64_t key, uint32_t stream, uint64_t threshold, T scale);

// z (b x d) = k-window sums of A * C, C[i, t] = keep[i, t] ? RV[row_of[i], t] * scale : 0;
// A, keep are (b x d k), RV has d k columns, row_of[i] indexes its rows.
template <typename T>
void lowfer_pool_forward(const T* A, const T* RV, const int64_t* row_of, const uint8_t* keep, int64_t b, int64_t d,
                         int64_t k, T scale, T* z);

// Backward of lowfer_pool_forward given grad = d loss / d z (b x d): overwrites A with
// d loss / d A = C * grad (broadcast over windows) and sets dRV (n_rows x d k) to d loss / d RV
// (rows of one relation summed).
template <typename T>
void lowfer_pool_backward(const T* grad, T* A, const T* RV, const int64_t* row_of, const uint8_t* keep, int64_t b,
                          int64_t d, int64_t k, T scale, int64_t n_rows, T* dRV);

// SPE rho inference passes (pe.cpp), rows split across threads by non-zeros.
// out (m x d) = act(alpha y + S y + (alpha + deg) bias^T + 1 post^T) with S (m x m, CSR of ones:
// indptr[m + 1] starting at 0, indices in [0, m), duplicates count) and deg its row lengths;
// act = ReLU if relu else the identity; out must not overlap y.
template <typename T>
void gin_aggregate(const int64_t* indptr, const int64_t* indices, int64_t m, const T* y, int64_t d, T alpha,
                   const T* bias, const T* post, bool relu, T* out, int n_threads);

// x (m x d) <- act(x + 1 bias^T) in place.
template <typename T>
void bias_act(T* x, int64_t m, int64_t d, const T* bias, bool relu, int n_threads);

}  // namespace graphrec
