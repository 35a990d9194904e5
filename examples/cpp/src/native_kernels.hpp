// Internal: what the native steps (NativeGru, NativeTransformer) share: aligned buffers, the blocked fp32
// matrix-vector product, a branch-free exp, and reading a weight from an exported file as onnxruntime computes it.
#pragma once
#include "detail.hpp"

#include <cstdlib>
#include <cstring>
#include <new>

namespace muse {
namespace native {

// 64-byte aligned storage (vector loads on cache-line boundaries), zeroed, allocated once.
template <class T>
struct Aligned {
    T* p = nullptr;
    Aligned() = default;
    explicit Aligned(size_t count) {
        const size_t bytes = (count * sizeof(T) + 63) / 64 * 64;
        p = static_cast<T*>(std::aligned_alloc(64, bytes ? bytes : 64));
        if (!p) throw std::bad_alloc();
        std::memset(p, 0, bytes);
    }
    Aligned(Aligned&& o) noexcept : p(o.p) { o.p = nullptr; }
    Aligned& operator=(Aligned&& o) noexcept { std::swap(p, o.p); return *this; }
    ~Aligned() { std::free(p); }
};
using Floats = Aligned<float>;

// Eight floats: one AVX register, two SSE or NEON ones. GCC and Clang vector extensions, so the accumulators below are
// registers whatever the target (the same loops over a float array were compiled to stack loads and stores), and the
// compiler picks the instructions (FMA where the target has it).
typedef float f8 __attribute__((vector_size(32)));

// y[N] = x[K] W[K][N] + b, W stored in column blocks of BLOCK: [N / BLOCK][K][BLOCK] (N padded with zero columns;
// y must hold the padding). Each block keeps BLOCK / 8 = 8 independent accumulators in registers, enough to hide the
// multiply-add latency on two pipes.
struct Dense {
    static constexpr int BLOCK = 64;
    int K = 0, N = 0, NP = 0;
    Floats w, b;
    Dense() = default;
    Dense(const std::vector<float>& W, const std::vector<float>& bias, int k, int n)
        : K(k), N(n), NP((n + BLOCK - 1) / BLOCK * BLOCK), w((size_t)NP * k), b(NP) {
        for (int jb = 0; jb < NP; jb += BLOCK)
            for (int kk = 0; kk < K; ++kk)
                for (int j = 0; j < BLOCK && jb + j < N; ++j) w.p[(size_t)jb * K + (size_t)kk * BLOCK + j] = W[(size_t)kk * N + jb + j];
        for (int j = 0; j < N; ++j) b.p[j] = bias[j];
    }
    void apply(const float* __restrict x, float* __restrict y) const {
        for (int jb = 0; jb < NP; jb += BLOCK) {
            const f8* __restrict wk = reinterpret_cast<const f8*>(w.p + (size_t)jb * K);
            const f8* bb = reinterpret_cast<const f8*>(b.p + jb);
            f8 a0 = bb[0], a1 = bb[1], a2 = bb[2], a3 = bb[3], a4 = bb[4], a5 = bb[5], a6 = bb[6], a7 = bb[7];
            for (int k = 0; k < K; ++k, wk += 8) {
                const f8 xk = f8{} + x[k];
                a0 += xk * wk[0]; a1 += xk * wk[1]; a2 += xk * wk[2]; a3 += xk * wk[3];
                a4 += xk * wk[4]; a5 += xk * wk[5]; a6 += xk * wk[6]; a7 += xk * wk[7];
            }
            f8* yy = reinterpret_cast<f8*>(y + jb);
            yy[0] = a0; yy[1] = a1; yy[2] = a2; yy[3] = a3; yy[4] = a4; yy[5] = a5; yy[6] = a6; yy[7] = a7;
        }
    }
};

// e^x for x in about [-87, 87] (clamped there), relative error about 2e-7: x = (n + f) ln 2 with n an integer and
// |f| <= 1/2, e^(f ln 2) by its Taylor series to degree 7, times 2^n put in the exponent bits. No branches, no calls.
inline float exp_poly(float x) {
    x = x < -87.0f ? -87.0f : (x > 87.0f ? 87.0f : x);
    const float t = x * 1.44269504088896341f;
    const float n = (t + 12582912.0f) - 12582912.0f;             // round to nearest (1.5 * 2^23 pushes the fraction out)
    const float g = (t - n) * 0.693147180559945309f;
    float p = 1.0f / 5040;
    p = p * g + 1.0f / 720; p = p * g + 1.0f / 120; p = p * g + 1.0f / 24;
    p = p * g + 1.0f / 6; p = p * g + 0.5f; p = p * g + 1.0f; p = p * g + 1.0f;
    const int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    std::memcpy(&scale, &bits, 4);
    return p * scale;
}
// A weight matrix [rows, cols] from `f`: `name` (fp32) or `name`_int8 with `name`_scale (per column, or per row).
// Returns the int8 values and per-column scales when the file has them, and always the fp32 values onnxruntime
// computes from the file (float(q) * scale, one rounding).
struct Weight { std::vector<float> f; std::vector<int8_t> q; std::vector<float> col_scale; };
inline Weight weight(const detail::OnnxFile& f, const std::string& path, const std::string& name, int rows, int cols) {
    using T = detail::OnnxTensor;
    auto shape_ok = [&](const T& t, int r, int c) { return t.dims.size() == 2 && t.dims[0] == r && t.dims[1] == c; };
    Weight w;
    w.f.resize((size_t)rows * cols);
    auto it = f.initializers.find(name);
    if (it != f.initializers.end()) {
        if (it->second.type != T::FLOAT || !shape_ok(it->second, rows, cols)) throw Error(path + ": " + name + " is not a float [" + std::to_string(rows) + ", " + std::to_string(cols) + "] tensor");
        std::memcpy(w.f.data(), it->second.raw.data(), w.f.size() * 4);
        return w;
    }
    auto q = f.initializers.find(name + "_int8"), s = f.initializers.find(name + "_scale");
    if (q == f.initializers.end() || s == f.initializers.end()) {
        if (f.initializers.count(name + "_quantized"))
            throw Error(path + ": written with --quantization dynamic, whose activations only onnxruntime computes; export with the default "
                        "(INT8 weights) for the native step, or run this file through onnxruntime");
        throw Error(path + ": no weight " + name + " (not a model exported by muse_export)");
    }
    const bool per_col = shape_ok(s->second, 1, cols), per_row = shape_ok(s->second, rows, 1);
    if (q->second.type != T::INT8 || !shape_ok(q->second, rows, cols) || s->second.type != T::FLOAT || !(per_col || per_row))
        throw Error(path + ": " + name + "_int8 / " + name + "_scale have unexpected types or shapes");
    const int8_t* qv = reinterpret_cast<const int8_t*>(q->second.raw.data());
    std::vector<float> sc(s->second.count());
    std::memcpy(sc.data(), s->second.raw.data(), sc.size() * 4);
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c) w.f[(size_t)r * cols + c] = (float)qv[(size_t)r * cols + c] * sc[per_col ? c : r];
    if (per_col) { w.q.assign(qv, qv + (size_t)rows * cols); w.col_scale = sc; }
    return w;
}

inline std::vector<float> vec(const detail::OnnxFile& f, const std::string& path, const std::string& name, size_t n) {
    auto it = f.initializers.find(name);
    if (it == f.initializers.end() || it->second.type != detail::OnnxTensor::FLOAT || it->second.count() != n)
        throw Error(path + ": no float [" + std::to_string(n) + "] tensor " + name + " (not a model exported by this version's muse_export)");
    std::vector<float> v(n);
    std::memcpy(v.data(), it->second.raw.data(), 4 * n);
    return v;
}

// A metadata value of `f` ("" if absent)
inline std::string meta(const detail::OnnxFile& f, const std::string& key) {
    auto it = f.metadata.find(key);
    return it == f.metadata.end() ? std::string() : it->second;
}

// What a native model's file says of itself (checked against `expect_sha`), refusing a model of another kind than `kind`
// with `why` ("the native step runs the GRU (use OnnxStream)")
inline detail::ModelInfo native_info(const detail::OnnxFile& f, const std::string& path, const std::string& expect_sha,
                                     const std::string& kind, const std::string& why) {
    const detail::ModelInfo info = detail::model_info([&](const std::string& k) { return meta(f, k); }, path, expect_sha);
    if (info.kind != kind) throw Error(path + ": a " + (info.kind.empty() ? std::string("model of no type") : info.kind) + "; " + why);
    return info;
}

// A native model's feed(): every id checked first (nothing is stepped on a bad one), then stepped one by one
inline const float* feed_steps(StepModel& m, const std::vector<int64_t>& ids, int V) {
    if (ids.empty()) throw Error("nothing to feed");
    for (int64_t t : ids) if (t < 0 || t >= V) throw Error("token id " + std::to_string(t) + " is outside 0-" + std::to_string(V - 1));
    const float* lg = nullptr;
    for (int64_t t : ids) lg = m.step(t);
    return lg;
}

}  // namespace native
}  // namespace muse
