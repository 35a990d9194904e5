// Grammar, sampling, the baseline.bin reader and the MIDI writer. The ONNX side is in onnx_stream.cpp.
#include "muse/muse.hpp"
#include "muse/formats.hpp"   // the file-format contract, generated from nbs/00d_formats.ipynb

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

namespace {
std::vector<uint8_t> read_file(const std::string& path, const char* what) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(std::string(what) + " not found: " + path);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
}  // namespace

std::string read_vocab_sha256(const std::string& path) {
    auto bytes = read_file(path, "vocab");
    std::string s(bytes.begin(), bytes.end());
    auto k = s.rfind("\"sha256\"");
    if (k == std::string::npos) throw Error(path + ": no \"sha256\" in this vocab.json (write it with muse_prep)");
    auto q = s.find('"', s.find(':', k) + 1);
    auto e = q == std::string::npos ? q : s.find('"', q + 1);
    std::string sha = e == std::string::npos ? "" : s.substr(q + 1, e - q - 1);
    bool hex = sha.size() == 64 && std::all_of(sha.begin(), sha.end(), [](char c) { return std::isxdigit((unsigned char)c); });
    if (!hex) throw Error(path + ": its sha256 is not 64 hex characters");
    return sha;
}

// ------------------------------------------------------------------------------------------------ the vocabulary
int Vocab::velocity_value(int bin) const { return (int)std::lround((bin - 0.5) * 128.0 / n_velocities); }
int Vocab::default_velocity_bin() const { return std::min(std::max((72 - 1) * n_velocities / 128 + 1, 1), n_velocities); }

namespace {
// The value after `"key":` in `s` from `from` on: the text of a number, a string's contents, or an array's inside.
std::string json_value(const std::string& s, size_t from, const std::string& key, const std::string& where) {
    size_t k = s.find("\"" + key + "\"", from);
    if (k == std::string::npos) throw Error(where + ": no \"" + key + "\" in its vocabulary settings");
    size_t i = s.find(':', k) + 1;
    while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
    if (i >= s.size()) throw Error(where + ": \"" + key + "\" has no value");
    if (s[i] == '"') { size_t e = s.find('"', i + 1); return s.substr(i + 1, e - i - 1); }
    size_t e = s[i] == '[' ? s.find(']', i) : s.find_first_of(",}", i);
    if (e == std::string::npos) throw Error(where + ": \"" + key + "\" is not closed");
    return s.substr(s[i] == '[' ? i + 1 : i, e - (s[i] == '[' ? i + 1 : i));
}
std::vector<double> json_numbers(const std::string& list) {
    std::vector<double> out;
    std::istringstream in(list);
    std::string x;
    while (std::getline(in, x, ',')) if (x.find_first_not_of(" \n\t") != std::string::npos) out.push_back(std::stod(x));
    return out;
}
}  // namespace

Vocab Vocab::parse(const std::string& s, const std::string& where) {
    size_t at = s.find("\"settings\"");
    if (at == std::string::npos) throw Error(where + ": no \"settings\" (not a vocab.json from muse_prep)");
    Vocab v;
    try {
        v.performance = json_value(s, at, "mode", where) == "performance";
        v.time_shift_ms = std::stoi(json_value(s, at, "time_shift_ms", where));
        v.n_shifts = std::stoi(json_value(s, at, "max_shift_steps", where));
        v.n_velocities = (int)json_numbers(json_value(s, at, "velocity_values", where)).size();
        v.multi = s.find("\"tracks\"", at) != std::string::npos && json_value(s, at, "tracks", where) == "multi";   // absent: single
        v.duration_steps.clear();
        for (double d : json_numbers(json_value(s, at, "duration_steps", where))) v.duration_steps.push_back((int)d);
    } catch (const std::logic_error&) { throw Error(where + ": its vocabulary settings are not numbers where numbers belong"); }
    v.n_durations = (int)v.duration_steps.size();
    if (v.time_shift_ms <= 0 || v.n_shifts <= 0 || v.n_velocities <= 0 || v.n_durations <= 0 || v.size() > MAX_VOCAB)
        throw Error(where + ": its vocabulary layout is not one this library holds (" + std::to_string(v.size()) + " ids, at most 512)");
    return v;
}

Vocab Vocab::read(const std::string& path) {
    auto bytes = read_file(path, "vocab");
    return parse(std::string(bytes.begin(), bytes.end()), path);
}

