// NativeTransformer: the exported MiniTransformer's step computed here, without onnxruntime (see muse.hpp).
//
// The file's graph (nbs/05_export.ipynb, transformer_to_onnx) is, per new token t at position P after P cached ones:
//   x = embed[t];  its time q_t = (time of the last cached token) + shift_steps[t]          (the clock, time_buckets > 0)
//                  in beat time (bar_steps > 0) a BAR's (and <BOS>'s) is the next multiple of bar_steps: (floor(last / bar_steps) + 1) * bar_steps
//                  and x += bar_position[q_t mod bar_steps]                                           (its place in the bar)
//   per layer l:   h = LN1(x);  [q | k | v] = h W_qkv + b   (queries already scaled by 1/sqrt(head_dim))
//                  per head:    s_j = q.K_j - slope * (P - j) + time_bias[min(q_t - t_j, buckets)][l][head]   (j <= P; j = P: the new key)
//                               y = softmax(s) [V; v]
//                  x += y W_proj + b_proj;  x += GELU(LN2(x) W_ff1 + b_ff1) W_ff2 + b_ff2
//   logits = LN(x) W_head
// The cache holds each layer's and head's keys and values and each token's time, in rings of max_context - 1 entries,
// so a step allocates nothing and slides the window without moving memory. Two kernels for the matrix products, as
// NativeGru has: for an INT8-weight file on a CPU with AVX-512 VNNI, the file's int8 weights with each product's input
// as two Q15 terms, its value and that rounding's residual, so the products see it to about 30 bits (exact int32 sums; 0.45 MB of weights a step instead of 1.7 MB, so weights and
// cache fit this core's L2 together); otherwise, or with `exact`, fp32 products with the weights onnxruntime computes
// (float(int8) * scale, or the fp32 values), in NativeGru's blocked fp32 products.
#include "detail.hpp"
#include "native_kernels.hpp"
#include "muse/muse.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace muse {

using namespace native;

struct NativeTransformer::Impl {
    int V = 0, D = 0, H = 0, L = 0, F = 0, M = 0, TB = 0, HD = 0, W = 0, CAP = 0;
    int bar = -1, bar_steps = 0;                       // beat time: the BAR id and the clock's bar (0: the clock counts shifts only)
    std::vector<float> embed, shift, time_bias, slopes, bar_pos;  // [V][D], [V], [TB+1][L][H], [H], [bar_steps][D] (beat time)
    std::vector<std::vector<float>> ln1w, ln1b, ln2w, ln2b;
    std::vector<float> lnw, lnb;
    std::vector<Linear> qkv, proj, ff1, ff2;          // each product through the kernel the model chose
    Linear head;
    Floats K, Vc, T;                                  // keys [L][H][HD][CAP] (one row per dimension: scores are row updates), values [L][H][CAP][HD], times [CAP]
    Floats x, h, q, y, f, s, logits, back;           // back: each slot's distance to the new token
    Aligned<int32_t> bucket;                          // each slot's clock bucket (its time distance, capped)
    int count = 0, start = 0;                          // cached tokens, the ring's oldest slot
    float last_t = 0.0f;
    // y = x W + b for layer l's product `which` (0 qkv, 1 proj, 2 ff1, 3 ff2; 4 the head)
    void linear(int which, int l, const float* x, float* y) {
        (which == 0 ? qkv[l] : which == 1 ? proj[l] : which == 2 ? ff1[l] : which == 3 ? ff2[l] : head).apply(x, y);
    }
};

namespace {
void layer_norm(const float* x, const float* w, const float* b, float* out, int n) {
    float mean = 0.0f, var = 0.0f;
    for (int i = 0; i < n; ++i) mean += x[i];
    mean /= n;
    for (int i = 0; i < n; ++i) { const float d = x[i] - mean; var += d * d; }
    const float inv = 1.0f / std::sqrt(var / n + 1e-5f);
    for (int i = 0; i < n; ++i) out[i] = (x[i] - mean) * inv * w[i] + b[i];
}

// erf(x) to about 1.5e-7 (Abramowitz and Stegun 7.1.26, with exp_poly), branch-free; for a float and for eight lanes
// (GELU's loop calls the second: GCC does not vectorize the scalar one, its selects read as control flow)
template <class T>
inline T erf_poly_t(T x) {
    const T zero = {};
    const T ax = x < zero ? -x : x;
    const T t = 1.0f / (1.0f + 0.3275911f * ax);
    const T y = 1.0f - (((((1.061405429f * t - 1.453152027f) * t) + 1.421413741f) * t - 0.284496736f) * t + 0.254829592f) * t * exp_poly_t(-ax * ax);
    return x < zero ? -y : y;
}
inline float erf_poly(float x) { return erf_poly_t(x); }
inline f8 erf_poly8(f8 x) { return erf_poly_t(x); }

float dot(const float* __restrict a, const float* __restrict b, int n) {    // n a multiple of 8
    f8 acc = {};
    for (int i = 0; i < n; i += 8) {
        f8 va, vb;
        std::memcpy(&va, a + i, 32); std::memcpy(&vb, b + i, 32);
        acc += va * vb;
    }
    float r = 0.0f;
    for (int k = 0; k < 8; ++k) r += acc[k];
    return r;
}

}  // namespace

