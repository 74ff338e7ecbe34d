// SPE rho (GIN over the pair rows) inference passes: one fused pass per GIN aggregation and one
// fused bias + activation pass after a bias-free matrix product.
//
// The Python side (graphrec/pe/_fused.py) runs the 128 x 128 products with BLAS into reused
// buffers, without a bias (torch's addmm copies the broadcast bias into the output before the
// product: a full extra pass); these kernels then apply everything between two products in one
// pass over the (rows x d) buffer each:
//
//   gin_aggregate  out[r] = act(alpha y[r] + sum_{p in row r of S} y[indices[p]]
//                               + (alpha + deg(r)) bias + post),  deg(r) = indptr[r + 1] - indptr[r]
//   bias_act       x[r]   = act(x[r] + bias)   (in place)
//
// The first is the GIN aggregation (1 + eps) Y + S Y of Y = H W^T + 1 b^T, written for Y without
// its bias: S (1 b^T) = deg 1 b^T because S holds ones (duplicates count twice), so the bias
// enters as a per-row multiple. act is ReLU or the identity.
#include <algorithm>
#include <cstdint>

#include "kernels.hpp"

namespace graphrec {

namespace {

// Rows [begin, end), columns [c0, c0 + kVectors * lanes): the output block is accumulated in
// kVectors 32-byte registers over the row's non-zeros (GCC vector extensions: the accumulators
// never round-trip through the stack between the three phases).
constexpr int kVectors = 8;

template <typename T, bool Relu>
inline void aggregate_block(const int64_t* __restrict__ indptr, const int64_t* __restrict__ indices,
                            const T* __restrict__ y, int64_t d, int64_t c0, T alpha, const T* __restrict__ bias,
                            const T* __restrict__ post, T* __restrict__ out, int64_t begin, int64_t end) {
    typedef T V __attribute__((vector_size(32), aligned(sizeof(T))));   // unaligned loads and stores
    const V* __restrict__ b = reinterpret_cast<const V*>(bias + c0);
    const V* __restrict__ q = reinterpret_cast<const V*>(post + c0);
    for (int64_t r = begin; r < end; ++r) {
        const int64_t p0 = indptr[r], p1 = indptr[r + 1];
        const T scale = alpha + static_cast<T>(p1 - p0);
        const V* __restrict__ yr = reinterpret_cast<const V*>(y + r * d + c0);
        V acc[kVectors];
        for (int v = 0; v < kVectors; ++v) acc[v] = alpha * yr[v] + scale * b[v] + q[v];
        for (int64_t p = p0; p < p1; ++p) {
            const V* __restrict__ yc = reinterpret_cast<const V*>(y + indices[p] * d + c0);
            for (int v = 0; v < kVectors; ++v) acc[v] += yc[v];
        }
        V* __restrict__ o = reinterpret_cast<V*>(out + r * d + c0);
        for (int v = 0; v < kVectors; ++v) o[v] = Relu ? (acc[v] > T(0) ? acc[v] : V{} ) : acc[v];
    }
}

// Any width: the same row by row with the output row accumulated in place (in L1).
template <typename T, bool Relu>
void aggregate_rows(const int64_t* __restrict__ indptr, const int64_t* __restrict__ indices,
                    const T* __restrict__ y, int64_t d, T alpha, const T* __restrict__ bias,
                    const T* __restrict__ post, T* __restrict__ out, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
        const int64_t p0 = indptr[r], p1 = indptr[r + 1];
        const T scale = alpha + static_cast<T>(p1 - p0);
        const T* __restrict__ yr = y + r * d;
        T* __restrict__ o = out + r * d;
#pragma omp simd
        for (int64_t c = 0; c < d; ++c) o[c] = alpha * yr[c] + scale * bias[c] + post[c];
        for (int64_t p = p0; p < p1; ++p) {
            const T* __restrict__ yc = y + indices[p] * d;
#pragma omp simd
            for (int64_t c = 0; c < d; ++c) o[c] += yc[c];
        }
        if (Relu) {
#pragma omp simd
            for (int64_t c = 0; c < d; ++c) o[c] = o[c] > T(0) ? o[c] : T(0);
        }
    }
}

template <typename T, bool Relu>
void aggregate_any(const int64_t* indptr, const int64_t* indices, const T* y, int64_t d, T alpha, const T* bias,
                   const T* post, T* out, int64_t begin, int64_t end) {
    // 256-byte column blocks (16 accumulator registers of 128 bits, 8 of 256) when d is a multiple
    // (rho's hidden width, official 128), else the in-place form
    constexpr int W = kVectors * 32 / sizeof(T);
    if (d % W != 0) return aggregate_rows<T, Relu>(indptr, indices, y, d, alpha, bias, post, out, begin, end);
    for (int64_t c0 = 0; c0 < d; c0 += W)
        aggregate_block<T, Relu>(indptr, indices, y, d, c0, alpha, bias, post, out, begin, end);
}

template <typename T, bool Relu>
void bias_act_rows(T* x, int64_t d, const T* __restrict__ bias, int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
        T* __restrict__ xr = x + r * d;
#pragma omp simd
        for (int64_t c = 0; c < d; ++c) {
            const T v = xr[c] + bias[c];
            xr[c] = Relu ? (v > T(0) ? v : T(0)) : v;
        }
    }
}

// Threads worth starting for `work` element operations: at least about 1 ms each. GINRho calls
// these passes on blocks of about 1,000 rows (0.03 ms of work, less than starting a thread), so
// those run on the calling thread; only large single blocks are split.
inline int threads_for(int n_threads, int64_t work) {
    constexpr int64_t kMinWork = int64_t(1) << 21;
    return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n_threads, work / kMinWork)));
}

}  // namespace

template <typename T>
void gin_aggregate(const int64_t* indptr, const int64_t* indices, int64_t m, const T* y, int64_t d, T alpha,
                   const T* bias, const T* post, bool relu, T* out, int n_threads) {
    n_threads = threads_for(n_threads, (m + indptr[m]) * d);
    run_chunks(chunk_bounds(m, kChunksPerThread * n_threads, indptr), n_threads, [&](int64_t begin, int64_t end) {
        if (relu)
            aggregate_any<T, true>(indptr, indices, y, d, alpha, bias, post, out, begin, end);
        else
            aggregate_any<T, false>(indptr, indices, y, d, alpha, bias, post, out, begin, end);
    });
}

template <typename T>
void bias_act(T* x, int64_t m, int64_t d, const T* bias, bool relu, int n_threads) {
    n_threads = threads_for(n_threads, m * d);
    run_chunks(chunk_bounds<int64_t>(m, kChunksPerThread * n_threads, nullptr), n_threads,
               [&](int64_t begin, int64_t end) {
                   if (relu)
                       bias_act_rows<T, true>(x, d, bias, begin, end);
                   else
                       bias_act_rows<T, false>(x, d, bias, begin, end);
               });
}

template void gin_aggregate<float>(const int64_t*, const int64_t*, int64_t, const float*, int64_t, float,
                                   const float*, const float*, bool, float*, int);
template void gin_aggregate<double>(const int64_t*, const int64_t*, int64_t, const double*, int64_t, double,
                                    const double*, const double*, bool, double*, int);
template void bias_act<float>(float*, int64_t, int64_t, const float*, bool, int);
template void bias_act<double>(double*, int64_t, int64_t, const double*, bool, int);

}  // namespace graphrec
