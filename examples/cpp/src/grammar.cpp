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
#include <regex>
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
    chosen_ = true;
    if (has_ctl_ && !controls_leave_notes()) throw Error(ctl_.describe() + " leaves no note to play for the instruments chosen");
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
    const int prev = prev_of(st);
    if (prev >= NOTE_ON && prev < NOTE_OFF) { std::fill(m + DURATION, m + v_.duration_end(), true); return; }
    bool any_free = false, any_drum = false;
    const bool prog_plays = st.prog >= 0 && prog_ok(st, st.prog);
    const int64_t* busy = prog_plays ? st.busy.data() + (size_t)st.prog * N_PITCHES : nullptr;
    const bool space = !has_ctl_ || room(st);                   // the controls' caps leave room for a note
    const uint8_t* range = has_ctl_ && prog_plays ? pitch_row(st.prog) : nullptr;
    bool free_[N_PITCHES], drums[N_DRUMS];
    for (int p = 0; p < N_PITCHES; ++p) {
        free_[p] = prog_plays && p > st.step_on && busy[p] <= st.t && space && (!range || range[p]);
        any_free |= free_[p];
    }
    const bool hit = drums_ok(st) && st.step_prog < 0 && (!has_ctl_ || onset_room(st));
    for (int k = 0; k < N_DRUMS; ++k) { drums[k] = hit && k > st.step_drum - DRUM_LOW; any_drum |= drums[k]; }
    if (prev >= VELOCITY && prev < DURATION) {
        std::copy(free_, free_ + N_PITCHES, m + NOTE_ON); std::copy(drums, drums + N_DRUMS, m + DRUM); return;
    }
    if (prev >= PROGRAM && prev < DRUM) {
        if (st.vel) std::copy(free_, free_ + N_PITCHES, m + NOTE_ON);
        std::fill(m + VELOCITY, m + DURATION, true);
        if (st.vel) m[VELOCITY + st.vel - 1] = false;
        return;
    }
    if (prev != BOS && prev != v_.header_end() && !(v_.is_shift(prev) && prev != TIME_SHIFT + v_.n_shifts - 1)) {
        std::fill(m + TIME_SHIFT, m + VELOCITY, true);
        if (has_ctl_) landings(st, v_.n_shifts - 1, m + TIME_SHIFT);   // the longest shift always may: time passes
    }
    if (st.vel) { std::copy(free_, free_ + N_PITCHES, m + NOTE_ON); std::copy(drums, drums + N_DRUMS, m + DRUM); }
    if (any_free || any_drum) std::fill(m + VELOCITY, m + DURATION, true);
    if (st.vel) m[VELOCITY + st.vel - 1] = false;
    for (int q = st.step_prog + 1; q < N_PROGRAMS; ++q) {          // a switch to another program with a free pitch
        if (!prog_ok(st, q) || q == st.prog) continue;
        const int64_t* b = st.busy.data() + (size_t)q * N_PITCHES;
        const uint8_t* r = has_ctl_ ? pitch_row(q) : nullptr;
        bool any = false;
        for (int p = 0; p < N_PITCHES && !any && space; ++p) any = b[p] <= st.t && (!r || r[p]);
        m[PROGRAM + q] = any;
    }
    m[EOS] = v_.is_duration(prev) || prev >= DRUM;
}

// nomad_muse_trainer.grammar.Grammar.allowed: where a piece opens (a band's header; beat time's first BAR, METER and
// TEMPO), then the stream's rules (single or multi), then beat time's on top.
void Grammar::allowed(const GrammarState& st, bool* m) const {
    if (st.cprev < 0 && (v_.header || v_.beat) && allowed_opening(st, m)) return;
    if (v_.multi) allowed_multi(st, m); else allowed_single(st, m);
    if (v_.beat && st.phase == 1) beat_rules(st, m);
    if (until_ >= 0 && st.phase == 1) until_rules(st, m);
    if (st.cprev >= 0) {                                         // after a group of controls: what may follow a whole note at its tick,
        std::fill(m + v_.meter(), m + v_.tempo() + N_TEMPOS, false);   // but no METER or TEMPO (a tick has them before its controls)
        m[EOS] = m[EOS] && st.n_notes > 0;
    }
}

