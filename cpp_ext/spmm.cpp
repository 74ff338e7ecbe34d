// CSR x dense product and the thread-splitting helper shared by the kernels.
#include <algorithm>
#include <thread>
#include <vector>

#include "kernels.hpp"

namespace graphrec {

void parallel_ranges(int64_t n, const int64_t* prefix, int n_threads,
                     const std::function<void(int64_t, int64_t)>& fn) {
    n_threads = std::max(1, std::min<int>(n_threads, static_cast<int>(std::max<int64_t>(n, 1))));
    if (n_threads == 1) {
        fn(0, n);
        return;
    }
    std::vector<int64_t> bounds(n_threads + 1, n);
    bounds[0] = 0;
    if (prefix != nullptr && prefix[n] > 0) {
        // Balance by cost: thread t starts at the first row whose prefix cost reaches t/T of the total.
        const int64_t total = prefix[n];
        for (int t = 1; t < n_threads; ++t) {
            const int64_t target = total * t / n_threads;
            bounds[t] = std::lower_bound(prefix, prefix + n + 1, target) - prefix;
        }
    } else {
        for (int t = 1; t < n_threads; ++t) bounds[t] = n * t / n_threads;
    }
    for (int t = 1; t <= n_threads; ++t) bounds[t] = std::max(bounds[t], bounds[t - 1]);
    std::vector<std::thread> workers;
    workers.reserve(n_threads - 1);
    for (int t = 1; t < n_threads; ++t) workers.emplace_back(fn, bounds[t], bounds[t + 1]);
    fn(bounds[0], bounds[1]);
    for (auto& w : workers) w.join();
}

namespace {

// y[i, :] = sum_p data[p] * x[indices[p], :] for rows [begin, end).
template <typename T>
inline void csr_rows(const int64_t* __restrict__ indptr, const int64_t* __restrict__ indices,
                     const T* __restrict__ data, const T* __restrict__ x, int64_t d, T* __restrict__ y,
                     int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
        T* __restrict__ yi = y + i * d;
        for (int64_t c = 0; c < d; ++c) yi[c] = T(0);
        for (int64_t p = indptr[i]; p < indptr[i + 1]; ++p) {
            const T a = data[p];
            const T* __restrict__ xj = x + indices[p] * d;
            for (int64_t c = 0; c < d; ++c) yi[c] += a * xj[c];
        }
    }
}

}  // namespace

template <typename T>
void csr_matmul(const int64_t* indptr, const int64_t* indices, const T* data, int64_t m,
                const T* x, int64_t d, T* y, int n_threads) {
    parallel_ranges(m, indptr, n_threads,
                    [&](int64_t begin, int64_t end) { csr_rows<T>(indptr, indices, data, x, d, y, begin, end); });
}

template void csr_matmul<float>(const int64_t*, const int64_t*, const float*, int64_t, const float*, int64_t,
                                float*, int);
template void csr_matmul<double>(const int64_t*, const int64_t*, const double*, int64_t, const double*,
                                 int64_t, double*, int);

}  // namespace graphrec