NativeTransformer::NativeTransformer(const std::string& path, const std::string& expect_sha, bool exact)
    : NativeModel(path, expect_sha, "transformer", "NativeTransformer runs the transformer"), p_(new Impl) {
    auto& m = *p_;
    const detail::OnnxFile& file = *file_;
    if (file.initializers.count(std::string(format::weight::w_qkv) + "0" + format::suffix::dynamic) || file.initializers.count(std::string(format::weight::head) + format::suffix::dynamic))
        throw Error(path + ": written with --quantization dynamic, whose activations only onnxruntime computes; export with the default (INT8 weights) for the native step");
    const std::string cfg = meta(file, format::meta::config_json);
    auto num = [&](const char* k) { const double x = detail::json_number(cfg, k, 0, path + " (its config_json)"); return x >= 0 && x <= (1 << 20) ? (int)x : -1; };
    m.V = vocab_.size(); m.D = num("d_model"); m.H = num("n_heads"); m.L = num("n_layers"); m.F = num("ff_dim");
    m.M = num("max_context"); m.TB = num("time_buckets");
    m.bar_steps = num("bar_steps"); m.bar = m.bar_steps > 0 ? num("bar") : -1;
    if (m.bar_steps < 0 || m.bar_steps > (1 << 16) || (m.bar_steps > 0 && (m.bar < 0 || m.bar >= vocab_.size())))
        throw Error(path + ": its config_json has a bar clock (bar " + std::to_string(m.bar) + ", bar_steps " + std::to_string(m.bar_steps) + ") this vocabulary does not have");
    if (m.D < 8 || m.H < 1 || m.D % m.H || (m.D / m.H) % 8 || m.L < 1 || m.F < 1 || m.M < 2 || num("vocab_size") != m.V)
        throw Error(path + ": its config_json does not describe a transformer this step runs (head size a multiple of 8)");
    m.HD = m.D / m.H; m.W = m.HD + (m.TB > 0); m.CAP = m.M - 1;
    const int D = m.D, H = m.H, L = m.L, F = m.F, W = m.W, HD = m.HD;
    m.embed = weight(file, path, format::weight::embed, m.V, D).f;
    m.lnw = vec(file, path, "ln_w", D); m.lnb = vec(file, path, "ln_b", D);
    // the products: [layer][qkv, proj, ff1, ff2] and the head, each (weight, bias, rows, cols)
    struct Product { Weight w; std::vector<float> b; int k, n; };
    std::vector<Product> prods;
    for (int l = 0; l < L; ++l) {
        const std::string s = std::to_string(l);
        m.ln1w.push_back(vec(file, path, "ln1_w" + s, D)); m.ln1b.push_back(vec(file, path, "ln1_b" + s, D));
        m.ln2w.push_back(vec(file, path, "ln2_w" + s, D)); m.ln2b.push_back(vec(file, path, "ln2_b" + s, D));
        prods.push_back({weight(file, path, format::weight::w_qkv + s, D, 3 * H * W), vec(file, path, format::weight::b_qkv + s, 3 * H * W), D, 3 * H * W});
        prods.push_back({weight(file, path, format::weight::w_proj + s, D, D), vec(file, path, format::weight::b_proj + s, D), D, D});
        prods.push_back({weight(file, path, format::weight::w_ff1 + s, D, F), vec(file, path, format::weight::b_ff1 + s, F), D, F});
        prods.push_back({weight(file, path, format::weight::w_ff2 + s, F, D), vec(file, path, format::weight::b_ff2 + s, D), F, D});
    }
    prods.push_back({weight(file, path, format::weight::head, D, m.V), std::vector<float>(m.V, 0.0f), D, m.V});
    bool int8 = !exact && D % 16 == 0 && F % 16 == 0;  // every product's input a multiple of 16, every weight int8 with a scale per column
    for (const Product& p : prods) int8 = int8 && !p.w.q.empty();
    int8 = int8_kernel(int8);
    auto lin = [&](const Product& p) { return Linear(p.w, p.b, p.k, p.n, int8, Linear::SCALED); };
    for (int l = 0; l < L; ++l) {
        m.qkv.push_back(lin(prods[4 * l])); m.proj.push_back(lin(prods[4 * l + 1]));
        m.ff1.push_back(lin(prods[4 * l + 2])); m.ff2.push_back(lin(prods[4 * l + 3]));
    }
    m.head = lin(prods.back());
    kernel_ = kernel_name(int8);
    const int qkv_cols = m.qkv[0].NP, ff_cols = m.ff1[0].NP, d_cols = std::max(m.proj[0].NP, m.ff2[0].NP), head_cols = m.head.NP;
    if (m.TB) {
        m.time_bias = vec(file, path, "time_bias", (size_t)(m.TB + 1) * L * H);
        m.shift = vec(file, path, "shift_steps", m.V);
        if (m.bar_steps > 0) m.bar_pos = weight(file, path, format::weight::bar_position, m.bar_steps, D).f;
    }
    for (int i = 0; i < H; ++i) m.slopes.push_back((float)std::pow(2.0, -8.0 * (i + 1) / H));   // ALiBi's, as alibi_slopes computes them
    file_->initializers.clear();                     // the weights live in the products now; keep the metadata
    m.K = Floats((size_t)L * H * m.CAP * HD); m.Vc = Floats((size_t)L * H * m.CAP * HD); m.T = Floats(m.CAP);
    m.x = Floats(D); m.h = Floats(std::max(D, d_cols)); m.q = Floats(qkv_cols); m.y = Floats(D); m.f = Floats(ff_cols);
    m.s = Floats(m.M); m.logits = Floats(head_cols); m.back = Floats(m.CAP); m.bucket = Aligned<int32_t>(m.CAP);
    reset();
}

