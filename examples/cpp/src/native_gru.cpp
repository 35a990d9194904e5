// NativeGru: the exported GRU's step computed here, for a host's audio thread (see muse.hpp).
//
// The file's graph (nbs/05_export.ipynb, gru_to_onnx) is, per token t and layer l (gates r, z, n; H hidden units):
//   x    = embed[t] W_ih0 + b_ih0                       (layer 0; above it, x = h_{l-1} W_ih_l + b_ih_l)
//   g    = h_l W_hh_l + b_hh_l
//   r    = sigmoid(x_r + g_r),  z = sigmoid(x_z + g_z),  n = tanh(x_n + r * g_n)
//   h_l' = n + z * (h_l - n)
//   logits = h_top W_out + b_out
// Layer 0's input term depends on the token only, so it is a table of vocab x 3H rows computed once at load.
// The weights are what onnxruntime computes from the file: float(int8) * scale, per output column (per row for the
// embedding), or the fp32 values of an unquantized file.
//
// The matrix-vector products run over weights stored in column blocks of BLOCK outputs, [N / BLOCK][K][BLOCK], so the
// inner loop is BLOCK independent multiply-adds on contiguous memory with the accumulators in registers: plain loops
// the compiler vectorizes (measured against onnxruntime in `muse_demo --bench`). exp is a small polynomial the compiler
// vectorizes too (the C library's expf is a call per element: 768 calls a step would cost more than the products).
#include "detail.hpp"
#include "native_kernels.hpp"
#include "muse/muse.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace muse {

using namespace native;

struct NativeGru::Impl {
    int L = 0, H = 0, V = 0;
    detail::OnnxFile file;
    Floats xtab;                                     // V x 3H: embed[t] W_ih0 + b_ih0
    std::vector<Dense> ih, hh;                       // ih[0] unused (the table)
    Dense out;
    Floats h, gi, gh, logits;                        // state L x H; scratch 3H (padded); logits (padded)
#ifdef MUSE_Q15
    bool q15 = false;                                // the INT8-weight kernel (else the fp32 one)
    std::vector<DenseQ15> qih, qhh;
    DenseQ15 qout;
    Aligned<int16_t> xq;                             // the current input in Q15
#endif
};

NativeGru::NativeGru(const std::string& path, const std::string& expect_sha, bool exact) : ExportedModel("gru"), p_(new Impl) {
    auto& m = *p_;
    m.file = detail::read_onnx(path);
    const detail::ModelInfo info = native_info(m.file, path, expect_sha, "gru", "the native step runs the GRU (use OnnxStream)");
    vocab_ = info.vocab;
    defaults_ = info.defaults;
    const std::string cfg = meta(m.file, format::meta::config_json);
    m.L = (int)detail::json_number(cfg, "layers", 0);
    m.H = (int)detail::json_number(cfg, "hidden", 0);
    m.V = vocab_.size();
    const int E = (int)detail::json_number(cfg, "embed_dim", 0), L = m.L, H = m.H, V = m.V;
    if (L < 1 || H < 1 || E < 1 || (int)detail::json_number(cfg, "vocab_size", V) != V)
        throw Error(path + ": its config_json does not describe a GRU of this vocabulary");
    weights_ = m.file.initializers.count(std::string(format::weight::w_out) + format::suffix::int8) ? "int8" : "fp32";
    // layer 0's input term, per token
    const auto emb = weight(m.file, path, format::weight::embed, V, E).f, w_ih0 = weight(m.file, path, std::string(format::weight::w_ih) + "0", E, 3 * H).f;
    const auto b_ih0 = vec(m.file, path, std::string(format::weight::b_ih) + "0", 3 * H);
    m.xtab = Floats((size_t)V * 3 * H);
    for (int t = 0; t < V; ++t)
        for (int j = 0; j < 3 * H; ++j) {
            float acc = 0.0f;
            for (int e = 0; e < E; ++e) acc += emb[(size_t)t * E + e] * w_ih0[(size_t)e * 3 * H + j];
            m.xtab.p[(size_t)t * 3 * H + j] = acc + b_ih0[j];
        }
    std::vector<Weight> w_ih(L), w_hh(L);
    std::vector<std::vector<float>> b_ih(L), b_hh(L);
    for (int l = 0; l < L; ++l) {
        const std::string s = std::to_string(l);
        if (l > 0) { w_ih[l] = weight(m.file, path, format::weight::w_ih + s, H, 3 * H); b_ih[l] = vec(m.file, path, format::weight::b_ih + s, 3 * H); }
        w_hh[l] = weight(m.file, path, format::weight::w_hh + s, H, 3 * H); b_hh[l] = vec(m.file, path, format::weight::b_hh + s, 3 * H);
    }
    const Weight w_out = weight(m.file, path, format::weight::w_out, H, V);
    const std::vector<float> b_out = vec(m.file, path, format::weight::b_out, V);
    m.file.initializers.clear();                     // the weights live in the blocks now; keep the metadata
    kernel_ = "fp32";
    int cols = 0, out_cols = 0;                      // the padded widths of the gates' and the logits' buffers
#ifdef MUSE_Q15
    bool int8 = !exact && H % 16 == 0 && !w_out.q.empty();   // INT8 weights with a scale per column everywhere: the fast kernel
    for (int l = 0; l < L; ++l) int8 = int8 && !w_hh[l].q.empty() && (l == 0 || !w_ih[l].q.empty());
    if (int8) {
        m.qih.resize(L); m.qhh.resize(L);
        for (int l = 0; l < L; ++l) {
            if (l > 0) m.qih[l] = DenseQ15(w_ih[l].q, w_ih[l].col_scale, b_ih[l], H, 3 * H);
            m.qhh[l] = DenseQ15(w_hh[l].q, w_hh[l].col_scale, b_hh[l], H, 3 * H);
        }
        m.qout = DenseQ15(w_out.q, w_out.col_scale, b_out, H, V);
        m.xq = Aligned<int16_t>(H);
        m.q15 = true;
        kernel_ = MUSE_Q15_KERNEL;
        cols = m.qhh[0].NP; out_cols = m.qout.NP;
    }
#else
    (void)exact;
#endif
    if (kernel_ == "fp32") {                         // fp32 blocks only where they run
        m.ih.resize(L); m.hh.resize(L);
        for (int l = 0; l < L; ++l) {
            if (l > 0) m.ih[l] = Dense(w_ih[l].f, b_ih[l], H, 3 * H);
            m.hh[l] = Dense(w_hh[l].f, b_hh[l], H, 3 * H);
        }
        m.out = Dense(w_out.f, b_out, H, V);
        cols = m.hh[0].NP; out_cols = m.out.NP;
    }
    m.h = Floats((size_t)L * H); m.gi = Floats(cols); m.gh = Floats(cols); m.logits = Floats(out_cols);
    reset();
}