// nomad_muse_trainer.grammar.Grammar._until: nothing past `until_`: no shift or bar line beyond it, and no note longer
// than the ticks left (unless notes may ring on).
void Grammar::until_rules(const GrammarState& st, bool* m) const {
    const int64_t left = until_ - st.t;
    if (!ring_) for (int k = 0; k < v_.n_durations; ++k) m[v_.duration() + k] = m[v_.duration() + k] && v_.duration_steps[k] <= left;
    for (int k = 1; k <= v_.n_shifts; ++k) m[TIME_SHIFT + k - 1] = m[TIME_SHIFT + k - 1] && k < left;
    if (st.bars) m[v_.bar()] = m[v_.bar()] && st.bar_start + st.bar_len <= until_;
}

void Grammar::set_until(int64_t tick, bool ring) {
    if (!v_.beat) throw Error("a generated part's end (a fill's span) needs a time_unit: beat vocabulary");
    until_ = tick; ring_ = ring;
}

// nomad_muse_trainer.grammar.Grammar.insertable: a group AHEAD_k CTRL.. opens wherever a note may start; in a group, its
// CTRL ids rising, or the tick's next group (a larger k).
void Grammar::insertable(const GrammarState& st, bool* m) const {
    std::fill(m, m + v_.size(), false);
    if (!v_.conditioning || st.phase != 1 || st.head) return;
    const int c = st.cprev, A = v_.ahead(), C = v_.ctrl(), E = v_.size();
    if (c >= A && c < C) { std::fill(m + C, m + E, true); return; }
    if (c >= C) { std::fill(m + c + 1, m + E, true); std::fill(m + A + st.cahead + 1, m + C, true); return; }
    if (st.bars == 0 || st.meter < 0 || st.tempo < 0) return;    // the opening (BAR, METER, TEMPO) first
    const int prev = st.prev;
    if ((prev >= NOTE_ON && prev < NOTE_OFF) || (prev >= v_.velocity() && prev < v_.duration()) || (v_.multi && prev >= v_.program() && prev < v_.drum()))
        return;                                                  // inside a note
    std::fill(m + A, m + C, true);
}

