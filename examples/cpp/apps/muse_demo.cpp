// muse_demo: sample a piece from the INT8 model (or the Markov .bin) in C++, write it as MIDI, and time the step.
//
//   muse_demo --model artifacts/muse_quantized.onnx --vocab artifacts/vocab.json --out artifacts/sample_cpp.mid
//             [--baseline artifacts/baseline.bin] [--length 512] [--min-length 256] [--temperature T] [--top-k K] [--top-p P]
//             [--seed 42] [--tempo 120] [--bench 2000] [--json artifacts/cpp_bench.json] [--tokens ids.txt] [--ort-library PATH]
//             [--instruments bass,drums]      (multi-track models: only these instruments play)
//             [--scale "D dorian"] [--pitch-range C3-C6 | bass:E1-G3,piano:C3-C6] [--polyphony N] [--density N]
//                                             (a musician's controls, as muse_sample's: the grammar's mask keeps to them)
//             [--runtime auto|native|onnxruntime]
//             [--accompany melody.mid | --infill song.mid --bars 5-8] [--ahead BEATS]
//                                             (a model trained with conditioning: its parts under a given one, or bars rewritten
//                                             to lead into the next; --instruments: a band's parts that play them)
//
// --runtime auto (the default) samples with this library's native step where it runs the file (NativeGru,
// NativeTransformer: INT8 or fp32 weights) and through onnxruntime otherwise; --bench then times both on the same
// stream and prints the ratio.
// With only --baseline, the piece comes from the Markov model and onnxruntime is never loaded.
// A user mistake (missing file, wrong vocabulary, damaged .bin, bad flag) prints one `error:` line and exits 2.
#include "muse/muse.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

using namespace muse;
using Clock = std::chrono::steady_clock;