std::string token_name(int id, const Vocab& v) {
    if (id < 0 || id >= v.size()) return "<invalid " + std::to_string(id) + ">";
    static const char* special[] = {"<PAD>", "<BOS>", "<EOS>", "<UNK>"};
    if (id < NOTE_ON) return special[id];
    if (id < NOTE_OFF) return "NOTE_ON_" + std::to_string(id - NOTE_ON);
    if (id < TIME_SHIFT) return "NOTE_OFF_" + std::to_string(id - NOTE_OFF);
    if (id < v.velocity()) return "TIME_SHIFT_" + std::to_string(id - TIME_SHIFT + 1);
    if (id < v.duration()) return "VELOCITY_" + std::to_string(id - v.velocity() + 1);
    if (id < v.program()) return "DURATION_" + std::to_string(id - v.duration() + 1);
    if (id < v.drum()) return "PROGRAM_" + std::to_string(id - v.program());
    return "DRUM_" + std::to_string(id - v.drum() + DRUM_LOW);
}

// ------------------------------------------------------------------------------------------------ grammar
// A line-by-line port of nomad_muse_trainer.tokenizer.Grammar; tests/test_muse.cpp checks the masks against it.
GrammarState Grammar::initial() const {
    GrammarState st;
    if (v_.multi) st.busy.assign((size_t)N_PROGRAMS * N_PITCHES, 0);
    return st;
}

void Grammar::set_instruments(const std::vector<int>& programs, bool drums) {
    if (!v_.multi) throw Error("choosing instruments needs a multi-track vocabulary (tracks: multi)");
    prog_ok_.fill(false);
    for (int p : programs) {
        if (p < 0 || p >= N_PROGRAMS) throw Error("program " + std::to_string(p) + " is outside 0-127");
        prog_ok_[p] = true;
    }
    drums_ok_ = drums;
}

// nomad_muse_trainer.tokenizer.Grammar._allowed_multi: per step drums first (keys rising), then programs rising,
// each program's pitches rising; a PROGRAM token only where the program changes.
void Grammar::allowed_multi(const GrammarState& st, bool* m) const {
    const int VELOCITY = v_.velocity(), DURATION = v_.duration(), PROGRAM = v_.program(), DRUM = v_.drum(), VOCAB = v_.size();
    std::fill(m, m + VOCAB, false);
    if (st.phase == 0) { m[BOS] = true; return; }
    if (st.phase == 2) { m[PAD] = true; return; }
    const int prev = st.prev;
    if (prev >= NOTE_ON && prev < NOTE_OFF) { std::fill(m + DURATION, m + PROGRAM, true); return; }
    bool any_free = false, any_drum = false;
    const bool prog_plays = st.prog >= 0 && prog_ok_[st.prog];
    const int64_t* busy = prog_plays ? st.busy.data() + (size_t)st.prog * N_PITCHES : nullptr;
    bool free_[N_PITCHES], drums[N_DRUMS];
    for (int p = 0; p < N_PITCHES; ++p) { free_[p] = prog_plays && p > st.step_on && busy[p] <= st.t; any_free |= free_[p]; }
    for (int k = 0; k < N_DRUMS; ++k) { drums[k] = drums_ok_ && st.step_prog < 0 && k > st.step_drum - DRUM_LOW; any_drum |= drums[k]; }
    if (prev >= VELOCITY && prev < DURATION) {
        std::copy(free_, free_ + N_PITCHES, m + NOTE_ON); std::copy(drums, drums + N_DRUMS, m + DRUM); return;
    }
    if (prev >= PROGRAM && prev < DRUM) {
        if (st.vel) std::copy(free_, free_ + N_PITCHES, m + NOTE_ON);
        std::fill(m + VELOCITY, m + DURATION, true);
        if (st.vel) m[VELOCITY + st.vel - 1] = false;
        return;
    }
    if (prev != BOS && !(v_.is_shift(prev) && prev != TIME_SHIFT + v_.n_shifts - 1)) std::fill(m + TIME_SHIFT, m + VELOCITY, true);
    if (st.vel) { std::copy(free_, free_ + N_PITCHES, m + NOTE_ON); std::copy(drums, drums + N_DRUMS, m + DRUM); }
    if (any_free || any_drum) std::fill(m + VELOCITY, m + DURATION, true);
    if (st.vel) m[VELOCITY + st.vel - 1] = false;
    for (int q = st.step_prog + 1; q < N_PROGRAMS; ++q) {          // a switch to another program with a free pitch
        if (!prog_ok_[q] || q == st.prog) continue;
        const int64_t* b = st.busy.data() + (size_t)q * N_PITCHES;
        m[PROGRAM + q] = std::any_of(b, b + N_PITCHES, [&](int64_t x) { return x <= st.t; });
    }
    m[EOS] = v_.is_duration(prev) || prev >= DRUM;
}