void Grammar::legal(const GrammarState& st, bool* m) const {
    allowed(st, m);
    if (!v_.conditioning) return;
    bool c[MAX_VOCAB];
    insertable(st, c);
    for (int k = v_.ahead(); k < v_.size(); ++k) m[k] = m[k] || c[k];
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
    const int prev = prev_of(st), S = v_.n_shifts;
    const int64_t pos = st.t - st.bar_start;
    const bool meter_or_tempo = prev >= v_.meter() && prev < v_.tempo() + N_TEMPOS, is_meter = v_.is_meter(prev);
    bool any = meter_or_tempo || prev == v_.bar();
    for (int k = 0; k < S && !any; ++k) any = m[TIME_SHIFT + k];
    bool shifts = any || v_.is_shift(prev);
    if (v_.is_shift(prev) && prev != TIME_SHIFT + S - 1) shifts = false;
    for (int k = 1; k <= S; ++k) m[TIME_SHIFT + k - 1] = shifts && pos + k < st.bar_len;
    if (has_ctl_) {
        bool land[MAX_VOCAB];
        landings(st, S, land);
        for (int k = 0; k < S; ++k) m[TIME_SHIFT + k] = m[TIME_SHIFT + k] && land[k];
    }
    const bool whole = v_.is_duration(prev) || prev == v_.bar() || meter_or_tempo || (v_.multi && prev >= v_.drum());
    m[v_.bar()] = whole && st.n_notes + st.n_ctrl > 0;          // a piece starts in the bar of its first note (or control)
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
    const int prev = prev_of(st);
    if (!perf_ && prev >= NOTE_ON && prev < NOTE_OFF) { std::fill(m + DURATION, m + v_.duration_end(), true); return; }
    bool free_[N_PITCHES];
    bool any_free = false;
    const bool space = !has_ctl_ || room(st);
    const uint8_t* range = has_ctl_ ? pitch_row(0) : nullptr;
    for (int p = 0; p < N_PITCHES; ++p) {
        free_[p] = p > st.step_on && (perf_ ? !st.sounding[p] : st.busy[p] <= st.t) && space && (!range || range[p]);
        any_free |= free_[p];
    }
    if (prev >= VELOCITY && prev < DURATION) { std::copy(free_, free_ + N_PITCHES, m + NOTE_ON); return; }
    if (prev != BOS && !(v_.is_shift(prev) && prev != TIME_SHIFT + N_SHIFTS - 1)) {
        std::fill(m + TIME_SHIFT, m + VELOCITY, true);
        if (!perf_) {   // a shift short of the longest must reach a step where some pitch is free
            int64_t min_busy = *std::min_element(st.busy.begin(), st.busy.end());
            for (int k = 1; k < N_SHIFTS; ++k) m[TIME_SHIFT + k - 1] = min_busy <= st.t + k;
        }
        if (has_ctl_) {                                                   // the longest shift always may: time passes
            bool land[MAX_VOCAB];
            landings(st, N_SHIFTS - 1, land);
            for (int k = 0; k + 1 < N_SHIFTS; ++k) m[TIME_SHIFT + k] = m[TIME_SHIFT + k] && land[k];
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
    if (v_.is_control(tok)) {                                    // a control: the stream's rules go on from the token before its group
        if (tok < v_.ctrl()) st.cahead = tok - v_.ahead(); else ++st.n_ctrl;
        st.cprev = tok;
        return;
    }
    st.cprev = -1;
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
    else if (tok >= v_.drum()) { st.step_drum = tok - v_.drum() + DRUM_LOW; ++st.n_notes; count_onset(st); }
    else if (tok >= v_.program()) { st.prog = st.step_prog = tok - v_.program(); st.step_on = -1; }
    else if (tok >= DURATION) st.busy[(v_.multi ? (size_t)st.prog * N_PITCHES : 0) + st.step_on] = st.t + v_.duration_steps[tok - DURATION];
    else if (tok >= VELOCITY) st.vel = tok - VELOCITY + 1;
    else if (tok >= NOTE_ON && tok < NOTE_OFF) {
        st.step_on = tok - NOTE_ON; st.on_in_step = true; ++st.n_notes;
        count_onset(st);
        if (v_.multi) st.step_prog = st.prog;
        if (perf_) st.sounding[tok - NOTE_ON] = true;
    } else if (tok >= NOTE_OFF && tok < TIME_SHIFT) { st.step_off = tok - NOTE_OFF; st.sounding[tok - NOTE_OFF] = false; }
    st.prev = tok;
}

bool Grammar::advance(GrammarState& st, int tok) const {
    bool m[MAX_VOCAB];
    if (tok < 0 || tok >= v_.size()) return false;
    legal(st, m);
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

// ------------------------------------------------------------------------------------------------ controls
// nomad_muse_trainer.grammar: Controls and the Grammar's rules for them (_room, _onset_room, _window, _landings).
void Grammar::set_controls(const Controls& c) {
    if (!try_set_controls(c)) throw Error(c.describe() + " leaves no note to play" + (chosen_ ? " for the instruments chosen" : ""));
    ctl_.scale = c.scale; ctl_.pitch_range = c.pitch_range;             // the words, for later messages
}

bool Grammar::try_set_controls(const Controls& c) noexcept {
    has_ctl_ = false;
    if (!c.any()) return true;                                           // nothing asked: the tokenizer's grammar (Controls.from_args)
    ctl_.pitch_ok = c.pitch_ok;                                          // the same size: copied in place
    ctl_.polyphony = c.polyphony; ctl_.density = c.density;
    ctl_.tonic = c.tonic; ctl_.mode = c.mode; ctl_.low = c.low; ctl_.high = c.high;
    ctl_.scale.clear(); ctl_.pitch_range.clear();
    if (!controls_leave_notes()) return false;
    has_ctl_ = true;
    return true;
}

int Grammar::density_beat(const Vocab& v) {
    return v.beat ? std::max(1, v.resolution) : std::max(1, (int)std::nearbyint(500.0 / v.time_shift_ms));   // Python's round: half to even
}

bool Grammar::controls_leave_notes() const {
    bool ok = v_.multi && drums_ok_;
    for (int p = 0; p < (v_.multi ? N_PROGRAMS : 1) && !ok; ++p) {
        if (!prog_ok_[p]) continue;
        const uint8_t* r = pitch_row(p);
        ok = std::any_of(r, r + N_PITCHES, [](uint8_t x) { return x != 0; });
    }
    return ok;
}

bool Grammar::room(const GrammarState& st) const {
    if (ctl_.polyphony) {
        int n = 0;
        if (perf_) for (bool s : st.sounding) n += s;
        else for (int64_t b : st.busy) n += b > st.t;
        if (n >= ctl_.polyphony) return false;
    }
    return onset_room(st);
}

bool Grammar::onset_room(const GrammarState& st) const {
    return !(ctl_.density && window(st, st.t) == st.win && st.win_notes >= ctl_.density);
}

int64_t Grammar::window(const GrammarState& st, int64_t t) const {
    return v_.beat ? st.bar_start * 16 + (t - st.bar_start) / beat_steps_ : t / beat_steps_;
}

void Grammar::count_onset(GrammarState& st) const {
    const int64_t w = window(st, st.t);
    if (w != st.win) { st.win = w; st.win_notes = 0; }
    ++st.win_notes;
}

// For shifts of k = 1..n steps, out[k - 1]: whether something may start where the shift lands (a pitch of an allowed
// program in its range, free then and under the polyphony cap; a drum hit; neither beyond the density cap), or in
// performance mode a note may end there. No allocation.
void Grammar::landings(const GrammarState& st, int n, bool* out) const {
    bool sounding = false;
    int n_sounding = 0;
    for (bool s : st.sounding) { sounding |= s; n_sounding += s; }
    bool perf_pitched = false;
    int64_t min_busy = std::numeric_limits<int64_t>::max();
    if (perf_) {
        const uint8_t* r = pitch_row(0);
        for (int p = 0; p < N_PITCHES; ++p) perf_pitched |= !st.sounding[p] && r[p];
    } else {
        for (int q = 0; q < (v_.multi ? N_PROGRAMS : 1); ++q) {
            if (v_.multi && !prog_ok(st, q)) continue;
            const uint8_t* r = pitch_row(q);
            const int64_t* b = st.busy.data() + (size_t)q * N_PITCHES;
            for (int p = 0; p < N_PITCHES; ++p) if (r[p] && b[p] < min_busy) min_busy = b[p];
        }
    }
    // the polyphony cap: how many notes still sound after k steps (those that end after t + k), from one pass
    int later[MAX_VOCAB + 2] = {};                      // later[d]: notes ending d steps from now (d > n: n + 1)
    if (ctl_.polyphony && !perf_)
        for (int64_t b : st.busy) if (b > st.t) ++later[std::min<int64_t>(b - st.t, n + 1)];
    int still = 0;                                      // notes ending more than k steps from now, k from n down
    for (int d = n + 1; d > n; --d) still += later[d];
    const bool drums = v_.multi && drums_ok(st);
    for (int k = n; k >= 1; --k) {
        bool pitched = perf_ ? perf_pitched : min_busy <= st.t + k;
        if (ctl_.polyphony) pitched = pitched && (perf_ ? n_sounding : still) < ctl_.polyphony;
        bool ok = pitched || drums;
        if (ctl_.density && window(st, st.t + k) == st.win && st.win_notes >= ctl_.density) ok = false;
        out[k - 1] = ok || (perf_ && sounding);
        still += later[k];                                // for k - 1: the notes ending exactly k steps from now sound then too
    }
}

namespace {
struct Scale { const char* name; int n; int steps[12]; };
constexpr Scale SCALES[] = {   // nomad_muse_trainer.grammar.SCALES, in order; plain data: Controls::set reads it on an audio thread
    {"major", 7, {0, 2, 4, 5, 7, 9, 11}}, {"dorian", 7, {0, 2, 3, 5, 7, 9, 10}}, {"phrygian", 7, {0, 1, 3, 5, 7, 8, 10}},
    {"lydian", 7, {0, 2, 4, 6, 7, 9, 11}}, {"mixolydian", 7, {0, 2, 4, 5, 7, 9, 10}}, {"minor", 7, {0, 2, 3, 5, 7, 8, 10}},
    {"locrian", 7, {0, 1, 3, 5, 6, 8, 10}}, {"harmonic minor", 7, {0, 2, 3, 5, 7, 8, 11}}, {"melodic minor", 7, {0, 2, 3, 5, 7, 9, 11}},
    {"pentatonic", 5, {0, 2, 4, 7, 9}}, {"minor pentatonic", 5, {0, 3, 5, 7, 10}}, {"blues", 6, {0, 3, 5, 6, 7, 10}},
    {"whole tone", 6, {0, 2, 4, 6, 8, 10}}, {"chromatic", 12, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}}};
constexpr int N_SCALES = sizeof(SCALES) / sizeof(SCALES[0]);

std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\n\r"), b = s.find_last_not_of(" \t\n\r");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// A note name's semitone above C (accidentals counted, not wrapped); `rest` gets what follows it.
int letter(const std::string& s, const std::string& what, std::string& rest) {
    static const int pcs[7] = {9, 11, 0, 2, 4, 5, 7};   // a..g
    const char c = s.empty() ? 0 : (char)std::tolower((unsigned char)s[0]);
    if (c < 'a' || c > 'g') throw Error(what + ": expected a note name such as C, F# or Bb, got '" + s + "'");
    int pc = pcs[c - 'a'];
    size_t i = 1;
    for (; i < s.size() && (s[i] == '#' || s[i] == 'b'); ++i) pc += s[i] == '#' ? 1 : -1;
    rest = s.substr(i);
    return pc;
}
}  // namespace

const std::vector<std::string>& scale_names() {
    static const std::vector<std::string> names = [] { std::vector<std::string> n; for (auto& s : SCALES) n.push_back(s.name); return n; }();
    return names;
}

int parse_pitch(const std::string& text) {
    const std::string s = trim(text);
    int p;
    if (!s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), [](char c) { return std::isdigit((unsigned char)c); })) p = std::stoi(s);
    else {
        std::string rest;
        const int pc = letter(s, "pitch", rest);
        const bool neg = !rest.empty() && rest[0] == '-';
        const std::string digits = rest.substr(neg ? 1 : 0);
        if (digits.empty() || digits.size() > 2 || !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit((unsigned char)c); }))
            throw Error("pitch: expected a MIDI number or a note with its octave such as C4 or F#2, got '" + s + "'");
        p = 12 * ((neg ? -1 : 1) * std::stoi(digits) + 1) + pc;
    }
    if (p < 0 || p >= N_PITCHES) throw Error("pitch '" + s + "' is outside MIDI's 0-127");
    return p;
}

