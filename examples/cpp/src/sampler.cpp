// Sampling: temperature, top-k and top-p under the grammar's mask.
#include "detail.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>

namespace muse {

// ------------------------------------------------------------------------------------------------ sampling
// The same rule as nomad_muse_trainer.sampling.sample_token: mask, temperature, top-k, then top-p.
int Sampler::draw(int n, const SamplingParams& p) {
    // q_[0..n) are unnormalized weights of ids idx_[0..n)
    if (n == 0) return -1;
    if (p.top_k > 0 && p.top_k < n) {
        std::nth_element(idx_.begin(), idx_.begin() + (p.top_k - 1), idx_.begin() + n, [&](int a, int b) { return q_[a] > q_[b]; });
        double kth = q_[idx_[p.top_k - 1]];
        int m = 0;
        for (int i = 0; i < n; ++i) if (q_[idx_[i]] >= kth) idx_[m++] = idx_[i];   // ties at the k-th value are kept, as in Python
        n = m;
    }
    if (p.top_p < 1.0f) {
        // The nucleus is the head of the ids sorted by weight; rather than sort all of them (3.6 us of the 4.9 us a
        // draw took at 316 ids), take the top 16 (then 64, 256, ...) with nth_element until they hold the mass,
        // and sort only those. The same ids in the same order as a full sort (up to exact ties).
        auto heavier = [&](int a, int b) { return q_[a] > q_[b]; };
        double total = 0; for (int i = 0; i < n; ++i) total += q_[idx_[i]];
        int k = std::min(n, 16);
        for (;;) {
            if (k < n) std::nth_element(idx_.begin(), idx_.begin() + (k - 1), idx_.begin() + n, heavier);
            double head = 0; for (int i = 0; i < k; ++i) head += q_[idx_[i]];
            if (head / total >= p.top_p || k == n) break;
            k = std::min(n, 4 * k);
        }
        std::sort(idx_.begin(), idx_.begin() + k, heavier);
        double c = 0; int keep = k;
        for (int i = 0; i < k; ++i) { c += q_[idx_[i]] / total; if (c >= p.top_p) { keep = i + 1; break; } }
        n = keep;
    }
    double total = 0; for (int i = 0; i < n; ++i) total += q_[idx_[i]];
    double u = std::uniform_real_distribution<double>(0.0, total)(rng_), c = 0;
    for (int i = 0; i < n; ++i) { c += q_[idx_[i]]; if (u < c) return idx_[i]; }
    return idx_[n - 1];
}

int Sampler::sample(const float* logits, const bool* mask, int size, const SamplingParams& p) {
    int n = 0, best = -1;
    double hi = -std::numeric_limits<double>::infinity();
    size = std::min(size, MAX_VOCAB);
    for (int i = 0; i < size; ++i) if (mask[i]) { idx_[n++] = i; if (logits[i] > hi) { hi = logits[i]; best = i; } }
    if (n == 0 || p.temperature <= 0) return best;
    for (int j = 0; j < n; ++j) q_[idx_[j]] = std::exp((logits[idx_[j]] - hi) / p.temperature);
    return draw(n, p);
}

int Sampler::sample(const double* probs, const bool* mask, int size, const SamplingParams& p) {
    int n = 0, best = -1;
    double hi = -std::numeric_limits<double>::infinity();
    size = std::min(size, MAX_VOCAB);
    for (int i = 0; i < size; ++i)
        if (mask[i]) { idx_[n++] = i; double l = std::log(std::max(probs[i], 1e-300)); q_[i] = l; if (l > hi) { hi = l; best = i; } }
    if (n == 0 || p.temperature <= 0) return best;
    for (int j = 0; j < n; ++j) q_[idx_[j]] = std::exp((q_[idx_[j]] - hi) / p.temperature);
    return draw(n, p);
}

}  // namespace muse