namespace {
struct Args {
    std::string model, baseline, vocab, out = "sample_cpp.mid", json, ort, tokens, instruments, runtime = "auto", scale, pitch_range, accompany, infill, bars;
    double ahead = -1;                               // beats a given note is heard before it sounds (-1: as trained, 0 to accompany, 2 to fill)
    int length = 512, bench = 2000, top_k = -1, min_length = -1;   // min_length -1: half of length
    int polyphony = 0, density = 0;                  // 0: no cap
    float temperature = -1, top_p = -1;
    uint64_t seed = 42;
    double tempo = -1;                               // -1: 120 (ms models), the piece's own (beat-time models)
};

const char* USAGE =
    "usage: muse_demo --vocab VOCAB.json (--model MODEL.onnx | --baseline BASELINE.bin) [--out OUT.mid] [--length N] [--min-length N (default: half of --length)]\n"
    "                 [--temperature T] [--top-k K] [--top-p P] [--seed S] [--tempo BPM (beat-time models: their own)] [--bench STEPS] [--json OUT.json]\n"
    "                 [--tokens OUT.txt] [--ort-library libonnxruntime.so] [--instruments bass,drums] [--runtime auto|native|onnxruntime]\n"
    "                 [--scale 'D dorian'] [--pitch-range C3-C6|bass:E1-G3,piano:C3-C6] [--polyphony N (sounding at once)] [--density N (onsets a beat)]\n"
    "                 [--accompany MELODY.mid | --infill SONG.mid --bars A-B] [--ahead BEATS (0-4; default 0 to accompany, 2 to fill)]\n"
    "                                             (a model trained with conditioning: its parts under the file's, or bars A-B rewritten)\n";

Args parse(int argc, char** argv) {
    Args a;
    std::map<std::string, std::string*> str = {{"--model", &a.model}, {"--baseline", &a.baseline}, {"--vocab", &a.vocab},
                                               {"--out", &a.out}, {"--json", &a.json}, {"--ort-library", &a.ort}, {"--tokens", &a.tokens},
                                               {"--instruments", &a.instruments}, {"--runtime", &a.runtime}, {"--scale", &a.scale},
                                               {"--pitch-range", &a.pitch_range}, {"--accompany", &a.accompany},
                                               {"--infill", &a.infill}, {"--bars", &a.bars}};
    for (int i = 1; i < argc; ++i) {
        std::string k = argv[i];
        if (k == "-h" || k == "--help") { std::cout << USAGE; std::exit(0); }
        if (i + 1 >= argc) throw Error("argument " + k + " needs a value");
        std::string v = argv[++i];
        auto num = [&](double lo, double hi) {
            char* end = nullptr;
            double x = std::strtod(v.c_str(), &end);
            if (end == v.c_str() || *end || !(x >= lo && x <= hi)) throw Error("argument " + k + ": expected a number in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got '" + v + "'");
            return x;
        };
        if (str.count(k)) *str[k] = v;
        else if (k == "--length") a.length = (int)num(1, 1e6);
        else if (k == "--min-length") a.min_length = (int)num(0, 1e6);
        else if (k == "--bench") a.bench = (int)num(0, 1e7);
        else if (k == "--top-k") a.top_k = (int)num(0, MAX_VOCAB);
        else if (k == "--temperature") a.temperature = (float)num(0, 100);
        else if (k == "--top-p") a.top_p = (float)num(0, 1);
        else if (k == "--seed") a.seed = (uint64_t)num(0, 1e18);
        else if (k == "--tempo") a.tempo = num(1, 1000);
        else if (k == "--polyphony") a.polyphony = (int)num(0, N_PITCHES);
        else if (k == "--density") a.density = (int)num(0, 1000);
        else if (k == "--ahead") a.ahead = num(0, 4);
        else throw Error("unknown argument " + k + " (see --help)");
    }
    if (a.min_length < 0) a.min_length = a.length / 2;
    if (a.min_length > a.length) throw Error("--min-length " + std::to_string(a.min_length) + " is longer than --length " + std::to_string(a.length));
    if (a.vocab.empty()) throw Error("--vocab is required (the vocab.json the model was trained with)");
    if (a.model.empty() && a.baseline.empty()) throw Error("give --model or --baseline (or both)");
    const size_t dot = a.out.rfind('.');
    std::string ext = dot == std::string::npos ? "" : a.out.substr(dot);
    for (char& c : ext) c = (char)std::tolower((unsigned char)c);
    if (ext != ".mid" && ext != ".midi")             // never over a model or a .bin it reads (any case, as muse_sample)
        throw Error("--out must name a .mid/.midi file, got " + a.out);
    if (!a.accompany.empty() && !a.infill.empty()) throw Error("--accompany and --infill are two jobs: give one");
    const std::string job = !a.accompany.empty() ? "--accompany" : "--infill";
    if ((!a.accompany.empty() || !a.infill.empty()) && a.model.empty()) throw Error(job + " needs --model (a model trained with conditioning; a Markov .bin cannot hear a given part)");
    if (!a.infill.empty() && a.bars.empty()) throw Error("--infill needs --bars, the bars to rewrite (counted from 1, such as 5-8)");
    if (a.infill.empty() && !a.bars.empty()) throw Error("--bars goes with --infill");
    if (a.ahead < 0) a.ahead = a.infill.empty() ? 0 : 2;        // the anticipations the tasks are trained at (data.accompany_ahead, data.infill_ahead)
    if (a.runtime != "auto" && a.runtime != "native" && a.runtime != "onnxruntime")
        throw Error("--runtime must be auto, native or onnxruntime, got '" + a.runtime + "'");
    return a;
}

struct Timing { double p50 = 0, p99 = 0, mean = 0; };
Timing summarize(std::vector<double>& us) {
    Timing t;
    if (us.empty()) return t;
    std::sort(us.begin(), us.end());
    auto q = [&](double f) { return us[std::min(us.size() - 1, (size_t)std::floor(f * (us.size() - 1) + 0.5))]; };
    t.p50 = q(0.5); t.p99 = q(0.99);
    for (double x : us) t.mean += x;
    t.mean /= us.size();
    return t;
}
double us_since(Clock::time_point a) { return std::chrono::duration<double, std::micro>(Clock::now() - a).count(); }

// Time `n` calls of `step` on the tokens `next_tok` gives; the step's first output is read so it cannot be skipped.
template <class NextToken, class Step>
Timing time_steps(int n, NextToken next_tok, Step step) {
    std::vector<double> us;
    us.reserve(n);
    volatile double sink = 0;
    for (int i = 0; i < n; ++i) {
        int t = next_tok();
        auto t0 = Clock::now();
        auto out = step(t);
        us.push_back(us_since(t0));
        sink = sink + out[0];
    }
    return summarize(us);
}

// Sample up to `length` tokens after <BOS> under the grammar, from a StepModel or a MarkovStream (both reset/step).
template <class Model>
// No <EOS> before `min_length` sampled tokens, unless it is the only legal token (as Python's generate)
std::vector<int> generate(Model& model, const Grammar& g, Sampler& smp, const SamplingParams& sp, int length, int min_length, std::vector<double>& sample_us) {
    std::vector<int> out = {BOS};
    out.reserve(length + 2);
    GrammarState st = g.initial();
    g.advance(st, BOS);
    model.reset();
    auto scores = model.step(BOS);
    bool mask[MAX_VOCAB];
    for (int i = 0; i < length; ++i) {
        auto t0 = Clock::now();
        g.allowed(st, mask);
        if (i < min_length && mask[EOS]) {
            bool other = false;
            for (int v = 0; v < g.vocab().size() && !other; ++v) other = v != EOS && mask[v];
            if (other) mask[EOS] = false;
        }
        int tok = smp.sample(scores, mask, g.vocab().size(), sp);
        g.advance(st, tok);
        sample_us.push_back(us_since(t0));
        out.push_back(tok);
        if (tok == EOS) break;
        scores = model.step(tok);
    }
    return complete(g, out);
}

// `base` with the sampling flags the user gave
SamplingParams with_flags(SamplingParams base, const Args& a) {
    if (a.temperature >= 0) base.temperature = a.temperature;
    if (a.top_k >= 0) base.top_k = a.top_k;
    if (a.top_p >= 0) base.top_p = a.top_p;
    return base;
}

std::string json_escape(const std::string& s) {
    std::string o;
    for (char c : s) { if (c == '"' || c == '\\') o += '\\'; o += c; }
    return o;
}

// --infill: bars A-B of the file to rewrite (as muse_sample's --bars): every note before them is the model's as the file
// has it, and the notes after them (and in them, of the instruments not named) are given, heard `ahead` ticks early.
void infill_task(const Args& a, const Vocab& v, int ahead, GivenTask& task, GivenPart& given) {
    const BeatPiece p = beat_piece(read_midi(a.infill), v);
    const std::vector<int64_t>& L = p.grid.lines;
    const size_t n = L.size();
    long first = 0, last = 0;
    char* end = nullptr;
    const char* s = a.bars.c_str();
    first = std::strtol(s, &end, 10);
    if (end == s) throw Error("--bars: expected first-last counted from 1, such as 5-8, got '" + a.bars + "'");
    if (*end == '-') { const char* t = end + 1; last = std::strtol(t, &end, 10); if (end == t) throw Error("--bars: expected first-last counted from 1, such as 5-8, got '" + a.bars + "'"); }
    else last = first;
    if (*end) throw Error("--bars: expected first-last counted from 1, such as 5-8, got '" + a.bars + "'");
    if (first < 1 || first > last) throw Error("--bars " + a.bars + ": bars count from 1 and the first comes before the last");
    if ((size_t)last > n) throw Error("--bars " + a.bars + ": the piece has " + std::to_string(n) + " bars");
    if ((size_t)last == n) throw Error("--bars " + a.bars + ": the last bar has nothing after it to lead into; fill bars before it");
    const int64_t s0 = L[first - 1], e0 = L[last];
    std::vector<int> progs;
    bool drums = true;
    if (!a.instruments.empty()) {
        if (!v.multi) throw Error("--instruments needs a multi-track model (tracks: multi)");
        parse_instruments(a.instruments, progs, drums);
    }
    auto chosen = [&](int inst) { return a.instruments.empty() || (inst < 0 ? drums : std::count(progs.begin(), progs.end(), inst) > 0); };
    std::vector<char> mine(p.rows.size());
    std::vector<GivenNote> notes;
    for (size_t i = 0; i < p.rows.size(); ++i) {
        const auto& r = p.rows[i];
        mine[i] = r.on < s0 || (r.on < e0 && chosen(r.inst));
        if (mine[i]) continue;
        notes.push_back({r.on, r.pitch, r.inst < 0});
        given.notes.push_back({r.on, r.pitch, r.inst < 0});
        given.sounding.push_back({r.on, std::max(r.end, r.on + 1), r.pitch, r.velocity, std::max(r.inst, 0), r.inst < 0});
    }
    task.grid = p.grid;
    task.controls = controls_of(notes, v, ahead, e0);
    task.fill = true; task.start = s0; task.end = e0;
    const std::vector<int> ids = encode_beat(p, v, &mine, &task.controls, e0);
    size_t bars = 0, cut = 1;                          // the tokens after <BOS> up to the span's bar line
    for (; cut < ids.size(); ++cut) if (ids[cut] == v.bar() && bars++ == (size_t)(first - 1)) break;
    task.prefix.assign(ids.begin() + 1, ids.begin() + (s0 > 0 ? cut : 1));
    given.grid = p.grid;
}

int run(const Args& a) {
    const std::string sha = read_vocab_sha256(a.vocab);
    const Vocab vocab = Vocab::read(a.vocab);        // the layout the models were checked against (by its sha256)
    std::ostringstream js;
    js.setf(std::ios::fixed); js.precision(3);
    js << "{\n";
    std::vector<int> piece;
    std::string source;
    std::vector<double> sample_us;
    Sampler smp(a.seed);

    Grammar grammar(vocab);                          // with --instruments, only those may play
    if (!a.instruments.empty()) {
        if (!vocab.multi) throw Error("--instruments needs a multi-track model (tracks: multi); " + a.vocab + " is a single-stream vocabulary");
        grammar.set_instruments(a.instruments);      // a band's header names one program a part
    }
    grammar.set_controls(Controls::parse(a.scale, a.pitch_range, a.polyphony, a.density, vocab.multi));   // none asked: the grammar as it is
    std::unique_ptr<MarkovModel> markov;
    if (!a.baseline.empty()) markov.reset(new MarkovModel(a.baseline, sha));
    std::unique_ptr<StepModel> onnx;                 // the model that samples: NativeGru, NativeTransformer or OnnxStream
    if (!a.model.empty()) {
        onnx = open_model(a.model, sha, a.runtime != "onnxruntime", a.ort);
        if (a.runtime == "native" && onnx->kernel() == "onnxruntime") {   // the native class of its kind says why not
            if (onnx->model_type() == "gru") NativeGru n(a.model, sha); else NativeTransformer n(a.model, sha);
            throw Error(a.model + ": the native step cannot run this file");
        }
    }
    const bool native = onnx && onnx->kernel() != "onnxruntime";
    const std::string kernel = onnx ? onnx->kernel() : "";

    GivenPart given;
    const bool task_job = !a.accompany.empty() || !a.infill.empty();
    if (onnx && task_job) {                          // its parts under the file's notes, each heard `ahead` before it sounds
        if (!vocab.conditioning)
            throw Error(a.model + " was trained without conditioning (tokenization.conditioning: true), so it can only continue a piece: "
                        + (a.accompany.empty() ? "--infill" : "--accompany") + " needs one trained with it (make bach-cond)");
        const int ahead = (int)std::lround(a.ahead * vocab.resolution);
        GivenTask task;
        if (!a.accompany.empty()) {
            given = given_part(read_midi(a.accompany), vocab);
            task.grid = given.grid;
            task.controls = controls_of(given.notes, vocab, ahead);
            task.end = task.grid.end_line(given.last_end, vocab);
        } else infill_task(a, vocab, ahead, task, given);
        GivenOptions o;
        o.sampling = with_flags(onnx->sampling_defaults(), a); o.seed = a.seed; o.instruments = a.instruments;
        o.controls = Controls::parse(a.scale, a.pitch_range, a.polyphony, a.density, vocab.multi);
        const auto t0 = Clock::now();
        piece = generate_given(*onnx, task, o);
        sample_us.push_back(us_since(t0) / std::max<size_t>(piece.size(), 1));
        if (!a.accompany.empty()) std::printf("accompanied %s: %zu given notes in %zu bars, heard %.2f beats ahead\n", a.accompany.c_str(), given.notes.size(), task.grid.lines.size(), a.ahead);
        else std::printf("filled bars %s of %s (ticks %lld-%lld): %zu notes around them given, heard %.2f beats ahead\n", a.bars.c_str(), a.infill.c_str(),
                         (long long)task.start, (long long)task.end, given.notes.size(), a.ahead);
        js << "  \"" << (a.accompany.empty() ? "infill" : "accompany") << "\": \"" << json_escape(a.accompany.empty() ? a.infill : a.accompany) << "\",\n  \"given_notes\": " << given.notes.size() << ",\n";
    }
    if (onnx) {
        if (!task_job) piece = generate(*onnx, grammar, smp, with_flags(onnx->sampling_defaults(), a), a.length, a.min_length, sample_us);
        source = a.model;
        js << "  \"model\": \"" << json_escape(a.model) << "\",\n  \"model_type\": \"" << onnx->model_type() << "\",\n"
           << "  \"runtime\": \"" << (native ? "native" : "onnxruntime") << "\",\n";
        if (!native || a.bench > 0) js << "  \"onnxruntime_version\": \"" << load_onnxruntime(a.ort) << "\",\n";
    } else {
        MarkovStream ms(*markov);
        piece = generate(ms, grammar, smp, with_flags({1.0f, 0, 0.95f}, a), a.length, a.min_length, sample_us);
        source = a.baseline;
        js << "  \"model\": \"" << json_escape(a.baseline) << "\",\n  \"model_type\": \"markov\",\n";
    }
    const int ts_ms = vocab.time_shift_ms;
    const Grammar full(vocab);
    const Grammar& g = task_job ? full : grammar;    // (an accompaniment or a fill holds the piece's meters and its controls)
    if (g.check(piece) != -1) throw Error("internal: the sampled piece is not legal at token " + std::to_string(g.check(piece)));
    write_midi(piece, a.out, a.tempo > 0 ? a.tempo : vocab.beat ? 0.0 : 120.0, vocab, 0,   // beat time: the piece's tempi unless --tempo
               task_job ? &given.sounding : nullptr);   // the given notes too (a fill: the bars after it), on channels of their own
    if (!a.tokens.empty()) {
        std::ostringstream ids;
        for (int t : piece) ids << t << "\n";
        write_file_atomic(a.tokens, ids.str());
    }
    auto notes = decode_notes(piece, vocab);
    double seconds = 0;
    for (auto& n : notes) seconds = std::max(seconds, n.end * ts_ms / 1000.0);
    Timing smp_t = summarize(sample_us);
    std::printf("sampled %zu tokens (%zu notes, %.1f s) from %s -> %s\n", piece.size(), notes.size(), seconds, source.c_str(), a.out.c_str());
    std::printf("grammar + sampling per token: p50 %.2f us, p99 %.2f us\n", smp_t.p50, smp_t.p99);

    // Steps are timed on a real stream: the sampled piece without <EOS>, cycled.
    std::vector<int> stream(piece.begin(), piece.end() - 1);
    if (stream.size() < 2) stream = {BOS, TIME_SHIFT};
    size_t pos = 0;
    auto next_tok = [&] { int t = stream[pos]; pos = (pos + 1) % stream.size(); return t; };
    if (a.bench > 0 && onnx) {
        // A transformer is first filled to its window, so the numbers are for the largest cache a host will see.
        // A GRU the native step runs is timed both ways on the same stream, in alternating blocks of 500 steps (each
        // runtime alone in its block, as on a host's thread; alternating shares out the machine's slow moments).
        // An INT8 kernel is also timed against the fp32 kernel of the same file (the `exact` twin), a third runtime in the rotation.
        std::unique_ptr<OnnxStream> ort;
        std::unique_ptr<StepModel> fp32;
        if (native) ort.reset(new OnnxStream(a.model, sha, a.ort));
        if (native && kernel != "fp32") {
            if (onnx->model_type() == "gru") fp32.reset(new NativeGru(a.model, sha, true)); else fp32.reset(new NativeTransformer(a.model, sha, true));
        }
        StepModel* runs[3] = {onnx.get(), ort.get(), fp32.get()};
        const int n_runs = !native ? 1 : fp32 ? 3 : 2;
        std::vector<double> us[3];
        for (int r = 0; r < n_runs; ++r) {
            runs[r]->reset();
            for (int i = 0; i < 600; ++i) runs[r]->step(next_tok());     // warm-up
        }
        volatile double sink = 0;
        for (int done = 0; done < a.bench; done += 500)
            for (int r = 0; r < n_runs; ++r) {
                size_t keep = pos;
                for (int i = done; i < std::min(a.bench, done + 500); ++i) {
                    int tok = next_tok();
                    auto t0 = Clock::now();
                    const float* out = runs[r]->step(tok);
                    us[r].push_back(us_since(t0));
                    sink = sink + out[0];
                }
                if (r + 1 < n_runs) pos = keep;                               // the same tokens for the next runtime
            }
        Timing t = summarize(us[0]);
        const int64_t cached = onnx->cached();
        std::printf("%s step, %s (batch 1, 1 thread) over %d steps: p50 %.2f us, p99 %.2f us, mean %.2f us%s\n", onnx->model_type().c_str(),
                    native ? ("native, kernel " + kernel).c_str() : "onnxruntime", a.bench, t.p50, t.p99, t.mean,
                    onnx->model_type() == "transformer" ? (" (" + std::to_string(cached) + " cached tokens)").c_str() : "");
        js << "  \"steps\": " << a.bench << ",\n  \"step_us_p50\": " << t.p50 << ",\n  \"step_us_p99\": " << t.p99 << ",\n  \"step_us_mean\": " << t.mean << ",\n"
           << "  \"cached_tokens\": " << cached << ",\n";
        if (native) {
            Timing o = summarize(us[1]);
            std::printf("%s step, onnxruntime %s, same stream: p50 %.2f us, p99 %.2f us, mean %.2f us; native / onnxruntime p50 %.3f\n",
                        onnx->model_type().c_str(), load_onnxruntime(a.ort).c_str(), o.p50, o.p99, o.mean, t.p50 / o.p50);
            js << "  \"native_kernel\": \"" << kernel << "\",\n  \"native_step_us_p50\": " << t.p50 << ",\n  \"native_step_us_p99\": " << t.p99 << ",\n"
               << "  \"ort_step_us_p50\": " << o.p50 << ",\n  \"ort_step_us_p99\": " << o.p99 << ",\n  \"ort_step_us_mean\": " << o.mean << ",\n"
               << "  \"native_over_ort_p50\": " << t.p50 / o.p50 << ",\n";
        }
        if (fp32) {
            Timing f = summarize(us[2]);
            std::printf("%s step, native, kernel fp32 (the same file's exact twin), same stream: p50 %.2f us, p99 %.2f us; %s / fp32 p50 %.3f\n",
                        onnx->model_type().c_str(), f.p50, f.p99, kernel.c_str(), t.p50 / f.p50);
            js << "  \"fp32_kernel_step_us_p50\": " << f.p50 << ",\n  \"fp32_kernel_step_us_p99\": " << f.p99 << ",\n"
               << "  \"native_over_fp32_kernel_p50\": " << t.p50 / f.p50 << ",\n";
        }
    }
    if (a.bench > 0 && markov) {
        MarkovStream ms(*markov);
        pos = 0;
        Timing t = time_steps(a.bench, next_tok, [&](int tok) { return ms.step(tok); });
        std::printf("markov step (order %d) over %d steps: p50 %.2f us, p99 %.2f us\n", markov->order(), a.bench, t.p50, t.p99);
        js << "  \"markov_step_us_p50\": " << t.p50 << ",\n  \"markov_step_us_p99\": " << t.p99 << ",\n";
    }
    js << "  \"sampling_us_p50\": " << smp_t.p50 << ",\n  \"sampling_us_p99\": " << smp_t.p99 << ",\n"
       << "  \"sample\": {\"path\": \"" << json_escape(a.out) << "\", \"tokens\": " << piece.size() << ", \"notes\": " << notes.size()
       << ", \"seconds\": " << seconds << ", \"legal\": true}\n}\n";
    if (!a.json.empty()) { write_file_atomic(a.json, js.str()); std::printf("wrote %s\n", a.json.c_str()); }
    return 0;
}
}  // namespace

int main(int argc, char** argv) {
    try {
        return run(parse(argc, argv));
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
}