std::array<bool, 12> parse_scale(const std::string& spec) {
    const std::string s = trim(spec);
    if (s.empty()) throw Error("empty scale: give a tonic and a mode, such as 'D dorian'");
    const size_t sp = s.find_first_of(" \t");
    const std::string tonic = s.substr(0, sp), words = sp == std::string::npos ? "" : trim(s.substr(sp));
    std::string rest;
    const int pc = letter(tonic, "scale", rest);
    if (!rest.empty()) throw Error("scale: the tonic is a note name without an octave (such as D or F#), got '" + tonic + "'");
    std::string mode;                                   // lower case, '-' as a space, single spaces
    for (char c : words) {
        c = c == '-' || c == '\t' ? ' ' : (char)std::tolower((unsigned char)c);
        if (c != ' ' || (!mode.empty() && mode.back() != ' ')) mode += c;
    }
    if (!mode.empty() && mode.back() == ' ') mode.pop_back();
    if (mode.empty()) mode = "major";
    static const std::map<std::string, std::string> aliases = {{"ionian", "major"}, {"aeolian", "minor"}, {"natural minor", "minor"},
                                                               {"major pentatonic", "pentatonic"}, {"wholetone", "whole tone"}};
    if (aliases.count(mode)) mode = aliases.at(mode);
    for (auto& sc : SCALES)
        if (mode == sc.name) {
            std::array<bool, 12> m{};
            for (int k = 0; k < sc.n; ++k) m[((sc.steps[k] + pc) % 12 + 12) % 12] = true;
            return m;
        }
    std::string all;
    for (auto& sc : SCALES) all += (all.empty() ? "" : ", ") + std::string(sc.name);
    throw Error("unknown scale '" + words + "': use one of " + all);
}

