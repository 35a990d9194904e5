// The grammar: which token may follow a prefix (a port of nomad_muse_trainer.grammar), and the instruments by name.
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

// ------------------------------------------------------------------------------------------------ grammar
// A line-by-line port of nomad_muse_trainer.grammar.Grammar; tests/test_muse.cpp checks the masks against it.
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
    parts_.clear();
}

void Grammar::set_instruments(const std::string& spec) {
    std::vector<std::vector<int>> groups;
    bool drums;
    parse_instrument_groups(spec, groups, drums);
    std::vector<int> exact, programs;
    for (auto& g : groups) if (g.size() == 1) exact.push_back(g[0]);
    std::vector<std::vector<int>> parts;                      // a program a part; a family unless one of its programs is named
    for (auto& g : groups) {
        bool covered = g.size() > 1 && std::any_of(g.begin(), g.end(), [&](int p) { return std::count(exact.begin(), exact.end(), p) > 0; });
        if (!covered && std::find(parts.begin(), parts.end(), g) == parts.end()) parts.push_back(g);
    }
    std::sort(parts.begin(), parts.end(), [](const std::vector<int>& a, const std::vector<int>& b) { return a.front() < b.front(); });
    for (auto& g : parts) programs.insert(programs.end(), g.begin(), g.end());
    set_instruments(programs, drums);
    parts_ = parts;
}

// nomad_muse_trainer.tokenizer.Grammar._allowed_multi: per step drums first (keys rising), then programs rising,
// each program's pitches rising; a PROGRAM token only where the program changes.
void Grammar::allowed_multi(const GrammarState& st, bool* m) const {
    const int VELOCITY = v_.velocity(), DURATION = v_.duration(), PROGRAM = v_.program(), DRUM = v_.drum(), VOCAB = v_.size();
    std::fill(m, m + VOCAB, false);
    if (st.phase == 0) { m[BOS] = true; return; }
    if (st.phase == 2) { m[PAD] = true; return; }
    const int prev = st.prev;
    if (prev >= NOTE_ON && prev < NOTE_OFF) { std::fill(m + DURATION, m + v_.duration_end(), true); return; }
    bool any_free = false, any_drum = false;
    const bool prog_plays = st.prog >= 0 && prog_ok(st, st.prog);
    const int64_t* busy = prog_plays ? st.busy.data() + (size_t)st.prog * N_PITCHES : nullptr;
    bool free_[N_PITCHES], drums[N_DRUMS];
    for (int p = 0; p < N_PITCHES; ++p) { free_[p] = prog_plays && p > st.step_on && busy[p] <= st.t; any_free |= free_[p]; }
    for (int k = 0; k < N_DRUMS; ++k) { drums[k] = drums_ok(st) && st.step_prog < 0 && k > st.step_drum - DRUM_LOW; any_drum |= drums[k]; }
    if (prev >= VELOCITY && prev < DURATION) {
        std::copy(free_, free_ + N_PITCHES, m + NOTE_ON); std::copy(drums, drums + N_DRUMS, m + DRUM); return;
    }
    if (prev >= PROGRAM && prev < DRUM) {
        if (st.vel) std::copy(free_, free_ + N_PITCHES, m + NOTE_ON);
        std::fill(m + VELOCITY, m + DURATION, true);
        if (st.vel) m[VELOCITY + st.vel - 1] = false;
        return;
    }
    if (prev != BOS && prev != v_.header_end() && !(v_.is_shift(prev) && prev != TIME_SHIFT + v_.n_shifts - 1)) std::fill(m + TIME_SHIFT, m + VELOCITY, true);
    if (st.vel) { std::copy(free_, free_ + N_PITCHES, m + NOTE_ON); std::copy(drums, drums + N_DRUMS, m + DRUM); }
    if (any_free || any_drum) std::fill(m + VELOCITY, m + DURATION, true);
    if (st.vel) m[VELOCITY + st.vel - 1] = false;
    for (int q = st.step_prog + 1; q < N_PROGRAMS; ++q) {          // a switch to another program with a free pitch
        if (!prog_ok(st, q) || q == st.prog) continue;
        const int64_t* b = st.busy.data() + (size_t)q * N_PITCHES;
        m[PROGRAM + q] = std::any_of(b, b + N_PITCHES, [&](int64_t x) { return x <= st.t; });
    }
    m[EOS] = v_.is_duration(prev) || prev >= DRUM;
}

