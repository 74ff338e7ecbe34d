// Top-k selection per row with excluded items, for full-ranking evaluation.
//
// Per row: a size-k heap of the best (score, id) pairs. Once it is full, its worst score is a
// threshold, and the scan only leaves its fast path (one comparison per score, checked a block
// at a time) for a score above the threshold or a NaN. A score equal to the threshold can never
// enter: every kept item has a smaller id, and ties are broken by ascending id.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "kernels.hpp"

namespace graphrec {

namespace {

template <typename T>
using Entry = std::pair<T, int64_t>;  // (score, item id)

// "a ranks before c": higher score first, then lower id. As the heap's "less", it keeps the
// entry that ranks last on top. A function object, so that the heap calls inline it.
struct Before {
    template <typename T>
    bool operator()(const Entry<T>& a, const Entry<T>& c) const {
        return a.first > c.first || (a.first == c.first && a.second < c.second);
    }
};

// Whether any of p[0..len) is above t or NaN (NaN fails every comparison): a counting loop that
// `omp simd` (compiled with -fopenmp-simd, no OpenMP runtime) turns into vector compares.
template <typename T>
inline bool any_above(const T* __restrict__ p, int64_t len, T t) {
    int32_t count = 0;
#pragma omp simd reduction(+ : count)
    for (int64_t u = 0; u < len; ++u) count += !(p[u] <= t);
    return count != 0;
}

template <typename T>
class RowSelector {
  public:
    RowSelector(int64_t n, int64_t k) : excluded_(n, 0), k_(k) { heap_.reserve(std::min(n, k)); }

    // Selects row r into ids/vals (k slots each); false if the row holds a NaN.
    bool run(const T* row, int64_t n, const int64_t* excl_begin, const int64_t* excl_end, int64_t* ids,
             T* vals) {
        for (const int64_t* p = excl_begin; p != excl_end; ++p) excluded_[*p] = 1;
        const bool ok = scan(row, n);
        for (const int64_t* p = excl_begin; p != excl_end; ++p) excluded_[*p] = 0;
        if (!ok) return false;
        std::sort(heap_.begin(), heap_.end(), Before());
        const int64_t found = static_cast<int64_t>(heap_.size());
        for (int64_t t = 0; t < found; ++t) {
            ids[t] = heap_[t].second;
            vals[t] = heap_[t].first;
        }
        std::fill(ids + found, ids + k_, int64_t(-1));
        std::fill(vals + found, vals + k_, -std::numeric_limits<T>::infinity());
        return true;
    }

  private:
    static constexpr int64_t kBlock = 64;

    bool scan(const T* row, int64_t n) {
        heap_.clear();
        int64_t j = 0;
        // Fill: every admissible item enters until k are held.
        for (; j < n && static_cast<int64_t>(heap_.size()) < k_; ++j) {
            if (std::isnan(row[j])) return false;
            if (excluded_[j]) continue;
            heap_.emplace_back(row[j], j);
            std::push_heap(heap_.begin(), heap_.end(), Before());
        }
        if (j == n) return true;
        T threshold = heap_.front().first;
        for (; j + kBlock <= n; j += kBlock) {
            if (!any_above(row + j, kBlock, threshold)) continue;
            for (int64_t u = j; u < j + kBlock; ++u)
                if (!(row[u] <= threshold) && !offer(row, u, threshold)) return false;
        }
        for (; j < n; ++j)
            if (!(row[j] <= threshold) && !offer(row, j, threshold)) return false;
        return true;
    }

    // row[j] is above the threshold or NaN: replace the worst kept entry unless j is excluded.
    bool offer(const T* row, int64_t j, T& threshold) {
        if (std::isnan(row[j])) return false;
        if (excluded_[j]) return true;
        replace_top(Entry<T>(row[j], j));
        threshold = heap_.front().first;
        return true;
    }

    // Put e in place of the top (the worst kept entry) and sift it down: one pass, where
    // pop_heap + push_heap would take two.
    void replace_top(const Entry<T>& e) {
        const Before before;
        const size_t size = heap_.size();
        size_t i = 0;
        for (size_t child = 1; child < size; child = 2 * i + 1) {
            if (child + 1 < size && before(heap_[child], heap_[child + 1])) ++child;  // the worse child
            if (!before(e, heap_[child])) break;
            heap_[i] = heap_[child];
            i = child;
        }
        heap_[i] = e;
    }

    std::vector<char> excluded_;
    std::vector<Entry<T>> heap_;
    int64_t k_;
};

}  // namespace

template <typename T>
bool topk_exclude(const T* scores, int64_t b, int64_t n, int64_t k, const int64_t* excl_indptr,
                  const int64_t* excl_indices, int64_t* out_ids, T* out_vals, int n_threads) {
    std::atomic<bool> ok{true};
    const std::vector<int64_t> bounds = chunk_bounds<int64_t>(b, kChunksPerThread * n_threads, nullptr);
    run_chunks(bounds, n_threads, [&](int64_t begin, int64_t end) {
        RowSelector<T> selector(n, k);
        for (int64_t r = begin; r < end && ok.load(std::memory_order_relaxed); ++r) {
            if (!selector.run(scores + r * n, n, excl_indices + excl_indptr[r], excl_indices + excl_indptr[r + 1],
                              out_ids + r * k, out_vals + r * k))
                ok = false;
        }
    });
    return ok;
}

template bool topk_exclude<float>(const float*, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                                  int64_t*, float*, int);
template bool topk_exclude<double>(const double*, int64_t, int64_t, int64_t, const int64_t*, const int64_t*,
                                   int64_t*, double*, int);

}  // namespace graphrec
