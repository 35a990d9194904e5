// Internal: what the native steps (NativeGru, NativeTransformer) share: aligned buffers, the blocked fp32
// matrix-vector product and its INT8-weight twin (AVX-512 VNNI, or AVX2 with the same arithmetic), a branch-free exp,
// and reading a weight from an exported file as onnxruntime computes it.
#pragma once
#include "detail.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#if (defined(__AVX512VNNI__) && defined(__AVX512BW__)) || (defined(__AVX2__) && defined(__FMA__))
#include <immintrin.h>
#endif

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
// One polynomial for a float and for eight lanes (GCC/Clang vector extensions), the same operations lane by lane: GCC
// does not vectorize the scalar one inside a loop (the clamp reads as control flow), so loops call exp_poly8.
// (Without AVX, -DMUSE_NATIVE_ARCH=OFF, GCC notes that the helpers below pass 32-byte vectors differently since GCC
// 4.6; they are inline and never cross a library boundary. A pragma does not silence that note: CMakeLists passes -Wno-psabi.)
typedef int32_t i8v __attribute__((vector_size(32)));
typedef float f8u __attribute__((vector_size(32), aligned(4)));    // for loads and stores at any float's address
inline int32_t to_int(float n) { return (int32_t)n; }
inline i8v to_int(f8 n) { return __builtin_convertvector(n, i8v); }
template <class T>
inline T exp_poly_t(T x) {
    const T lo = T{} - 87.0f, hi = T{} + 87.0f;
    x = x > lo ? (x < hi ? x : hi) : lo;                           // (NaN fails both tests: lo, never an int cast of NaN)
    const T t = x * 1.44269504088896341f;
    const T n = (t + 12582912.0f) - 12582912.0f;                 // round to nearest (1.5 * 2^23 pushes the fraction out)
    const T g = (t - n) * 0.693147180559945309f;
    T p = T{} + 1.0f / 5040;
    p = p * g + 1.0f / 720; p = p * g + 1.0f / 120; p = p * g + 1.0f / 24;
    p = p * g + 1.0f / 6; p = p * g + 0.5f; p = p * g + 1.0f; p = p * g + 1.0f;
    const auto bits = (to_int(n) + 127) << 23;
    T scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}
inline float exp_poly(float x) { return exp_poly_t(x); }
inline f8 exp_poly8(f8 x) { return exp_poly_t(x); }

