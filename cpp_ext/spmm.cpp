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
// row's non-zeros; with Axpy, y_i = alpha * that + h_i instead (the fused Horner step). `omp simd`
// (compiled with -fopenmp-simd: no OpenMP runtime) makes the compiler vectorise the column loop
// rather than gather across non-zeros.
template <typename T, typename I, int W, bool Axpy>
inline void row_block(const I* __restrict__ indices, const T* __restrict__ data, int64_t p0, int64_t p1,
                      const T* __restrict__ x, int64_t d, int64_t c0, T* __restrict__ yi, T alpha,
                      const T* __restrict__ hi) {
    T acc[W] = {};
    for (int64_t p = p0; p < p1; ++p) {
        const T a = data[p];
        const T* __restrict__ xj = x + indices[p] * d + c0;
#pragma omp simd
        for (int u = 0; u < W; ++u) acc[u] += a * xj[u];
    }
    for (int u = 0; u < W; ++u) yi[c0 + u] = Axpy ? alpha * acc[u] + hi[c0 + u] : acc[u];
}

// Widths up to this many columns are summed in one pass over a row's non-zeros (the whole output
// row in an accumulator); wider x goes through 64-byte column blocks.
constexpr int64_t kNarrow = 32;

// Rows [begin, end) of a product with x of D <= kNarrow columns (D a compile-time constant, or
// 0 for d known at run time only): the whole output row accumulated in one pass over the row's
// non-zeros; with a constant D the accumulator lives in registers.
template <typename T, typename I, bool Axpy, int D>
inline void narrow_rows_fixed(const I* __restrict__ indptr, const I* __restrict__ indices,
                              const T* __restrict__ data, const T* __restrict__ x, int64_t d, T* __restrict__ y,
                              int64_t begin, int64_t end, T alpha, const T* __restrict__ h) {
    const int64_t w = D > 0 ? D : d;
    for (int64_t i = begin; i < end; ++i) {
        T acc[D > 0 ? D : kNarrow] = {};
        for (int64_t p = indptr[i]; p < indptr[i + 1]; ++p) {
            const T a = data[p];
            const T* __restrict__ xj = x + indices[p] * w;
#pragma omp simd
            for (int64_t c = 0; c < w; ++c) acc[c] += a * xj[c];
        }
        T* __restrict__ yi = y + i * w;
        const T* __restrict__ hi = Axpy ? h + i * w : nullptr;
        for (int64_t c = 0; c < w; ++c) yi[c] = Axpy ? alpha * acc[c] + hi[c] : acc[c];
    }
}

template <typename T, typename I, bool Axpy>
inline void narrow_rows(const I* indptr, const I* indices, const T* data, const T* x, int64_t d, T* y,
                        int64_t begin, int64_t end, T alpha, const T* h) {
    switch (d) {  // the widths of thin blocks that come up most (k + 1 + oversampling for small k)
#define GRAPHREC_NARROW(D) \
    case D: return narrow_rows_fixed<T, I, Axpy, D>(indptr, indices, data, x, d, y, begin, end, alpha, h);
        GRAPHREC_NARROW(1) GRAPHREC_NARROW(2) GRAPHREC_NARROW(3) GRAPHREC_NARROW(4) GRAPHREC_NARROW(5)
        GRAPHREC_NARROW(6) GRAPHREC_NARROW(7) GRAPHREC_NARROW(8) GRAPHREC_NARROW(9) GRAPHREC_NARROW(10)
        GRAPHREC_NARROW(11) GRAPHREC_NARROW(12) GRAPHREC_NARROW(13) GRAPHREC_NARROW(14) GRAPHREC_NARROW(15)
        GRAPHREC_NARROW(16)
#undef GRAPHREC_NARROW
        default: return narrow_rows_fixed<T, I, Axpy, 0>(indptr, indices, data, x, d, y, begin, end, alpha, h);
    }
}