// nomad_muse_trainer.grammar.Grammar.allowed: where a piece opens (a band's header; beat time's first BAR, METER and
// TEMPO), then the stream's rules (single or multi), then beat time's on top.
void Grammar::allowed(const GrammarState& st, bool* m) const {
    if ((v_.header || v_.beat) && allowed_opening(st, m)) return;
    if (v_.multi) allowed_multi(st, m); else allowed_single(st, m);
    if (v_.beat && st.phase == 1) beat_rules(st, m);
}

bool Grammar::allowed_opening(const GrammarState& st, bool* m) const {
    if (st.phase != 1) return false;
    if (v_.header && st.head && !parts_.empty()) {               // a spec: one PROGRAM a part, then the drums it names, HEADER_END
        std::fill(m, m + v_.size(), false);
        size_t j = (size_t)std::count(st.band.begin(), st.band.end(), true);
        if (j < parts_.size()) for (int p : parts_[j]) m[v_.program() + p] = true;
        else if (drums_ok_ && !st.band_drums) m[v_.header_drums()] = true;
        else m[v_.header_end()] = true;
        return true;
    }
    if (v_.header && st.head) {                                  // PROGRAMs rising, HEADER_DRUMS, HEADER_END
        std::fill(m, m + v_.size(), false);
        bool any = st.band_drums;
        int last = -1;
        for (int p = 0; p < N_PROGRAMS; ++p) if (st.band[p]) { last = p; any = true; }
        if (st.prev != v_.header_drums()) {
            for (int p = last + 1; p < N_PROGRAMS; ++p) m[v_.program() + p] = prog_ok_[p];
            m[v_.header_drums()] = drums_ok_;
        }
        m[v_.header_end()] = any;
        return true;
    }
    if (!v_.beat) return false;
    if (st.bars == 0 || st.meter < 0 || st.tempo < 0) {
        std::fill(m, m + v_.size(), false);
        if (st.bars == 0) m[v_.bar()] = true;
        else if (st.meter < 0) std::fill(m + v_.meter(), m + v_.tempo(), true);
        else std::fill(m + v_.tempo(), m + v_.tempo() + N_TEMPOS, true);
        return true;
    }
    return false;
}

// nomad_muse_trainer.grammar.Grammar._beat_rules, on the stream's own mask (which already treats BAR, METER and TEMPO as
// the start of a position): shifts stay inside the bar; BAR after a whole event (and a first note); METER right after BAR
// where it changes; TEMPO once a position, before its notes.
void Grammar::beat_rules(const GrammarState& st, bool* m) const {
    const int prev = st.prev, S = v_.n_shifts;
    const int64_t pos = st.t - st.bar_start;
    const bool meter_or_tempo = prev >= v_.meter() && prev < v_.tempo() + N_TEMPOS, is_meter = v_.is_meter(prev);
    bool any = meter_or_tempo || prev == v_.bar();
    for (int k = 0; k < S && !any; ++k) any = m[TIME_SHIFT + k];
    bool shifts = any || v_.is_shift(prev);
    if (v_.is_shift(prev) && prev != TIME_SHIFT + S - 1) shifts = false;
    for (int k = 1; k <= S; ++k) m[TIME_SHIFT + k - 1] = shifts && pos + k < st.bar_len;
    const bool whole = v_.is_duration(prev) || prev == v_.bar() || meter_or_tempo || (v_.multi && prev >= v_.drum());
    m[v_.bar()] = whole && st.n_notes > 0;
    if (prev == v_.bar()) { std::fill(m + v_.meter(), m + v_.tempo(), true); m[v_.meter() + st.meter] = false; }
    if ((prev == v_.bar() || is_meter || v_.is_shift(prev)) && !st.tempo_here) {
        std::fill(m + v_.tempo(), m + v_.tempo() + N_TEMPOS, true); m[v_.tempo() + st.tempo] = false;
    }
}

