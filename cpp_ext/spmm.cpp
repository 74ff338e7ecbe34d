// CSR x dense product (row-wise, as in Saad, "Iterative Methods for Sparse Linear Systems",
// 2nd ed., 3.4) and the thread runner shared by the kernels.
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "kernels.hpp"

namespace graphrec {

void run_chunks(const std::vector<int64_t>& bounds, int n_threads, const std::function<void(int64_t, int64_t)>& fn) {
    // Shared with the helper threads, which are detached: one that starts after every chunk was
    // taken (an idle core can take a millisecond to wake) finds nothing to do and exits without
    // touching bounds or fn, so the caller need not wait for it.
    struct State {
        std::atomic<int64_t> next{0}, done{0};
        std::mutex lock;
        std::condition_variable all_done;
        std::exception_ptr error;
    };
    const auto state = std::make_shared<State>();
    const int64_t chunks = static_cast<int64_t>(bounds.size()) - 1;
    auto work = [state, chunks, &bounds, &fn]() {
        for (int64_t t = state->next++; t < chunks; t = state->next++) {
            try {
                fn(bounds[t], bounds[t + 1]);
            } catch (...) {
                std::lock_guard<std::mutex> guard(state->lock);
                if (!state->error) state->error = std::current_exception();
            }
            if (++state->done == chunks) {
                std::lock_guard<std::mutex> guard(state->lock);
                state->all_done.notify_all();
            }
        }
    };
    const int64_t helpers = std::min<int64_t>(n_threads, chunks) - 1;
    for (int64_t h = 0; h < helpers; ++h) {
        try {
            std::thread(work).detach();
        } catch (const std::system_error&) {
            break;  // no more threads available: the others (at least this one) do the chunks
        }
    }
    work();
    std::unique_lock<std::mutex> guard(state->lock);
    state->all_done.wait(guard, [&] { return state->done.load() == chunks; });
    if (state->error) std::rethrow_exception(state->error);
}

namespace {

// Columns [c0, c0 + W) of y_i = sum_p data[p] * x[indices[p], :], summed in registers over the
// row's non-zeros. `omp simd` (compiled with -fopenmp-simd: no OpenMP runtime) makes the compiler
// vectorise the column loop rather than gather across non-zeros.
template <typename T, typename I, int W>
inline void row_block(const I* __restrict__ indices, const T* __restrict__ data, int64_t p0, int64_t p1,
                      const T* __restrict__ x, int64_t d, int64_t c0, T* __restrict__ yi) {
    T acc[W] = {};
    for (int64_t p = p0; p < p1; ++p) {
        const T a = data[p];
        const T* __restrict__ xj = x + indices[p] * d + c0;
#pragma omp simd
        for (int u = 0; u < W; ++u) acc[u] += a * xj[u];
    }
    for (int u = 0; u < W; ++u) yi[c0 + u] = acc[u];
}

// y[i, :] = sum_p data[p] * x[indices[p], :] for rows [begin, end): 64-byte column blocks (one
// cache line of x per non-zero) accumulated in registers, then a scalar tail for d % W columns.
template <typename T, typename I>
inline void csr_rows(const I* __restrict__ indptr, const I* __restrict__ indices,
                     const T* __restrict__ data, const T* __restrict__ x, int64_t d, T* __restrict__ y,
                     int64_t begin, int64_t end) {
    constexpr int W = 64 / sizeof(T);
    const int64_t d_blocked = d - d % W;
    for (int64_t i = begin; i < end; ++i) {
        T* __restrict__ yi = y + i * d;
        for (int64_t c0 = 0; c0 < d_blocked; c0 += W)
            row_block<T, I, W>(indices, data, indptr[i], indptr[i + 1], x, d, c0, yi);
        if (d_blocked == d) continue;
        for (int64_t c = d_blocked; c < d; ++c) yi[c] = T(0);
        for (int64_t p = indptr[i]; p < indptr[i + 1]; ++p) {
            const T a = data[p];
            const T* __restrict__ xj = x + indices[p] * d;
            for (int64_t c = d_blocked; c < d; ++c) yi[c] += a * xj[c];
        }
    }
}

}  // namespace

template <typename T, typename I>
void csr_matmul(const I* indptr, const I* indices, const T* data, int64_t m, const T* x, int64_t d, T* y,
                int n_threads) {
    run_chunks(chunk_bounds(m, kChunksPerThread * n_threads, indptr), n_threads,
               [&](int64_t begin, int64_t end) { csr_rows<T, I>(indptr, indices, data, x, d, y, begin, end); });
}

template void csr_matmul<float, int32_t>(const int32_t*, const int32_t*, const float*, int64_t, const float*,
                                         int64_t, float*, int);
template void csr_matmul<float, int64_t>(const int64_t*, const int64_t*, const float*, int64_t, const float*,
                                         int64_t, float*, int);
template void csr_matmul<double, int32_t>(const int32_t*, const int32_t*, const double*, int64_t, const double*,
                                          int64_t, double*, int);
template void csr_matmul<double, int64_t>(const int64_t*, const int64_t*, const double*, int64_t, const double*,
                                          int64_t, double*, int);

}  // namespace graphrec