// Every value of a tensor a finite number: a model file with NaN or infinity in its weights is damaged, said at load
// (fuzz_model found one whose NaN reached exp_poly's int conversion, undefined behaviour)
inline void finite(const float* v, size_t n, const std::string& path, const std::string& name) {
    for (size_t i = 0; i < n; ++i)
        if (!std::isfinite(v[i])) throw Error(path + ": " + name + " holds a value that is not a finite number (a damaged file)");
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
        finite(w.f.data(), w.f.size(), path, name);
        return w;
    }
    auto q = f.initializers.find(name + format::suffix::int8), s = f.initializers.find(name + format::suffix::scale);
    if (q == f.initializers.end() || s == f.initializers.end()) {
        if (f.initializers.count(name + format::suffix::dynamic))
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
    finite(sc.data(), sc.size(), path, name + format::suffix::scale);
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
    finite(v.data(), n, path, name);
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

// The INT8 kernels' weights (either instruction set): y[N] = x[K] q[K][N] with int8 q, in blocks of BLOCK columns laid
// out [N / BLOCK][k pairs][BLOCK columns x 2 k] (each column's two k side by side, as the 16-bit pair products read
// them), so a block's weights are one contiguous stream; the last block TAIL wide when that covers the rest (316 ids:
// 320 columns computed, not 384); a scale (over 32767, the input's Q15) and a bias per column. BLOCK is what one pass
// keeps in registers: 128 columns with AVX-512 (8 accumulators of 16), 32 with AVX2 (4 of 8: with 8 of 8, the
// accumulators, the weights being widened and the input do not fit in 16 registers and GCC spills one to the stack on
// every k; the GRU step on a Zen 3 went from 6.3-7.1 to 4.2 us with 32 columns, logits bit-identical).
#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
constexpr int Q15_BLOCK = 128;
#else
constexpr int Q15_BLOCK = 32;
#endif
struct Q15Weights {
    static constexpr int BLOCK = Q15_BLOCK, TAIL = BLOCK < 64 ? BLOCK : 64;
    int K = 0, N = 0, NP = 0;
    Aligned<int8_t> w;
    Floats scale, b;
    Q15Weights() = default;
    static int width(int jb, int np) { return np - jb >= BLOCK ? BLOCK : TAIL; }
    Q15Weights(const std::vector<int8_t>& q, const std::vector<float>& sc, const std::vector<float>& bias, int k, int n)
        : K(k), N(n), NP(n % BLOCK && n % BLOCK <= TAIL ? (n + TAIL - 1) / TAIL * TAIL : (n + BLOCK - 1) / BLOCK * BLOCK), w((size_t)NP * k), scale(NP), b(NP) {
        for (int jb = 0; jb < NP; jb += width(jb, NP)) {
            const int W = width(jb, NP);
            for (int p = 0; p < K / 2; ++p)
                for (int j = 0; j < W && jb + j < N; ++j)
                    for (int e = 0; e < 2; ++e) w.p[(size_t)jb * K + (size_t)p * 2 * W + 2 * j + e] = q[(size_t)(2 * p + e) * N + jb + j];
        }
        for (int j = 0; j < N; ++j) { scale.p[j] = sc[j] / 32767.0f; b.p[j] = bias[j]; }
    }
};

#if defined(__AVX512VNNI__) && defined(__AVX512BW__)
#define MUSE_Q15 1
#define MUSE_Q15_KERNEL "int8-q15-vnni"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"   // GCC 12's AVX-512 headers (their _mm512_undefined_*), not this code
#pragma GCC diagnostic ignored "-Wuninitialized"         // the same, in _mm512_reduce_max_ps
#endif
// The fast kernel: y[N] = (sum_k q[k][j] xq[k]) * scale[j] * amax / 32767 + b[j], with the int8 weights q of the file
// (sign-extended to 16 bits as they are loaded) and the input in Q15 of its own range (xq = round(32767 x / amax); the
// GRU's inputs are hidden states, |x| <= 1 = amax). apply2 takes an input as two such terms, its value and the residual
// of that rounding, for inputs whose rounding error would matter (the transformer's, scaled by their largest magnitude).
// The sums are exact in int32 (VNNI vpdpwssd, 32 multiply-adds an instruction); the only rounding is the input's, at
// most amax / 65534 (logits within about 3e-4 of the fp32 kernel on the Bach GRU). Weights in blocks of 128 columns:
// [N / 128][k pairs][128 columns x 2 k], 188 KB for the GRU's step where fp32 needs 750 KB.
struct DenseQ15 : Q15Weights {
    using Q15Weights::Q15Weights;
    template <int NV>                                   // one block of 16 * NV columns
    void block(const int32_t* xp, int jb, float* y, __m512 amax) const {
        __m512i a[NV];
        for (int v = 0; v < NV; ++v) a[v] = _mm512_setzero_si512();
        const __m256i* wv = reinterpret_cast<const __m256i*>(w.p + (size_t)jb * K);
        for (int p = 0; p < K / 2; ++p, wv += NV) {
            const __m512i x2 = _mm512_set1_epi32(xp[p]);
            for (int v = 0; v < NV; ++v) a[v] = _mm512_dpwssd_epi32(a[v], x2, _mm512_cvtepi8_epi16(_mm256_load_si256(wv + v)));
        }
        for (int v = 0; v < NV; ++v)
            _mm512_store_ps(y + jb + 16 * v, _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[v]), _mm512_mul_ps(_mm512_load_ps(scale.p + jb + 16 * v), amax), _mm512_load_ps(b.p + jb + 16 * v)));
    }
    // two inputs at once, a value and its rounding residual (to_q15_split): x = hi * amax_hi + lo * amax_lo, both in
    // Q15, against the same weights read once; the products then carry the input to about 30 bits
    template <int NV>
    void block2(const int32_t* hp, const int32_t* lp, int jb, float* y, __m512 ah, __m512 al) const {
        __m512i a[NV], c[NV];
        for (int v = 0; v < NV; ++v) { a[v] = _mm512_setzero_si512(); c[v] = _mm512_setzero_si512(); }
        const __m256i* wv = reinterpret_cast<const __m256i*>(w.p + (size_t)jb * K);
        for (int p = 0; p < K / 2; ++p, wv += NV) {
            const __m512i h2 = _mm512_set1_epi32(hp[p]), l2 = _mm512_set1_epi32(lp[p]);
            for (int v = 0; v < NV; ++v) {
                const __m512i wq = _mm512_cvtepi8_epi16(_mm256_load_si256(wv + v));
                a[v] = _mm512_dpwssd_epi32(a[v], h2, wq); c[v] = _mm512_dpwssd_epi32(c[v], l2, wq);
            }
        }
        for (int v = 0; v < NV; ++v) {
            const __m512 sum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a[v]), ah, _mm512_mul_ps(_mm512_cvtepi32_ps(c[v]), al));
            _mm512_store_ps(y + jb + 16 * v, _mm512_fmadd_ps(sum, _mm512_load_ps(scale.p + jb + 16 * v), _mm512_load_ps(b.p + jb + 16 * v)));
        }
    }
    void apply2(const int16_t* hi, const int16_t* lo, float* y, float amax_hi, float amax_lo) const {
        const int32_t* hp = reinterpret_cast<const int32_t*>(hi);
        const int32_t* lp = reinterpret_cast<const int32_t*>(lo);
        const __m512 ah = _mm512_set1_ps(amax_hi), al = _mm512_set1_ps(amax_lo);
        for (int jb = 0; jb < NP; jb += width(jb, NP)) {
            if (width(jb, NP) == BLOCK) block2<8>(hp, lp, jb, y, ah, al); else block2<4>(hp, lp, jb, y, ah, al);
        }
    }
    void apply(const int16_t* xq, float* y, float amax = 1.0f) const {
        const int32_t* xp = reinterpret_cast<const int32_t*>(xq);      // the inputs in pairs
        const __m512 a = _mm512_set1_ps(amax);
        for (int jb = 0; jb < NP; jb += width(jb, NP)) {
            if (width(jb, NP) == BLOCK) block<8>(xp, jb, y, a); else block<4>(xp, jb, y, a);
        }
    }
};