NativeTransformer::~NativeTransformer() = default;

int64_t NativeTransformer::cached() const { return p_->count; }

void NativeTransformer::reset() { p_->count = 0; p_->start = 0; p_->last_t = 0.0f; }

const float* NativeTransformer::step(int64_t token) {
    auto& m = *p_;
    if (token < 0 || token >= m.V) throw Error("token id " + std::to_string(token) + " is outside 0-" + std::to_string(m.V - 1));
    const int D = m.D, H = m.H, HD = m.HD, W = m.W, P = m.count, CAP = m.CAP;
    const float qt = !m.TB ? 0.0f
                   : (token == m.bar || (m.bar_steps > 0 && token == BOS)) ? (std::floor(m.last_t / (float)m.bar_steps) + 1.0f) * (float)m.bar_steps
                   : m.last_t + m.shift[token];
    std::memcpy(m.x.p, m.embed.data() + (size_t)token * D, 4 * (size_t)D);
    if (!m.bar_pos.empty()) {                         // its place in the bar (the graph's Mod, fmod, then a cast that truncates)
        const float* row = m.bar_pos.data() + (size_t)(int64_t)std::fmod(qt, (float)m.bar_steps) * D;
        for (int i = 0; i < D; ++i) m.x.p[i] += row[i];
    }
    const int slot = (m.start + P) % CAP;             // where this token's keys go (the oldest, when the ring is full)
    for (int j = 0; j < P; ++j) {                     // the same for every layer and head: distances back, clock buckets
        m.back.p[j] = (float)(P - (j >= m.start ? j - m.start : j + CAP - m.start));
        float dt = qt - m.T.p[j];
        m.bucket.p[j] = (int32_t)(dt < 0 ? 0 : (dt > m.TB ? (float)m.TB : dt));
    }
    for (int l = 0; l < m.L; ++l) {
        layer_norm(m.x.p, m.ln1w[l].data(), m.ln1b[l].data(), m.h.p, D);
        m.linear(0, l, m.h.p, m.q.p);                  // [3][H][W]
        for (int hh = 0; hh < H; ++hh) {
            const float* q = m.q.p + (size_t)hh * W;
            const float* kn = m.q.p + (size_t)(H + hh) * W;
            const float* vn = m.q.p + (size_t)(2 * H + hh) * W;
            const float* Kt = m.K.p + ((size_t)l * H + hh) * HD * CAP;
            const float* Vv = m.Vc.p + ((size_t)l * H + hh) * CAP * HD;
            const float slope = m.slopes[hh];
            const float* tb = m.TB ? m.time_bias.data() + (size_t)l * H + hh : nullptr;   // [bucket][L][H]
            const size_t tstride = (size_t)m.L * H;
            // scores over the ring's slots in storage order (softmax and the weighted sum do not care about order);
            // a slot's distance back is P - its logical index
            float* __restrict s = m.s.p;
            for (int j = 0; j < P; ++j) s[j] = 0.0f;
            for (int d = 0; d < HD; ++d) {
                const float qd = q[d];
                const float* __restrict kr = Kt + (size_t)d * CAP;
                for (int j = 0; j < P; ++j) s[j] += qd * kr[j];
            }
            for (int j = 0; j < P; ++j) s[j] -= slope * m.back.p[j];
            if (tb) for (int j = 0; j < P; ++j) s[j] += tb[(size_t)m.bucket.p[j] * tstride];
            s[P] = dot(q, kn, HD) + (tb ? tb[0] : 0.0f);
            float mx = s[P];
            for (int j = 0; j < P; ++j) mx = s[j] > mx ? s[j] : mx;
            int je = 0;                              // eight lanes at a time (GCC leaves the scalar loop unvectorized)
            for (; je + 8 <= P + 1; je += 8) *reinterpret_cast<f8u*>(s + je) = exp_poly8(*reinterpret_cast<const f8u*>(s + je) - mx);
            for (; je <= P; ++je) s[je] = exp_poly(s[je] - mx);
            f8 acc = {};
            int j8 = 0;
            for (; j8 + 8 <= P + 1; j8 += 8) { f8 v; std::memcpy(&v, s + j8, 32); acc += v; }
            float sum = 0.0f;
            for (int k = 0; k < 8; ++k) sum += acc[k];
            for (; j8 <= P; ++j8) sum += s[j8];
            const float inv = 1.0f / sum;
            float* __restrict y = m.y.p + (size_t)hh * HD;
            for (int d = 0; d < HD; ++d) y[d] = s[P] * vn[d];
            for (int j = 0; j < P; ++j) {
                const float pj = s[j];
                const float* __restrict v = Vv + (size_t)j * HD;
                for (int d = 0; d < HD; ++d) y[d] += pj * v[d];
            }
            for (int d = 0; d < HD; ++d) y[d] *= inv;
        }
        m.linear(1, l, m.y.p, m.h.p);
        for (int i = 0; i < D; ++i) m.x.p[i] += m.h.p[i];
        layer_norm(m.x.p, m.ln2w[l].data(), m.ln2b[l].data(), m.h.p, D);
        m.linear(2, l, m.h.p, m.f.p);
        int i = 0;
        for (; i + 8 <= m.F; i += 8) {
            f8u& v = *reinterpret_cast<f8u*>(m.f.p + i);
            v = 0.5f * v * (1.0f + erf_poly8(v * 0.70710678118654752f));
        }
        for (; i < m.F; ++i) m.f.p[i] = 0.5f * m.f.p[i] * (1.0f + erf_poly(m.f.p[i] * 0.70710678118654752f));
        m.linear(3, l, m.f.p, m.h.p);
        for (int i = 0; i < D; ++i) m.x.p[i] += m.h.p[i];
        for (int hh = 0; hh < H; ++hh) {             // this token's keys and values join the cache
            float* kt = m.K.p + ((size_t)l * H + hh) * HD * CAP + slot;
            for (int d = 0; d < HD; ++d) kt[(size_t)d * CAP] = m.q.p[(size_t)(H + hh) * W + d];
            std::memcpy(m.Vc.p + (((size_t)l * H + hh) * CAP + slot) * HD, m.q.p + (size_t)(2 * H + hh) * W, 4 * (size_t)HD);
        }
    }
    m.T.p[slot] = qt;
    m.last_t = qt;
    if (P < CAP) ++m.count; else m.start = m.start + 1 == CAP ? 0 : m.start + 1;
    layer_norm(m.x.p, m.lnw.data(), m.lnb.data(), m.h.p, D);
    m.linear(4, 0, m.h.p, m.logits.p);
    return m.logits.p;
}

}  // namespace muse