void Grammar::allowed(const GrammarState& st, bool* m) const {
    if (v_.multi) { allowed_multi(st, m); return; }
    const int VELOCITY = v_.velocity(), DURATION = v_.duration(), VOCAB = v_.size(), N_SHIFTS = v_.n_shifts;
    std::fill(m, m + VOCAB, false);
    if (st.phase == 0) { m[BOS] = true; return; }
    if (st.phase == 2) { m[PAD] = true; return; }
    const int prev = st.prev;
    if (!perf_ && prev >= NOTE_ON && prev < NOTE_OFF) { std::fill(m + DURATION, m + VOCAB, true); return; }
    bool free_[N_PITCHES];
    bool any_free = false;
    for (int p = 0; p < N_PITCHES; ++p) {
        free_[p] = p > st.step_on && (perf_ ? !st.sounding[p] : st.busy[p] <= st.t);
        any_free |= free_[p];
    }
    if (prev >= VELOCITY && prev < DURATION) { std::copy(free_, free_ + N_PITCHES, m + NOTE_ON); return; }
    if (prev != BOS && !(v_.is_shift(prev) && prev != TIME_SHIFT + N_SHIFTS - 1)) {
        std::fill(m + TIME_SHIFT, m + VELOCITY, true);
        if (!perf_) {   // a shift short of the longest must reach a step where some pitch is free
            int64_t min_busy = *std::min_element(st.busy.begin(), st.busy.end());
            for (int k = 1; k < N_SHIFTS; ++k) m[TIME_SHIFT + k - 1] = min_busy <= st.t + k;
        }
    }
    if (st.vel) std::copy(free_, free_ + N_PITCHES, m + NOTE_ON);
    if (any_free) std::fill(m + VELOCITY, m + DURATION, true);
    if (st.vel) m[VELOCITY + st.vel - 1] = false;
    bool any_sounding = false;
    if (perf_) {
        for (int p = 0; p < N_PITCHES; ++p) {
            any_sounding |= st.sounding[p];
            if (!st.on_in_step) m[NOTE_OFF + p] = st.sounding[p] && p > st.step_off;
        }
        m[EOS] = prev >= NOTE_OFF && prev < TIME_SHIFT && !any_sounding;
    } else {
        m[EOS] = prev >= DURATION;
    }
}

void Grammar::step(GrammarState& st, int tok) const {
    const int VELOCITY = v_.velocity(), DURATION = v_.duration();
    if (tok == BOS) st.phase = 1;
    else if (tok == EOS || tok == PAD) st.phase = 2;
    else if (v_.is_shift(tok)) {
        st.step_on = st.step_off = -1; st.on_in_step = false; st.t += tok - TIME_SHIFT + 1;
        st.step_prog = st.step_drum = -1;
    }
    else if (tok >= v_.drum()) { st.step_drum = tok - v_.drum() + DRUM_LOW; ++st.n_notes; }
    else if (tok >= v_.program()) { st.prog = st.step_prog = tok - v_.program(); st.step_on = -1; }
    else if (tok >= DURATION) st.busy[(v_.multi ? (size_t)st.prog * N_PITCHES : 0) + st.step_on] = st.t + v_.duration_steps[tok - DURATION];
    else if (tok >= VELOCITY) st.vel = tok - VELOCITY + 1;
    else if (tok >= NOTE_ON && tok < NOTE_OFF) {
        st.step_on = tok - NOTE_ON; st.on_in_step = true; ++st.n_notes;
        if (v_.multi) st.step_prog = st.prog;
        if (perf_) st.sounding[tok - NOTE_ON] = true;
    } else if (tok >= NOTE_OFF && tok < TIME_SHIFT) { st.step_off = tok - NOTE_OFF; st.sounding[tok - NOTE_OFF] = false; }
    st.prev = tok;
}

bool Grammar::advance(GrammarState& st, int tok) const {
    bool m[MAX_VOCAB];
    if (tok < 0 || tok >= v_.size()) return false;
    allowed(st, m);
    if (!m[tok]) return false;
    step(st, tok);
    return true;
}

