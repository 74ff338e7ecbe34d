// Top-k selection per row with excluded items, for full-ranking evaluation.
#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>
#include <atomic>

#include "kernels.hpp"

namespace graphrec {

namespace {

// "a ranks before b": higher score first, then lower id.
template <typename T>
inline bool before(const std::pair<T, int64_t>& a, const std::pair<T, int64_t>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
}

}  // namespace

template <typename T>
bool topk_exclude(const T* scores, int64_t b, int64_t n, int64_t k, const int64_t* excl_indptr,
                  const int64_t* excl_indices, int64_t* out_ids, T* out_vals, int n_threads) {
    std::atomic<bool> ok{true};
    parallel_ranges(b, nullptr, n_threads, [&](int64_t begin, int64_t end) {
        std::vector<char> excluded(n, 0);
        std::vector<std::pair<T, int64_t>> heap;  // min-heap of the best k by `before`
        heap.reserve(k + 1);
        auto worse_on_top = [](const std::pair<T, int64_t>& a, const std::pair<T, int64_t>& c) {
            return before(a, c);
        };
        for (int64_t r = begin; r < end; ++r) {
            const T* row = scores + r * n;
            if (excl_indptr != nullptr)
                for (int64_t p = excl_indptr[r]; p < excl_indptr[r + 1]; ++p) excluded[excl_indices[p]] = 1;
            heap.clear();
            for (int64_t j = 0; j < n; ++j) {
                const T s = row[j];
                if (std::isnan(s)) ok = false;
                if (excluded[j]) continue;
                std::pair<T, int64_t> cand{s, j};
                if (static_cast<int64_t>(heap.size()) < k) {
                    heap.push_back(cand);
                    std::push_heap(heap.begin(), heap.end(), worse_on_top);
                } else if (before(cand, heap.front())) {
                    std::pop_heap(heap.begin(), heap.end(), worse_on_top);
                    heap.back() = cand;
                    std::push_heap(heap.begin(), heap.end(), worse_on_top);
                }
            }
            std::sort(heap.begin(), heap.end(), before<T>);
            int64_t* ids = out_ids + r * k;
            T* vals = out_vals + r * k;
            const int64_t found = static_cast<int64_t>(heap.size());
            for (int64_t t = 0; t < found; ++t) {
                ids[t] = heap[t].second;
                vals[t] = heap[t].first;
            }
            for (int64_t t = found; t < k; ++t) {
                ids[t] = -1;
                vals[t] = -std::numeric_limits<T>::infinity();
            }
            if (excl_indptr != nullptr)
                for (int64_t p = excl_indptr[r]; p < excl_indptr[r + 1]; ++p) excluded[excl_indices[p]] = 0;
        }
    });
    return ok;
}

template bool topk_exclude<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                                  int64_t*, float*, int);
template bool topk_exclude<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                                   int64_t*, double*, int);

}  // namespace graphrec
