// LowFER training-step kernels: Philox dropout draws and the fused mask / Hadamard / sum-pool passes.
//
// The Python side (graphrec/kg/_fused.py) computes A = x U and RV = R_u V (one row per distinct
// relation of the batch) with BLAS; these kernels do everything between those products and the
// backward products, one pass over the (b, k d_e) buffers each way:
//
//   forward   z[i, j]  = sum_{t in window j} A[i, t] * C[i, t],   C[i, t] = keep[i, t] ? RV[u_i, t] * s : 0
//   backward  dA[i, t] = C[i, t] * g[i, t / k]                     (written over A)
//             dRV[u, t] = sum_{i: u_i = u} keep[i, t] ? (A[i, t] * g[i, t / k]) * s : 0
//
// with s = 1 / (1 - p) and u_i the row of RV holding row i's relation. C is never stored: the
// backward recomputes it from the cached RV rows and the byte mask.
//
// Random numbers: Philox4x32-10 (Salmon et al., SC 2011, "Parallel random numbers: as easy as
// 1, 2, 3"), the counter-based generator of cuRAND / torch CUDA dropout, one 32-bit word per
// entry. Entry e of stream c under key (k0, k1) is word w = (e mod 128) / 32 of
// Philox(counter = (j mod 2^32, j >> 32, c, 0), key) with block j = 32 (e / 128) + e mod 32 (blocks
// are generated 32 at a time in vector lanes); it is kept iff that word is < threshold, i.e.
// with probability threshold / 2^32. Every (block, word) pair serves exactly one entry.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#ifdef __AVX512F__
#include <immintrin.h>
#endif

#include "kernels.hpp"