int Grammar::check(const std::vector<int>& ids) const {
    GrammarState st = initial();
    for (size_t i = 0; i < ids.size(); ++i)
        if (!advance(st, ids[i])) return (int)i;
    return -1;
}

std::vector<int> complete(const Grammar& g, const std::vector<int>& ids) {
    auto eos = std::find(ids.begin(), ids.end(), EOS);
    if (eos != ids.end()) return std::vector<int>(ids.begin(), eos + 1);
    size_t last = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
        int t = ids[i];
        if (g.performance() ? (t >= NOTE_ON && t < TIME_SHIFT) : (g.vocab().is_duration(t) || t >= g.vocab().drum())) last = i;
    }
    std::vector<int> out(ids.begin(), ids.begin() + std::min(ids.size(), last + 1));
    if (g.performance()) {
        GrammarState st = g.initial();
        for (int t : out) g.advance(st, t);
        bool shifted = false;
        for (int p = 0; p < N_PITCHES; ++p)
            if (st.sounding[p]) {
                if (!shifted) { out.push_back(TIME_SHIFT); shifted = true; }
                out.push_back(NOTE_OFF + p);
            }
    }
    out.push_back(EOS);
    return out;
}

void parse_instruments(const std::string& spec, std::vector<int>& programs, bool& drums) {
    static const std::map<std::string, int> family = {   // nomad_muse_trainer.tokenizer.GM_FAMILIES (+ FAMILY_ALIASES): first program
        {"piano", 0}, {"chromatic percussion", 8}, {"organ", 16}, {"guitar", 24}, {"bass", 32}, {"strings", 40}, {"ensemble", 48},
        {"brass", 56}, {"reed", 64}, {"pipe", 72}, {"synth lead", 80}, {"synth pad", 88}, {"synth effects", 96}, {"ethnic", 104},
        {"percussive", 112}, {"sound effects", 120}, {"mallets", 8}, {"horns", 56}, {"sax", 64}, {"winds", 64}, {"flute", 72},
        {"lead", 80}, {"pad", 88}, {"fx", 96}, {"keys", 0}, {"choir", 48}};
    programs.clear(); drums = false;
    std::string s = spec;
    for (size_t k; (k = s.find(" and ")) != std::string::npos;) s.replace(k, 5, ",");
    std::istringstream in(s);
    std::string part;
    while (std::getline(in, part, ',')) {
        size_t a = part.find_first_not_of(" \t"), b = part.find_last_not_of(" \t");
        if (a == std::string::npos) continue;
        std::string low = part.substr(a, b - a + 1);
        for (char& c : low) c = (char)std::tolower((unsigned char)c);
        if (low == "drums" || low == "drum" || low == "kit" || low == "percussion") drums = true;
        else if (std::all_of(low.begin(), low.end(), [](char c) { return std::isdigit((unsigned char)c); }) && low.size() <= 3 && std::stoi(low) < N_PROGRAMS)
            programs.push_back(std::stoi(low));
        else if (family.count(low)) for (int k = 0; k < 8; ++k) programs.push_back(family.at(low) + k);
        else throw Error("unknown instrument '" + part.substr(a, b - a + 1) + "': use a General MIDI program (0-127), drums, or a family such as bass, piano, guitar, strings");
    }
    std::sort(programs.begin(), programs.end());
    programs.erase(std::unique(programs.begin(), programs.end()), programs.end());
    if (programs.empty() && !drums) throw Error("no instruments named (for example: --instruments bass,drums)");
}

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

// ------------------------------------------------------------------------------------------------ baseline.bin
// Layout: muse/formats.hpp's format::markov (generated from nbs/00d_formats.ipynb, where it is written out). In short:
// little-endian; the header's fields at their offsets, then (order+1) x (u32 contexts, u32 pairs), [version 2: u32
// steps of each DURATION bin], zero-padded to 8 bytes; then per order 0..order the arrays keys u64[c], total u32[c],
// types u32[c], start u32[c+1], next u16[n], count u32[n], each padded to 8 bytes; then f32 rhythm weights[positions]
// (already raised to beta) and a CRC32 (zlib) of everything before it.
namespace {
uint32_t crc32(const uint8_t* p, size_t n) {
    static uint32_t table[256];
    static bool ready = [] {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return true;
    }();
    (void)ready;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}
template <class T> T rd(const std::vector<uint8_t>& d, size_t off) { T v; std::memcpy(&v, d.data() + off, sizeof(T)); return v; }
}  // namespace