// x (|x| <= amax) to Q15 of amax, n a multiple of 16
inline void to_q15(const float* x, int16_t* q, int n, float amax = 1.0f) {
    const __m512 hi = _mm512_set1_ps(32767.0f), lo = _mm512_set1_ps(-32767.0f), k = _mm512_set1_ps(32767.0f / amax);
    for (int i = 0; i < n; i += 16) {
        __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), k), lo), hi);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + i), _mm512_cvtepi32_epi16(_mm512_cvtps_epi32(v)));
    }
}

// the largest |x[i]|; n a multiple of 16
inline float max_abs(const float* x, int n) {
    __m512 m = _mm512_setzero_ps();
    for (int i = 0; i < n; i += 16) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
    return _mm512_reduce_max_ps(m);
}

// x as hi * amax_hi + lo * amax_lo in Q15 (to_q15_split below); n a multiple of 16
inline void split_q15(const float* x, int16_t* hi, int16_t* lo, int n, float amax_hi, float amax_lo) {
    const __m512 k = _mm512_set1_ps(32767.0f / amax_hi), step = _mm512_set1_ps(amax_lo), kl = _mm512_set1_ps(32767.0f / amax_lo);
    const __m512 top = _mm512_set1_ps(32767.0f), bottom = _mm512_set1_ps(-32767.0f);
    for (int i = 0; i < n; i += 16) {
        const __m512 v = _mm512_loadu_ps(x + i);
        const __m512i h = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(v, k), bottom), top));
        const __m512 r = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(h), step, v);             // v - h * amax_hi / 32767
        const __m512i l = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(r, kl), bottom), top));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(hi + i), _mm512_cvtepi32_epi16(h));
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(lo + i), _mm512_cvtepi32_epi16(l));
    }
}
#elif defined(__AVX2__) && defined(__FMA__)
#define MUSE_Q15 1
#define MUSE_Q15_KERNEL "int8-q15-avx2"
// The same kernel for CPUs with AVX2 and FMA but no AVX-512 VNNI (AMD Zen 1-3, Intel before Ice Lake, most laptops):
// the same weights in the same blocks, the same Q15 inputs, and the same arithmetic to the bit. vpmaddwd multiplies the
// pairs and adds them in int32 exactly as vpdpwssd does (then vpaddd accumulates: the sums are exact either way), and
// the conversions, scalings and fused multiply-adds around the sums are the same operations, 8 lanes instead of 16. On
// the Bach GRU it reads 188 KB of weights a step where the fp32 kernel reads 750 KB, which a 512 KB L2 cannot hold.
struct DenseQ15 : Q15Weights {
    using Q15Weights::Q15Weights;
    // One block of BLOCK = 32 columns at jb: four accumulators of 8 int32, each k pair 64 contiguous bytes of weights (16
    // a register). Four accumulators, the weight being widened and the broadcast input fit AVX2's 16 registers; eight
    // (64 columns) did not, and GCC spilled one to the stack on every k.
    static constexpr int NV = BLOCK / 8;
    static_assert(TAIL == BLOCK, "every AVX2 block is BLOCK wide (NP a multiple of BLOCK)");
    void block(const int32_t* xp, int jb, float* y, __m256 amax) const {
        __m256i a[NV];
        for (int v = 0; v < NV; ++v) a[v] = _mm256_setzero_si256();
        const int8_t* wp = w.p + (size_t)jb * K;
        for (int p = 0; p < K / 2; ++p, wp += 2 * BLOCK) {
            const __m256i x2 = _mm256_set1_epi32(xp[p]);
            for (int v = 0; v < NV; ++v)
                a[v] = _mm256_add_epi32(a[v], _mm256_madd_epi16(x2, _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(wp + 16 * v)))));
        }
        for (int v = 0; v < NV; ++v) {
            const int j = jb + 8 * v;
            _mm256_store_ps(y + j, _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[v]), _mm256_mul_ps(_mm256_load_ps(scale.p + j), amax), _mm256_load_ps(b.p + j)));
        }
    }
    // two inputs against the same weights read once (VNNI's block2): 2 x 4 accumulators
    void block2(const int32_t* hp, const int32_t* lp, int jb, float* y, __m256 ah, __m256 al) const {
        __m256i a[NV], d[NV];
        for (int v = 0; v < NV; ++v) { a[v] = _mm256_setzero_si256(); d[v] = _mm256_setzero_si256(); }
        const int8_t* wp = w.p + (size_t)jb * K;
        for (int p = 0; p < K / 2; ++p, wp += 2 * BLOCK) {
            const __m256i h2 = _mm256_set1_epi32(hp[p]), l2 = _mm256_set1_epi32(lp[p]);
            for (int v = 0; v < NV; ++v) {
                const __m256i wq = _mm256_cvtepi8_epi16(_mm_load_si128(reinterpret_cast<const __m128i*>(wp + 16 * v)));
                a[v] = _mm256_add_epi32(a[v], _mm256_madd_epi16(h2, wq)); d[v] = _mm256_add_epi32(d[v], _mm256_madd_epi16(l2, wq));
            }
        }
        for (int v = 0; v < NV; ++v) {
            const int j = jb + 8 * v;
            const __m256 sum = _mm256_fmadd_ps(_mm256_cvtepi32_ps(a[v]), ah, _mm256_mul_ps(_mm256_cvtepi32_ps(d[v]), al));
            _mm256_store_ps(y + j, _mm256_fmadd_ps(sum, _mm256_load_ps(scale.p + j), _mm256_load_ps(b.p + j)));
        }
    }
    void apply2(const int16_t* hi, const int16_t* lo, float* y, float amax_hi, float amax_lo) const {
        const int32_t* hp = reinterpret_cast<const int32_t*>(hi);
        const int32_t* lp = reinterpret_cast<const int32_t*>(lo);
        const __m256 ah = _mm256_set1_ps(amax_hi), al = _mm256_set1_ps(amax_lo);
        for (int jb = 0; jb < NP; jb += BLOCK) block2(hp, lp, jb, y, ah, al);
    }
    void apply(const int16_t* xq, float* y, float amax = 1.0f) const {
        const int32_t* xp = reinterpret_cast<const int32_t*>(xq);
        const __m256 a = _mm256_set1_ps(amax);
        for (int jb = 0; jb < NP; jb += BLOCK) block(xp, jb, y, a);
    }
};