void Grammar::allowed_single(const GrammarState& st, bool* m) const {
    const int VELOCITY = v_.velocity(), DURATION = v_.duration(), VOCAB = v_.size(), N_SHIFTS = v_.n_shifts;
    std::fill(m, m + VOCAB, false);
    if (st.phase == 0) { m[BOS] = true; return; }
    if (st.phase == 2) { m[PAD] = true; return; }
    const int prev = st.prev;
    if (!perf_ && prev >= NOTE_ON && prev < NOTE_OFF) { std::fill(m + DURATION, m + v_.duration_end(), true); return; }
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
        m[EOS] = v_.is_duration(prev);
    }
}

void Grammar::step(GrammarState& st, int tok) const {
    const int VELOCITY = v_.velocity(), DURATION = v_.duration();
    if (tok == BOS) { st.phase = 1; st.head = v_.header; }
    else if (tok == EOS || tok == PAD) st.phase = 2;
    else if (v_.is_shift(tok)) {
        st.step_on = st.step_off = -1; st.on_in_step = false; st.t += tok - TIME_SHIFT + 1;
        st.step_prog = st.step_drum = -1; st.tempo_here = false;
    }
    else if (st.head) {
        if (tok == v_.header_end()) st.head = false;
        else if (tok == v_.header_drums()) st.band_drums = true;
        else st.band[tok - v_.program()] = true;
    }
    else if (v_.beat && tok == v_.bar()) {
        if (st.bars) st.bar_start += st.bar_len;
        st.t = st.bar_start; ++st.bars; st.tempo_here = false;
        st.step_on = st.step_off = -1; st.on_in_step = false; st.step_prog = st.step_drum = -1;
    }
    else if (v_.is_meter(tok)) { st.meter = tok - v_.meter(); st.bar_len = v_.bar_ticks(st.meter); }
    else if (v_.is_tempo(tok)) { st.tempo = tok - v_.tempo(); st.tempo_here = true; }
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
        if (g.performance() ? (t >= NOTE_ON && t < TIME_SHIFT) : (g.vocab().is_duration(t) || (g.vocab().multi && t >= g.vocab().drum()))) last = i;
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
    std::vector<std::vector<int>> groups;
    parse_instrument_groups(spec, groups, drums);
    programs.clear();
    for (auto& g : groups) programs.insert(programs.end(), g.begin(), g.end());
    std::sort(programs.begin(), programs.end());
    programs.erase(std::unique(programs.begin(), programs.end()), programs.end());
}

void parse_instrument_groups(const std::string& spec, std::vector<std::vector<int>>& groups, bool& drums) {
    static const std::map<std::string, int> family = {   // nomad_muse_trainer.tokenizer.GM_FAMILIES (+ FAMILY_ALIASES): first program
        {"piano", 0}, {"chromatic percussion", 8}, {"organ", 16}, {"guitar", 24}, {"bass", 32}, {"strings", 40}, {"ensemble", 48},
        {"brass", 56}, {"reed", 64}, {"pipe", 72}, {"synth lead", 80}, {"synth pad", 88}, {"synth effects", 96}, {"ethnic", 104},
        {"percussive", 112}, {"sound effects", 120}, {"mallets", 8}, {"horns", 56}, {"sax", 64}, {"winds", 64}, {"flute", 72},
        {"lead", 80}, {"pad", 88}, {"fx", 96}, {"keys", 0}, {"choir", 48}};
    groups.clear(); drums = false;
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
            groups.push_back({std::stoi(low)});
        else if (family.count(low)) { std::vector<int> g; for (int k = 0; k < 8; ++k) g.push_back(family.at(low) + k); groups.push_back(g); }
        else throw Error("unknown instrument '" + part.substr(a, b - a + 1) + "': use a General MIDI program (0-127), drums, or a family such as bass, piano, guitar, strings");
    }
    if (groups.empty() && !drums) throw Error("no instruments named (for example: --instruments bass,drums)");
}

}  // namespace muse