MarkovModel::MarkovModel(const std::string& path, const std::string& expect_sha) {
    data_ = read_file(path, "baseline");
    const auto& d = data_;
    const size_t n = d.size();
    if (n < 112) throw Error(path + ": truncated (" + std::to_string(n) + " bytes; a baseline.bin has at least 112)");
    if (std::memcmp(d.data() + format::markov::at_magic, format::markov::magic, 8) != 0) throw Error(path + ": not a baseline.bin (wrong magic)");
    uint32_t version = rd<uint32_t>(d, format::markov::at_version), hsize = rd<uint32_t>(d, format::markov::at_header_size),
             vsize = rd<uint32_t>(d, format::markov::at_vocab_size);
    order_ = rd<uint32_t>(d, format::markov::at_order); npos_ = rd<uint32_t>(d, format::markov::at_positions); beta_ = rd<float>(d, format::markov::at_beta);
    ts_ms_ = rd<uint32_t>(d, format::markov::at_time_shift_ms); mode_ = rd<uint32_t>(d, format::markov::at_mode);
    if (version != 1 && version != format::markov::version) throw Error(path + ": format version " + std::to_string(version) + ", this reader knows 1 and 2");
    if (crc32(d.data(), n - 4) != rd<uint32_t>(d, n - 4)) throw Error(path + ": CRC mismatch: the file is damaged or truncated");
    if (vsize > MAX_VOCAB || order_ < 1 || order_ > MAX_ORDER || npos_ != N_POSITIONS)
        throw Error(path + ": unsupported sizes (vocab " + std::to_string(vsize) + ", order " + std::to_string(order_) + ")");
    vocab_.performance = mode_ == 1; vocab_.time_shift_ms = (int)ts_ms_;
    const size_t at = version == 1 ? format::markov::at_v1_vocab_sha256 : format::markov::at_vocab_sha256, sizes_at = at + format::markov::sha256_bytes;   // version 1: the default layout, no layout fields
    if (version == format::markov::version) {
        vocab_.n_shifts = (int)rd<uint32_t>(d, format::markov::at_n_shifts); vocab_.n_velocities = (int)rd<uint32_t>(d, format::markov::at_n_velocities);
        vocab_.n_durations = (int)rd<uint32_t>(d, format::markov::at_n_durations);
        uint32_t tracks = rd<uint32_t>(d, format::markov::at_tracks);                        // 0 single stream, 1 multi (0 in files of earlier releases)
        if (tracks > 1) throw Error(path + ": unknown track layout " + std::to_string(tracks) + " (0 single, 1 multi)");
        vocab_.multi = tracks == 1;
        size_t table = sizes_at + 8 * (order_ + 1);
        if (vocab_.n_durations < 1 || vocab_.n_durations > MAX_VOCAB || table + 4 * (size_t)vocab_.n_durations > n)
            throw Error(path + ": its vocabulary layout does not fit the file");
        vocab_.duration_steps.assign(vocab_.n_durations, 0);
        for (int i = 0; i < vocab_.n_durations; ++i) vocab_.duration_steps[i] = (int)rd<uint32_t>(d, table + 4 * i);
    }
    if (vocab_.size() != (int)vsize) throw Error(path + ": vocabulary size " + std::to_string(vsize) + " does not match its layout");
    sha_.assign(reinterpret_cast<const char*>(d.data()) + at, format::markov::sha256_bytes);
    sha_.erase(sha_.find_last_not_of('\0') + 1);
    if (!expect_sha.empty() && sha_ != expect_sha)
        throw Error(path + ": built for vocab " + sha_.substr(0, 12) + "..., but this vocab is " + expect_sha.substr(0, 12) + "...");
    if (hsize < sizes_at + 8 * (order_ + 1) || hsize % 8) throw Error(path + ": bad header size " + std::to_string(hsize));
    size_t off = hsize;
    auto take = [&](size_t count, size_t width) -> const uint8_t* {
        size_t bytes = count * width;
        if (off + bytes + 4 > n) throw Error(path + ": sizes in the header do not fit the file");
        const uint8_t* p = d.data() + off;
        off += (bytes + 7) / 8 * 8;
        return p;
    };
    for (uint32_t k = 0; k <= order_; ++k) {
        Table t;
        t.n_ctx = rd<uint32_t>(d, sizes_at + 8 * k); t.n_pairs = rd<uint32_t>(d, sizes_at + 4 + 8 * k);
        t.keys = reinterpret_cast<const uint64_t*>(take(t.n_ctx, 8));
        t.total = reinterpret_cast<const uint32_t*>(take(t.n_ctx, 4));
        t.types = reinterpret_cast<const uint32_t*>(take(t.n_ctx, 4));
        t.start = reinterpret_cast<const uint32_t*>(take(t.n_ctx + 1, 4));
        t.next = reinterpret_cast<const uint16_t*>(take(t.n_pairs, 2));
        t.count = reinterpret_cast<const uint32_t*>(take(t.n_pairs, 4));
        if (t.n_ctx == 0 || t.start[t.n_ctx] != t.n_pairs) throw Error(path + ": order " + std::to_string(k) + " table is inconsistent");
        for (uint32_t i = 0; i < t.n_pairs; ++i)
            if (t.next[i] >= vsize) throw Error(path + ": a next-token id is out of range");
        tables_.push_back(t);
    }
    rhythm_ = reinterpret_cast<const float*>(take(npos_, 4));
    if (off + 4 != n) throw Error(path + ": " + std::to_string((long long)n - (long long)off - 4) + " unexpected bytes after the tables");
    const Table& t0 = tables_[0];   // order 0 backs off to uniform
    double n0 = t0.total[0], T0 = t0.types[0];
    const int V = vocab_.size();
    for (int i = 0; i < V; ++i) p0_[i] = (T0 / V) / (n0 + T0);
    for (uint32_t i = 0; i < t0.n_pairs; ++i) p0_[t0.next[i]] += t0.count[i] / (n0 + T0);
}