std::vector<uint8_t> parse_ranges(const std::string& spec, bool multi) {
    std::vector<uint8_t> ok((size_t)N_PROGRAMS * N_PITCHES, 1);
    static const std::regex part_re(R"((?:([^:]+):)?\s*(\d{1,3}|[A-Ga-g][#b]*-?\d)\s*(?:-|\.\.|to)\s*(\d{1,3}|[A-Ga-g][#b]*-?\d))");
    std::istringstream in(spec);
    std::string raw;
    while (std::getline(in, raw, ',')) {
        const std::string part = trim(raw);
        if (part.empty()) continue;
        std::smatch m;
        if (!std::regex_match(part, m, part_re))
            throw Error("pitch range '" + part + "': expected low-high (48-84, C3-C6) or instrument:low-high (bass:E1-G3)");
        const int lo = parse_pitch(m[2]), hi = parse_pitch(m[3]);
        if (lo > hi) throw Error("pitch range '" + part + "': the low pitch is above the high one");
        std::array<bool, N_PROGRAMS> rows;
        rows.fill(true);
        if (m[1].matched) {
            if (!multi) throw Error("pitch range '" + part + "': instruments are named only for multi-track models; give low-high");
            std::vector<std::vector<int>> groups;
            bool drums;
            parse_instrument_groups(m[1], groups, drums);
            if (drums || groups.empty()) throw Error("pitch range '" + part + "': drums have keys, not a range; name a pitched instrument");
            rows.fill(false);
            for (auto& g : groups) for (int p : g) rows[p] = true;
        }
        for (int q = 0; q < N_PROGRAMS; ++q)
            if (rows[q]) for (int p = 0; p < N_PITCHES; ++p) ok[(size_t)q * N_PITCHES + p] = p >= lo && p <= hi;
    }
    return ok;
}