// 16 int32 (two registers, each clamped to 16 bits) stored as 16 int16 in order: packs works within 128-bit lanes
inline void store_16(int16_t* q, __m256i v0, __m256i v1) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q), _mm256_permute4x64_epi64(_mm256_packs_epi32(v0, v1), 0xD8));
}
inline float reduce_max(__m256 m) {
    __m128 r = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    r = _mm_max_ps(r, _mm_movehl_ps(r, r));
    r = _mm_max_ss(r, _mm_shuffle_ps(r, r, 1));
    return _mm_cvtss_f32(r);
}
inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline void to_q15(const float* x, int16_t* q, int n, float amax = 1.0f) {
    const __m256 hi = _mm256_set1_ps(32767.0f), lo = _mm256_set1_ps(-32767.0f), k = _mm256_set1_ps(32767.0f / amax);
    auto one = [&](const float* p) { return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(p), k), lo), hi)); };
    for (int i = 0; i < n; i += 16) store_16(q + i, one(x + i), one(x + i + 8));
}

inline float max_abs(const float* x, int n) {
    __m256 m = _mm256_setzero_ps();
    for (int i = 0; i < n; i += 8) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + i)));
    return reduce_max(m);
}

inline void split_q15(const float* x, int16_t* hi, int16_t* lo, int n, float amax_hi, float amax_lo) {
    const __m256 k = _mm256_set1_ps(32767.0f / amax_hi), step = _mm256_set1_ps(amax_lo), kl = _mm256_set1_ps(32767.0f / amax_lo);
    const __m256 top = _mm256_set1_ps(32767.0f), bottom = _mm256_set1_ps(-32767.0f);
    auto clamp = [&](__m256 v) { return _mm256_min_ps(_mm256_max_ps(v, bottom), top); };
    for (int i = 0; i < n; i += 16) {
        __m256i h[2], l[2];
        for (int u = 0; u < 2; ++u) {
            const __m256 v = _mm256_loadu_ps(x + i + 8 * u);
            h[u] = _mm256_cvtps_epi32(clamp(_mm256_mul_ps(v, k)));
            const __m256 r = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(h[u]), step, v);          // v - h * amax_hi / 32767
            l[u] = _mm256_cvtps_epi32(clamp(_mm256_mul_ps(r, kl)));
        }
        store_16(hi + i, h[0], h[1]); store_16(lo + i, l[0], l[1]);
    }
}
#endif