void MarkovModel::probs(const int* ctx, double* out) const {
    const int VOCAB = vocab_.size();
    std::copy(p0_.begin(), p0_.begin() + VOCAB, out);
    uint64_t key = 0;
    for (uint32_t k = 1; k <= order_; ++k) {
        key |= uint64_t(ctx[order_ - k]) << (9 * (k - 1));   // the most recent token in the lowest bits
        const Table& t = tables_[k];
        const uint64_t* e = t.keys + t.n_ctx;
        const uint64_t* it = std::lower_bound(t.keys, e, key);
        if (it == e || *it != key) continue;                 // unseen: keep the shorter context's distribution
        size_t r = it - t.keys;
        double tot = t.total[r], typ = t.types[r], z = tot + typ;
        for (int i = 0; i < VOCAB; ++i) out[i] *= typ / z;
        for (uint32_t j = t.start[r]; j < t.start[r + 1]; ++j) out[t.next[j]] += t.count[j] / z;
    }
}

void MarkovModel::apply_rhythm(double* p, int64_t t, double bar, double phase) const {
    if (beta_ == 0 || bar <= 0) return;
    const int VOCAB = vocab_.size();
    double sum = 0;
    for (int s = 1; s <= vocab_.n_shifts; ++s) {
        double x = std::fmod(double(t + s) + phase, bar);
        if (x < 0) x += bar;
        long slot = ((long)std::nearbyint(x / bar * N_POSITIONS)) % N_POSITIONS;
        p[TIME_SHIFT + s - 1] *= rhythm_[slot];
    }
    for (int i = 0; i < VOCAB; ++i) sum += p[i];
    for (int i = 0; i < VOCAB; ++i) p[i] /= sum;
}

void MarkovStream::reset() { ctx_.fill(PAD); t_ = 0; }

const double* MarkovStream::step(int tok) {
    if (tok < 0 || tok >= m_.vocab().size()) throw Error("token id " + std::to_string(tok) + " is outside 0-" + std::to_string(m_.vocab().size() - 1));
    int k = m_.order();
    for (int i = 0; i + 1 < k; ++i) ctx_[i] = ctx_[i + 1];
    ctx_[k - 1] = tok;
    if (m_.vocab().is_shift(tok)) t_ += tok - TIME_SHIFT + 1;
    m_.probs(ctx_.data(), p_.data());
    m_.apply_rhythm(p_.data(), t_, bar_, phase_);
    return p_.data();
}