NativeGru::~NativeGru() = default;

std::string NativeGru::metadata(const std::string& key) const { return meta(p_->file, key); }

int NativeGru::layers() const { return p_->L; }
int NativeGru::hidden() const { return p_->H; }
const float* NativeGru::state() const { return p_->h.p; }

void NativeGru::reset() { std::memset(p_->h.p, 0, sizeof(float) * p_->L * p_->H); }

const float* NativeGru::step(int64_t token) {
    auto& m = *p_;
    if (token < 0 || token >= m.V) throw Error("token id " + std::to_string(token) + " is outside 0-" + std::to_string(m.V - 1));
    const int H = m.H;
    const float* x = m.xtab.p + (size_t)token * 3 * H;
    float* __restrict gh = m.gh.p;
    for (int l = 0; l < m.L; ++l) {
        float* __restrict h = m.h.p + (size_t)l * H;
#ifdef MUSE_Q15
        if (m.q15) {
            if (l > 0) { to_q15(h - H, m.xq.p, H); m.qih[l].apply(m.xq.p, m.gi.p); x = m.gi.p; }
            to_q15(h, m.xq.p, H); m.qhh[l].apply(m.xq.p, gh);
        } else
#endif
        {
            if (l > 0) { m.ih[l].apply(h - H, m.gi.p); x = m.gi.p; }
            m.hh[l].apply(h, gh);
        }
        int j = 0;                                   // eight lanes at a time, then the rest (H need not be a multiple of 8)
        for (; j + 8 <= 2 * H; j += 8) {             // r, z
            const f8 v = *reinterpret_cast<const f8u*>(x + j) + *reinterpret_cast<const f8u*>(gh + j);
            *reinterpret_cast<f8u*>(gh + j) = 1.0f / (1.0f + exp_poly8(-v));
        }
        for (; j < 2 * H; ++j) gh[j] = 1.0f / (1.0f + exp_poly(-(x[j] + gh[j])));
        for (j = 0; j + 8 <= H; j += 8) {             // tanh(a), and the new state
            const f8 a = *reinterpret_cast<const f8u*>(x + 2 * H + j) + *reinterpret_cast<const f8u*>(gh + j) * *reinterpret_cast<const f8u*>(gh + 2 * H + j);
            const f8 n = 1.0f - 2.0f / (exp_poly8(2.0f * a) + 1.0f);
            const f8 hj = *reinterpret_cast<const f8u*>(h + j);
            *reinterpret_cast<f8u*>(h + j) = n + *reinterpret_cast<const f8u*>(gh + H + j) * (hj - n);
        }
        for (; j < H; ++j) {
            const float a = x[2 * H + j] + gh[j] * gh[2 * H + j];
            const float n = 1.0f - 2.0f / (exp_poly(2.0f * a) + 1.0f);                                 // tanh(a)
            h[j] = n + gh[H + j] * (h[j] - n);
        }
    }
#ifdef MUSE_Q15
    if (m.q15) { to_q15(m.h.p + (size_t)(m.L - 1) * H, m.xq.p, H); m.qout.apply(m.xq.p, m.logits.p); return m.logits.p; }
#endif
    m.out.apply(m.h.p + (size_t)(m.L - 1) * H, m.logits.p);
    return m.logits.p;
}

const float* NativeGru::feed(const std::vector<int64_t>& ids) {
    return feed_steps(*this, ids, p_->V);
}

}  // namespace muse
