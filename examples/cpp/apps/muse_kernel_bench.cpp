// muse_kernel_bench: how near the native GRU step runs to this core's limit.
//
//   muse_kernel_bench MODEL.onnx [--steps N]
//
// Prints, in one run on one core: the core's clock (a chain of dependent adds: one a cycle on every x86-64 and AArch64
// core), the INT8 matrix-vector kernel's throughput in cycles per 16 multiply-adds on the model's own shapes (random
// weights, the same blocks the step uses), and the whole step in microseconds and cycles beside the part of it the
// products take at that throughput. With the AVX2 kernel (no VNNI) it also prints the instruction-count floor: each
// 16 multiply-adds of int8 weights and Q15 inputs take three vector instructions (vpmovsxbw to widen 16 weights,
// vpmaddwd, vpaddd), and a core that issues four vector instructions a cycle (Zen 2-4; Intel's big cores issue three)
// needs at least 0.75 cycles for them.
// Pin it to one core (taskset -c 1) for figures that mean something. Work on the core's other hardware thread (or a
// neighbour's, on a VM whose vCPUs are two threads of one core) slows every figure here, so the comparisons use the best
// of many runs, what the core does when left alone, and the step's median is printed beside it.
#include "muse/muse.hpp"
#include "native_kernels.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

using clk = std::chrono::steady_clock;

namespace {

double seconds_since(clk::time_point t0) { return std::chrono::duration<double>(clk::now() - t0).count(); }

// cycles per second: 8 dependent adds an iteration, each waiting for the last (one a cycle); the best of 5 runs
double clock_hz() {
#if defined(__x86_64__) || defined(__aarch64__)
    double best = 0;
    for (int r = 0; r < 5; ++r) {
        long a = 0;
        const long n = 20000000;
        const auto t0 = clk::now();
        for (long i = 0; i < n; ++i) {
#if defined(__x86_64__)
            asm volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(a));
#else
            asm volatile("add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\t"
                         "add %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1\n\tadd %0, %0, #1" : "+r"(a));
#endif
        }
        best = std::max(best, 8.0 * n / seconds_since(t0));
    }
    return best;
#else
    return 0;
#endif
}

double percentile(std::vector<double> v, double q) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, (size_t)(q * v.size()))];
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
        std::fprintf(argc < 2 ? stderr : stdout, "usage: muse_kernel_bench MODEL.onnx [--steps N]   (a GRU exported with INT8 weights; pin to one core: taskset -c 1)\n");
        return argc < 2 ? 2 : 0;
    }
    int steps = 20000;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (a == "--steps" && i + 1 < argc) steps = std::atoi(argv[++i]);
        else { std::fprintf(stderr, "error: unknown argument %s (usage: muse_kernel_bench MODEL.onnx [--steps N])\n", a.c_str()); return 2; }
    }
    if (steps < 100) { std::fprintf(stderr, "error: --steps must be at least 100\n"); return 2; }
    try {
        muse::NativeGru gru(argv[1]);
        const int H = gru.hidden(), L = gru.layers(), V = gru.vocab().size();
        const double hz = clock_hz();
        if (hz > 0) std::printf("core clock: %.2f GHz (a chain of dependent adds)\n", hz / 1e9);
        else std::printf("core clock: not measured on this architecture\n");

        // the step, one token after another (each the argmax of the last logits)
        std::vector<double> st;
        st.reserve(steps);
        int64_t tok = 0;
        for (int i = 0; i < steps; ++i) {
            const auto t0 = clk::now();
            const float* lg = gru.step(tok);
            st.push_back(seconds_since(t0));
            tok = std::max_element(lg, lg + V) - lg;
        }
        const double step_p50 = percentile(st, 0.5), step_p1 = percentile(st, 0.01);
        const double macs = (double)H * 3 * H * (2 * L - 1) + (double)H * V;    // h W_hh per layer, h W_ih above layer 0, h W_out
        std::printf("%s: GRU %d x %d, vocabulary %d; a step's products %.0f multiply-adds; kernel %s\n", argv[1], L, H, V, macs, gru.kernel().c_str());
        std::printf("step over %d steps: p50 %.2f us, p1 %.2f us", steps, step_p50 * 1e6, step_p1 * 1e6);
        if (hz > 0) std::printf(" (%.0f and %.0f cycles)", step_p50 * hz, step_p1 * hz);
        std::printf("\n");
#ifdef MUSE_Q15
        if (gru.kernel() == MUSE_Q15_KERNEL) {
            // the kernel alone on the step's two shapes, random int8 weights
            std::mt19937 rng(1);
            double secs = 0, groups_all = 0;
            for (int N : {3 * H, V}) {
                std::vector<int8_t> q((size_t)H * N);
                for (auto& v : q) v = (int8_t)((int)(rng() % 255) - 127);
                muse::native::DenseQ15 d(q, std::vector<float>(N, 0.01f), std::vector<float>(N, 0.0f), H, N);
                muse::native::Aligned<int16_t> x(H);
                for (int i = 0; i < H; ++i) x.p[i] = (int16_t)((int)(rng() % 65535) - 32767);
                muse::native::Floats y(d.NP);
                const int reps = std::max(1, (int)(2e6 / ((double)H * N)) * 10);
                std::vector<double> per;
                for (int r = 0; r < 31; ++r) {
                    const auto t0 = clk::now();
                    for (int i = 0; i < reps; ++i) { d.apply(x.p, y.p); asm volatile("" ::: "memory"); }
                    per.push_back(seconds_since(t0) / reps);
                }
                const double t = *std::min_element(per.begin(), per.end()), groups = (double)H * d.NP / 16;    // computed columns, padding included
                std::printf("kernel %s, %d x %d (%d computed): %.3f us", MUSE_Q15_KERNEL, H, N, d.NP, t * 1e6);
                if (hz > 0) std::printf(", %.3f cycles per 16 multiply-adds", t * hz / groups);
                std::printf(" (the best of 31 runs)\n");
                const double times = N == V ? 1 : 2 * L - 1;     // the H x 3H products run 2L - 1 times a step
                secs += t * times; groups_all += groups * times;
            }
            std::printf("the step's products at those rates: %.2f us, %.0f%% of the step's p1\n", secs * 1e6, 100 * secs / step_p1);
#if !(defined(__AVX512VNNI__) && defined(__AVX512BW__))
            if (hz > 0) {
                const double floor_cycles = groups_all * 0.75;
                std::printf("AVX2 floor (3 vector instructions per 16 multiply-adds, 4 a cycle): %.0f cycles = %.2f us for the products at %.2f GHz; "
                            "the kernel takes %.2fx that\n", floor_cycles, floor_cycles / hz * 1e6, hz / 1e9, secs * hz / floor_cycles);
            }
#endif
        }
#endif
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
    return 0;
}