namespace graphrec {

namespace {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u, kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u, kPhiloxW1 = 0xBB67AE85u;

inline void philox_round(uint32_t& c0, uint32_t& c1, uint32_t& c2, uint32_t& c3, uint32_t k0, uint32_t k1) {
    const uint64_t p0 = static_cast<uint64_t>(kPhiloxM0) * c0;
    const uint64_t p1 = static_cast<uint64_t>(kPhiloxM1) * c2;
    const uint32_t hi0 = static_cast<uint32_t>(p0 >> 32), lo0 = static_cast<uint32_t>(p0);
    const uint32_t hi1 = static_cast<uint32_t>(p1 >> 32), lo1 = static_cast<uint32_t>(p1);
    c0 = hi1 ^ c1 ^ k0;
    c1 = lo1;
    c2 = hi0 ^ c3 ^ k1;
    c3 = lo0;
}

// The generator runs kGroup blocks side by side in 64-bit vector lanes (low 32 bits used, so the
// 32 x 32 -> 64 bit products are single vpmuludq instructions), as kVectors independent vectors.
typedef uint64_t u64x8 __attribute__((vector_size(64)));
typedef uint32_t u32x8 __attribute__((vector_size(32)));
constexpr int64_t kVectors = 4;
constexpr int64_t kGroup = 8 * kVectors;   // blocks per group
constexpr int64_t kWords = 4 * kGroup;     // words (entries) per group

// out = a * m for lanes a < 2^32: one vpmuludq where AVX-512 is on (gcc emits a full 64-bit
// product otherwise). Vectors pass by reference: no vector ABI involved without AVX-512.
inline void mul_low32(const u64x8& a, uint32_t m, u64x8& out) {
#ifdef __AVX512F__
    out = reinterpret_cast<u64x8>(_mm512_mul_epu32(reinterpret_cast<__m512i>(a), _mm512_set1_epi64(m)));
#else
    out = a * static_cast<uint64_t>(m);
#endif
}

// words[w * kGroup + l] = word w of Philox(counter = (first + l, stream), key), l < kGroup.
inline void philox_group(uint64_t first, uint32_t stream, uint32_t k0, uint32_t k1, uint32_t* words) {
    const u64x8 lanes = {0, 1, 2, 3, 4, 5, 6, 7}, low = u64x8{} + 0xFFFFFFFFull;
    u64x8 c0[kVectors], c1[kVectors], c2[kVectors], c3[kVectors];
    for (int64_t v = 0; v < kVectors; ++v) {
        const u64x8 block = lanes + (first + 8 * static_cast<uint64_t>(v));
        c0[v] = block & low;
        c1[v] = block >> 32;
        c2[v] = u64x8{} + stream;
        c3[v] = u64x8{};
    }
    uint64_t a = k0, b = k1;
    for (int round = 0; round < 10; ++round) {
        for (int64_t v = 0; v < kVectors; ++v) {
            u64x8 p0, p1;
            mul_low32(c0[v], kPhiloxM0, p0);
            mul_low32(c2[v], kPhiloxM1, p1);
            c0[v] = (p1 >> 32) ^ c1[v] ^ a;
            c1[v] = p1 & low;
            c2[v] = (p0 >> 32) ^ c3[v] ^ b;
            c3[v] = p0 & low;
        }
        a = (a + kPhiloxW0) & 0xFFFFFFFFull;
        b = (b + kPhiloxW1) & 0xFFFFFFFFull;
    }
    const u64x8* c[4] = {c0, c1, c2, c3};
    for (int64_t w = 0; w < 4; ++w)
        for (int64_t v = 0; v < kVectors; ++v) {
            const u32x8 out = __builtin_convertvector(c[w][v], u32x8);
            std::memcpy(words + w * kGroup + 8 * v, &out, sizeof(out));
        }
}

// fn(start, words, len) for consecutive runs of entries [start, start + len) covering [0, n) in
// order, words[i] being the word of entry start + i. Entry e is word (e % kWords) / kGroup of
// block kGroup (e / kWords) + e % kGroup.
template <typename Fn>
void for_each_word(int64_t n, uint64_t key, uint32_t stream, Fn fn) {
    const uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
    alignas(64) uint32_t words[kWords];
    for (int64_t start = 0; start < n; start += kWords) {
        philox_group(static_cast<uint64_t>(start / kWords) * kGroup, stream, k0, k1, words);
        fn(start, words, std::min<int64_t>(kWords, n - start));
    }
}

}  // namespace

void philox4x32_10(const uint32_t counter[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3], a = key[0], b = key[1];
    for (int round = 0; round < 10; ++round) {
        philox_round(c0, c1, c2, c3, a, b);
        a += kPhiloxW0;
        b += kPhiloxW1;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
}

void dropout_keep(uint8_t* keep, int64_t n, uint64_t key, uint32_t stream, uint64_t threshold) {
    const uint32_t last = static_cast<uint32_t>(threshold - 1);   // threshold in [1, 2^32]
    for_each_word(n, key, stream, [&](int64_t start, const uint32_t* words, int64_t len) {
        uint8_t* out = keep + start;
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) out[i] = words[i] <= last;
    });
}

template <typename T>
void dropout_mask(T* mask, int64_t n, uint64_t key, uint32_t stream, uint64_t threshold, T scale) {
    const uint32_t last = static_cast<uint32_t>(threshold - 1);
    for_each_word(n, key, stream, [&](int64_t start, const uint32_t* words, int64_t len) {
        T* out = mask + start;
#pragma omp simd
        for (int64_t i = 0; i < len; ++i) out[i] = scale * static_cast<T>(words[i] <= last);
    });
}

template <typename T>
void lowfer_pool_forward(const T* A, const T* RV, const int64_t* row_of, const uint8_t* keep, int64_t b,
                         int64_t d, int64_t k, T scale, T* z) {
    const int64_t width = d * k;
    std::vector<T> row(width);   // the row's Hadamard product, then summed by windows
    T* product = row.data();
    for (int64_t i = 0; i < b; ++i) {
        const T* a = A + i * width;
        const T* rv = RV + row_of[i] * width;
        const uint8_t* kp = keep + i * width;
#pragma omp simd
        for (int64_t t = 0; t < width; ++t) product[t] = a[t] * (kp[t] ? rv[t] * scale : T(0));
        for (int64_t j = 0; j < d; ++j) {
            T sum = 0;
#pragma omp simd reduction(+ : sum)
            for (int64_t l = 0; l < k; ++l) sum += product[j * k + l];
            z[i * d + j] = sum;
        }
    }
}

template <typename T>
void lowfer_pool_backward(const T* grad, T* A, const T* RV, const int64_t* row_of, const uint8_t* keep, int64_t b,
                          int64_t d, int64_t k, T scale, int64_t n_rows, T* dRV) {
    const int64_t width = d * k;
    std::fill(dRV, dRV + n_rows * width, T(0));
    std::vector<T> row(width);   // the row's gradient broadcast over its windows
    T* g = row.data();
    for (int64_t i = 0; i < b; ++i) {
        T* a = A + i * width;
        const T* rv = RV + row_of[i] * width;
        T* drv = dRV + row_of[i] * width;
        const uint8_t* kp = keep + i * width;
        for (int64_t j = 0; j < d; ++j)
            for (int64_t l = 0; l < k; ++l) g[j * k + l] = grad[i * d + j];
#pragma omp simd
        for (int64_t t = 0; t < width; ++t) {
            const bool kept = kp[t] != 0;
            drv[t] += kept ? (a[t] * g[t]) * scale : T(0);
            a[t] = (kept ? rv[t] * scale : T(0)) * g[t];
        }
    }
}

template void dropout_mask<float>(float*, int64_t, uint64_t, uint32_t, uint64_t, float);
template void dropout_mask<double>(double*, int64_t, uint64_t, uint32_t, uint64_t, double);
template void lowfer_pool_forward<float>(const float*, const float*, const int64_t*, const uint8_t*, int64_t, int64_t,
                                         int64_t, float, float*);
template void lowfer_pool_forward<double>(const double*, const double*, const int64_t*, const uint8_t*, int64_t,
                                          int64_t, int64_t, double, double*);
template void lowfer_pool_backward<float>(const float*, float*, const float*, const int64_t*, const uint8_t*, int64_t,
                                          int64_t, int64_t, float, int64_t, float*);
template void lowfer_pool_backward<double>(const double*, double*, const double*, const int64_t*, const uint8_t*,
                                           int64_t, int64_t, int64_t, double, int64_t, double*);

}  // namespace graphrec
