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
    Floats xtab;                                     // V x 3H: embed[t] W_ih0 + b_ih0
    std::vector<Linear> ih, hh;                      // ih[0] unused (the table)
    Linear out;
    Floats h, gi, gh, logits;                        // state L x H; scratch 3H (padded); logits (padded)
};

namespace {
// layer 0's input term per token: out[t] = emb[t] W + b, V x N
MUSE_NO_COVERAGE void input_table(const float* emb, const float* w, const float* b, int V, int E, int N, float* out) {
    for (int t = 0; t < V; ++t) {                    // (each sum in the order e = 0, 1, ...: rows of W contiguous)
        float* o = out + (size_t)t * N;
        for (int j = 0; j < N; ++j) o[j] = 0.0f;
        for (int e = 0; e < E; ++e) {
            const float x = emb[(size_t)t * E + e], *row = w + (size_t)e * N;
            for (int j = 0; j < N; ++j) o[j] += x * row[j];
        }
        for (int j = 0; j < N; ++j) o[j] += b[j];
    }
}
}  // namespace

NativeGru::NativeGru(const std::string& path, const std::string& expect_sha, bool exact)
    : NativeModel(path, expect_sha, "gru", "the native step runs the GRU (use OnnxStream)"), p_(new Impl) {
    auto& m = *p_;
    const detail::OnnxFile& f = *file_;
    const std::string cfg = meta(f, format::meta::config_json);
    const std::string where = path + " (its config_json)";
    auto num = [&](const char* k, double dflt) { const double x = detail::json_number(cfg, k, dflt, where); return x >= 0 && x <= (1 << 20) ? (int)x : -1; };
    m.L = num("layers", 0);
    m.H = num("hidden", 0);
    m.V = vocab_.size();
    const int E = num("embed_dim", 0), L = m.L, H = m.H, V = m.V;
    if (L < 1 || H < 1 || E < 1 || num("vocab_size", V) != V)
        throw Error(path + ": its config_json does not describe a GRU of this vocabulary");
    weights_ = f.initializers.count(std::string(format::weight::w_out) + format::suffix::int8) ? "int8" : "fp32";
    // layer 0's input term, per token
    const auto emb = weight(f, path, format::weight::embed, V, E).f, w_ih0 = weight(f, path, std::string(format::weight::w_ih) + "0", E, 3 * H).f;
    const auto b_ih0 = vec(f, path, std::string(format::weight::b_ih) + "0", 3 * H);
    m.xtab = Floats((size_t)V * 3 * H);
    input_table(emb.data(), w_ih0.data(), b_ih0.data(), V, E, 3 * H, m.xtab.p);
    std::vector<Weight> w_ih(L), w_hh(L);
    std::vector<std::vector<float>> b_ih(L), b_hh(L);
    for (int l = 0; l < L; ++l) {
        const std::string s = std::to_string(l);
        if (l > 0) { w_ih[l] = weight(f, path, format::weight::w_ih + s, H, 3 * H); b_ih[l] = vec(f, path, format::weight::b_ih + s, 3 * H); }
        w_hh[l] = weight(f, path, format::weight::w_hh + s, H, 3 * H); b_hh[l] = vec(f, path, format::weight::b_hh + s, 3 * H);
    }
    const Weight w_out = weight(f, path, format::weight::w_out, H, V);
    const std::vector<float> b_out = vec(f, path, format::weight::b_out, V);
    file_->initializers.clear();                     // the weights live in the products now; keep the metadata
    bool int8 = !exact && H % 16 == 0 && !w_out.q.empty();   // INT8 weights with a scale per column everywhere: the fast kernel
    for (int l = 0; l < L; ++l) int8 = int8 && !w_hh[l].q.empty() && (l == 0 || !w_ih[l].q.empty());
    int8 = int8_kernel(int8);
    m.ih.resize(L); m.hh.resize(L);
    for (int l = 0; l < L; ++l) {
        if (l > 0) m.ih[l] = Linear(w_ih[l], b_ih[l], H, 3 * H, int8);
        m.hh[l] = Linear(w_hh[l], b_hh[l], H, 3 * H, int8);
    }
    m.out = Linear(w_out, b_out, H, V, int8);
    kernel_ = kernel_name(int8);
    m.h = Floats((size_t)L * H); m.gi = Floats(m.hh[0].NP); m.gh = Floats(m.hh[0].NP); m.logits = Floats(m.out.NP);
    reset();
}

NativeGru::~NativeGru() = default;

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
        if (l > 0) { m.ih[l].apply(h - H, m.gi.p); x = m.gi.p; }
        m.hh[l].apply(h, gh);
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
    m.out.apply(m.h.p + (size_t)(m.L - 1) * H, m.logits.p);
    return m.logits.p;
}

}  // namespace muse