// ------------------------------------------------------------------------------------------------ MIDI
// A port of nomad_muse_trainer.tokenizer.decode_notes: lenient about anything that is not canonical.
namespace {
// nomad_muse_trainer.tokenizer._one_per_voice: sorted by onset, voice, longest first; one note per (onset, voice), and a
// voice cannot overlap itself. Voices: the pitch (single stream); drum keys first, then (program, pitch) (multi).
std::vector<Note> one_per_voice(std::vector<Note> notes, bool multi) {
    auto voice = [multi](const Note& n) { return multi ? (n.drum ? 0 : n.program + 1) * N_PITCHES + n.pitch : n.pitch; };
    std::sort(notes.begin(), notes.end(), [&](const Note& a, const Note& b) {
        if (a.start != b.start) return a.start < b.start;
        if (voice(a) != voice(b)) return voice(a) < voice(b);
        return a.end > b.end;
    });
    std::vector<Note> out;
    for (const Note& n : notes)
        if (out.empty() || out.back().start != n.start || voice(out.back()) != voice(n)) out.push_back(n);
    std::map<int, int64_t> next_start;
    for (size_t i = out.size(); i-- > 0;) {
        auto it = next_start.find(voice(out[i]));
        if (it != next_start.end()) out[i].end = std::min(out[i].end, it->second);
        next_start[voice(out[i])] = out[i].start;
    }
    return out;
}

// nomad_muse_trainer.tokenizer._decode_multi: rows with their program, drum hits 100 ms long
std::vector<Note> decode_multi(const std::vector<int>& ids, const Vocab& v) {
    const int VELOCITY = v.velocity(), DURATION = v.duration(), PROGRAM = v.program(), DRUM = v.drum();
    const int64_t hit = std::max(1L, std::lround(100.0 / v.time_shift_ms)), open_len = std::max(1L, std::lround(500.0 / v.time_shift_ms));
    int64_t t = 0;
    int vel = v.velocity_value(v.default_velocity_bin()), prog = 0;
    std::vector<Note> notes;
    for (size_t i = 0; i < ids.size(); ++i) {
        int tok = ids[i];
        if (tok == EOS) break;
        if (v.is_shift(tok)) t += tok - TIME_SHIFT + 1;
        else if (tok >= VELOCITY && tok < DURATION) vel = v.velocity_value(tok - VELOCITY + 1);
        else if (tok >= PROGRAM && tok < DRUM) prog = tok - PROGRAM;
        else if (tok >= DRUM) notes.push_back({t, t + hit, tok - DRUM + DRUM_LOW, vel, 0, true});
        else if (tok >= NOTE_ON && tok < NOTE_OFF) {          // a NOTE_ON without its DURATION lasts half a second
            bool d = i + 1 < ids.size() && v.is_duration(ids[i + 1]);
            notes.push_back({t, t + (d ? v.duration_steps[ids[i + 1] - DURATION] : open_len), tok - NOTE_ON, vel, prog, false});
            if (d) ++i;
        }
    }
    return one_per_voice(std::move(notes), true);
}
}  // namespace

std::vector<Note> decode_notes(const std::vector<int>& ids, const Vocab& v) {
    const int VELOCITY = v.velocity(), DURATION = v.duration();
    for (int t : ids) if (t < 0 || t >= v.size()) throw Error("token id " + std::to_string(t) + " is outside 0-" + std::to_string(v.size() - 1));
    if (v.multi) return decode_multi(ids, v);
    int64_t t = 0;
    int vel = v.velocity_value(v.default_velocity_bin());
    std::map<int, std::pair<int64_t, int>> open;
    std::vector<Note> notes;
    auto close = [&](int p, int64_t at) { auto s = open[p]; open.erase(p); notes.push_back({s.first, std::max(at, s.first + 1), p, s.second}); };
    for (size_t i = 0; i < ids.size(); ++i) {
        int tok = ids[i];
        if (tok == EOS) break;
        if (v.is_shift(tok)) t += tok - TIME_SHIFT + 1;
        else if (tok >= VELOCITY && tok < DURATION) vel = v.velocity_value(tok - VELOCITY + 1);
        else if (tok >= NOTE_ON && tok < NOTE_OFF) {
            int p = tok - NOTE_ON;
            if (open.count(p)) close(p, t);
            if (i + 1 < ids.size() && ids[i + 1] >= DURATION) { notes.push_back({t, t + v.duration_steps[ids[i + 1] - DURATION], p, vel}); ++i; }
            else open[p] = {t, vel};
        } else if (tok >= NOTE_OFF && tok < TIME_SHIFT && open.count(tok - NOTE_OFF)) close(tok - NOTE_OFF, t);
    }
    while (!open.empty()) { int p = open.begin()->first; int64_t s = open.begin()->second.first; close(p, t > s ? t : s + std::max(1L, std::lround(500.0 / v.time_shift_ms))); }   // half a second
    return one_per_voice(std::move(notes), false);
}