#ifdef MUSE_Q15
// Both instruction sets, over their max_abs and split_q15:
// x as hi * amax_hi + lo * amax_lo, hi and lo in Q15: hi of x's largest magnitude, lo of what rounding hi left
// (at most amax_hi / 65534); n a multiple of 16. For DenseQ15::apply2.
inline void to_q15_split(const float* x, int16_t* hi, int16_t* lo, int n, float& amax_hi, float& amax_lo) {
    amax_hi = max_abs(x, n);
    if (!(amax_hi > 0.0f)) amax_hi = 1.0f;
    amax_lo = amax_hi / 32767.0f;
    split_q15(x, hi, lo, n, amax_hi, amax_lo);
}
#endif

// y = x W + b through the one kernel a native model runs, chosen here and nowhere else: with MUSE_Q15 (AVX-512 VNNI,
// or AVX2 and FMA) and an INT8-weight file, the file's int8 weights with the input in Q15, as one term (UNIT: inputs
// in [-1, 1], the GRU's hidden states) or as two (SCALED: the value of the input's own range and that rounding's
// residual, the transformer's); otherwise the blocked fp32 product with the weights onnxruntime computes. A model
// decides `int8` once for all its products (`int8_kernel`) and names the kernel with `kernel_name`.
inline bool int8_kernel(bool wanted) {
#ifdef MUSE_Q15
    return wanted;
#else
    (void)wanted; return false;
#endif
}
inline const char* kernel_name(bool int8) {
#ifdef MUSE_Q15
    if (int8) return MUSE_Q15_KERNEL;
#endif
    (void)int8; return "fp32";
}

struct Linear {
    enum Input { UNIT, SCALED };
    int K = 0, N = 0, NP = 0;                         // NP: the padded output width, which y must hold
    Linear() = default;
    Linear(const Weight& w, const std::vector<float>& b, int k, int n, bool int8, Input in = UNIT) : K(k), N(n), in_(in) {
#ifdef MUSE_Q15
        if (int8) {
            q_ = DenseQ15(w.q, w.col_scale, b, k, n); NP = q_.NP; q15_ = true;
            xq_ = Aligned<int16_t>(k); if (in == SCALED) xlo_ = Aligned<int16_t>(k);
            return;
        }
#endif
        (void)int8; f_ = Dense(w.f, b, k, n); NP = f_.NP;
    }
    void apply(const float* x, float* y) {           // not const: the input's Q15 terms are kept in the layer's own buffers
#ifdef MUSE_Q15
        if (q15_) {
            if (in_ == UNIT) { to_q15(x, xq_.p, K); q_.apply(xq_.p, y); return; }
            float ah, al;
            to_q15_split(x, xq_.p, xlo_.p, K, ah, al); q_.apply2(xq_.p, xlo_.p, y, ah, al);
            return;
        }
#endif
        f_.apply(x, y);
    }
private:
    Input in_ = UNIT;
    Dense f_;
#ifdef MUSE_Q15
    DenseQ15 q_;
    Aligned<int16_t> xq_, xlo_;
    bool q15_ = false;
#endif
};

}  // namespace native
}  // namespace muse