Controls Controls::parse(const std::string& scale, const std::string& pitch_range, int polyphony, int density, bool multi) {
    if (polyphony < 0 || density < 0)
        throw Error("polyphony and density caps are counts (0 = none), got " + std::to_string(polyphony) + " and " + std::to_string(density));
    Controls c;
    c.scale = scale; c.pitch_range = pitch_range; c.polyphony = polyphony; c.density = density;
    std::array<bool, 12> pcs;
    pcs.fill(true);
    if (!scale.empty()) pcs = parse_scale(scale);
    if (!pitch_range.empty()) c.pitch_ok = parse_ranges(pitch_range, multi);
    for (size_t i = 0; i < c.pitch_ok.size(); ++i) c.pitch_ok[i] = c.pitch_ok[i] && pcs[i % N_PITCHES % 12];
    return c;
}

void Controls::set(int tonic, int mode, int low, int high, int polyphony_cap, int density_cap) {
    const bool scaled = mode >= 0 && mode < N_SCALES;
    tonic = ((tonic % 12) + 12) % 12;
    bool pcs[12];
    for (int k = 0; k < 12; ++k) pcs[k] = !scaled;
    if (scaled) for (int k = 0; k < SCALES[mode].n; ++k) pcs[(SCALES[mode].steps[k] + tonic) % 12] = true;
    low = std::max(0, std::min(low, N_PITCHES - 1)); high = std::max(low, std::min(high, N_PITCHES - 1));
    for (size_t i = 0; i < pitch_ok.size(); ++i) {
        const int p = (int)(i % N_PITCHES);
        pitch_ok[i] = p >= low && p <= high && pcs[p % 12];
    }
    polyphony = std::max(0, polyphony_cap); density = std::max(0, density_cap);
    this->tonic = tonic; this->mode = scaled ? mode : -1; this->low = low; this->high = high;
    scale.clear(); pitch_range.clear();                 // no words: describe() says the numbers (clear() keeps the buffers)
}

bool Controls::any() const {
    return polyphony > 0 || density > 0 || std::any_of(pitch_ok.begin(), pitch_ok.end(), [](uint8_t x) { return x == 0; });
}

std::string Controls::describe() const {
    std::string s;
    auto add = [&](const std::string& x) { s += (s.empty() ? "" : ", ") + x; };
    static const char* names[12] = {"C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"};
    if (!scale.empty()) add("scale '" + scale + "'");
    else if (mode >= 0 && mode < N_SCALES) add("scale '" + std::string(names[tonic]) + " " + SCALES[mode].name + "'");
    if (!pitch_range.empty()) add("range '" + pitch_range + "'");
    else if (low > 0 || high < N_PITCHES - 1) add("range '" + std::to_string(low) + "-" + std::to_string(high) + "'");
    if (polyphony) add("at most " + std::to_string(polyphony) + " sounding");
    if (density) add("at most " + std::to_string(density) + " onsets a beat");
    return "Controls(" + (s.empty() ? std::string("none") : s) + ")";
}

std::vector<int> complete(const Grammar& g, const std::vector<int>& ids) {
    auto eos = std::find(ids.begin(), ids.end(), EOS);
    if (eos != ids.end()) return std::vector<int>(ids.begin(), eos + 1);
    size_t last = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
        int t = ids[i];
        if (g.performance() ? (t >= NOTE_ON && t < TIME_SHIFT) : (g.vocab().is_duration(t) || (g.vocab().multi && t >= g.vocab().drum() && t < g.vocab().ahead()))) last = i;   // (controls after the last note go)
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