namespace {
void put_var(std::string& s, uint32_t v) {
    uint8_t b[5]; int n = 0;
    b[n++] = v & 0x7F;
    while (v >>= 7) b[n++] = 0x80 | (v & 0x7F);
    while (n--) s.push_back((char)b[n]);
}
void put_be(std::string& s, uint32_t v, int bytes) { for (int i = bytes - 1; i >= 0; --i) s.push_back((char)((v >> (8 * i)) & 0xFF)); }
}  // namespace

void write_midi(const std::vector<int>& ids, const std::string& path, double tempo_bpm, const Vocab& v, int program) {
    const int time_shift_ms = v.time_shift_ms;
    if (!(tempo_bpm > 0)) throw Error("tempo must be positive");
    const int tpq = 480;
    const double ticks_per_step = time_shift_ms / 1000.0 * tpq * tempo_bpm / 60.0;
    struct Ev { int64_t tick; int order; uint8_t status, a, b; };
    std::vector<Ev> ev;
    const std::vector<Note> notes = decode_notes(ids, v);
    std::map<int, int> channel;                             // multi: program -> channel (drums: 9, MIDI channel 10)
    if (v.multi) {
        std::vector<int> progs;
        for (const Note& n : notes) if (!n.drum && !channel.count(n.program)) { channel[n.program] = 0; progs.push_back(n.program); }
        std::sort(progs.begin(), progs.end());
        int c = 0;
        for (int p : progs) { channel[p] = c; if (c < 15) c += c == 8 ? 2 : 1; }   // skip 9; beyond 15 share the last
    } else channel[program] = 0;
    for (const Note& n : notes) {
        int ch = n.drum ? 9 : channel[v.multi ? n.program : program];
        int64_t on = std::llround(n.start * ticks_per_step), off = std::max(on + 1, (int64_t)std::llround(n.end * ticks_per_step));
        ev.push_back({on, 1, (uint8_t)(0x90 | ch), (uint8_t)n.pitch, (uint8_t)n.velocity});
        ev.push_back({off, 0, (uint8_t)(0x80 | ch), (uint8_t)n.pitch, 0});   // offs before ons at the same tick
    }
    std::stable_sort(ev.begin(), ev.end(), [](const Ev& a, const Ev& b) { return a.tick != b.tick ? a.tick < b.tick : a.order < b.order; });
    std::string trk;
    uint32_t us = (uint32_t)std::llround(60e6 / tempo_bpm);
    put_var(trk, 0); trk += "\xFF\x51\x03"; put_be(trk, us, 3);                 // tempo
    put_var(trk, 0); trk += "\xFF\x58\x04"; trk += std::string("\x04\x02\x18\x08", 4);   // 4/4
    const std::string name = "nomad-muse";
    put_var(trk, 0); trk += "\xFF\x03"; put_var(trk, (uint32_t)name.size()); trk += name;
    std::map<int, int> pc;                                  // one program change per channel used
    for (auto& kv : channel) if (!pc.count(kv.second)) pc[kv.second] = kv.first;
    for (auto& kv : pc) { put_var(trk, 0); trk.push_back((char)(0xC0 | kv.first)); trk.push_back((char)(kv.second & 0x7F)); }
    int64_t last = 0;
    for (const Ev& e : ev) {
        put_var(trk, (uint32_t)(e.tick - last)); last = e.tick;
        trk.push_back((char)e.status); trk.push_back((char)e.a); trk.push_back((char)e.b);
    }
    put_var(trk, 0); trk += std::string("\xFF\x2F\x00", 3);
    std::string file = "MThd";
    put_be(file, 6, 4); put_be(file, 0, 2); put_be(file, 1, 2); put_be(file, tpq, 2);
    file += "MTrk"; put_be(file, (uint32_t)trk.size(), 4); file += trk;
    write_file_atomic(path, file);
}

void write_file_atomic(const std::string& path, const std::string& bytes) {
    const std::string tmp = path + ".tmp";
    bool ok;
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        ok = f.write(bytes.data(), (std::streamsize)bytes.size()).good();
    }
    if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) { std::remove(tmp.c_str()); throw Error("cannot write " + path); }
}

}  // namespace muse