// y[i, :] = sum_p data[p] * x[indices[p], :] (with Axpy: alpha * that + h[i, :]) for rows
// [begin, end): narrow x in one pass, else 64-byte column blocks (one cache line of x per non-zero) accumulated in
// registers, then a scalar tail for d % W columns.
template <typename T, typename I, bool Axpy = false>
inline void csr_rows(const I* __restrict__ indptr, const I* __restrict__ indices,
                     const T* __restrict__ data, const T* __restrict__ x, int64_t d, T* __restrict__ y,
                     int64_t begin, int64_t end, T alpha = T(1), const T* __restrict__ h = nullptr) {
    constexpr int W = 64 / sizeof(T);
    if (d <= kNarrow) {  // narrow x (a thin block of vectors): one pass over each row's non-zeros
        narrow_rows<T, I, Axpy>(indptr, indices, data, x, d, y, begin, end, alpha, h);
        return;
    }
    const int64_t d_blocked = d - d % W;
    for (int64_t i = begin; i < end; ++i) {
        T* __restrict__ yi = y + i * d;
        const T* __restrict__ hi = Axpy ? h + i * d : nullptr;
        for (int64_t c0 = 0; c0 < d_blocked; c0 += W)
            row_block<T, I, W, Axpy>(indices, data, indptr[i], indptr[i + 1], x, d, c0, yi, alpha, hi);
        if (d_blocked == d) continue;
        T tail[W] = {};
        for (int64_t p = indptr[i]; p < indptr[i + 1]; ++p) {
            const T a = data[p];
            const T* __restrict__ xj = x + indices[p] * d;
            for (int64_t c = d_blocked; c < d; ++c) tail[c - d_blocked] += a * xj[c];
        }
        for (int64_t c = d_blocked; c < d; ++c) yi[c] = Axpy ? alpha * tail[c - d_blocked] + hi[c] : tail[c - d_blocked];
    }
}

}  // namespace

// Threads worth starting for a product of nnz non-zeros times d columns: each should get at
// least kMinWorkPerThread multiply-adds (about 0.1 ms), or thread start-up and, on a busy machine,
// waiting for a descheduled helper cost more than they save.
constexpr int64_t kMinWorkPerThread = int64_t(1) << 18;

inline int useful_threads(int n_threads, int64_t nnz, int64_t d) {
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n_threads, nnz * d / kMinWorkPerThread)));
}

template <typename T, typename I>
void csr_matmul(const I* indptr, const I* indices, const T* data, int64_t m, const T* x, int64_t d, T* y,
                int n_threads) {
    n_threads = useful_threads(n_threads, static_cast<int64_t>(indptr[m]), d);
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

template <typename T, typename I>
void csr_horner(const I* indptr, const I* indices, const T* data, int64_t m, const T* h, int64_t d, T alpha,
                int64_t steps, T* out, int n_threads) {
    if (steps <= 0) {
        std::copy(h, h + m * d, out);
        return;
    }
    // Ping-pong between out and a scratch buffer, starting so that the last step writes out.
    n_threads = useful_threads(n_threads, static_cast<int64_t>(indptr[m]), d);
    std::vector<T> scratch(steps > 1 ? m * d : 0);
    T* bufs[2] = {out, scratch.data()};
    const auto bounds = chunk_bounds(m, kChunksPerThread * n_threads, indptr);
    const T* src = h;
    for (int64_t t = 0; t < steps; ++t) {
        T* dst = bufs[(steps - 1 - t) % 2];
        run_chunks(bounds, n_threads, [&](int64_t begin, int64_t end) {
            csr_rows<T, I, true>(indptr, indices, data, src, d, dst, begin, end, alpha, h);
        });
        src = dst;
    }
}

#define GRAPHREC_HORNER(T, I)                                                                              \
    template void csr_horner<T, I>(const I*, const I*, const T*, int64_t, const T*, int64_t, T, int64_t, T*, int);
GRAPHREC_HORNER(float, int32_t)
GRAPHREC_HORNER(float, int64_t)
GRAPHREC_HORNER(double, int32_t)
GRAPHREC_HORNER(double, int64_t)
#undef GRAPHREC_HORNER

}  // namespace graphrec
