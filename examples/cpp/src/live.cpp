// NoteStream and encode_notes: tokens to live note events, and a played phrase to tokens (see muse.hpp).
#include "muse/muse.hpp"

#include <algorithm>
#include <climits>
#include <cmath>

namespace muse {

NoteStream::NoteStream(const Vocab& v) : v_(v) {
    hit_ = v.beat ? std::max(1, v.resolution / 4) : std::max(1L, std::lround(100.0 / v.time_shift_ms));   // drum hits: a 16th (beat), 100 ms, as decode_notes
    reset();
}

void NoteStream::reset() { n_ = 0; start_piece(); }

void NoteStream::start_piece() {                    // what <BOS> resets: time, program, velocity (sounding notes go on)
    t_ = 0; prog_ = 0; pending_ = -1;
    bar_ = 0; bars_ = 0; bar_len_ = 4 * std::max(v_.resolution, 1); meter_ = -1; tempo_ = -1;
    vel_ = v_.velocity_value(v_.default_velocity_bin());
}

NoteEvent NoteStream::off_of(const Voice& v, int64_t at) const {
    const bool drum = v.key < N_PITCHES;
    return {at, false, v.key % N_PITCHES, 0, drum ? 0 : (v_.multi ? v.key / N_PITCHES - 1 : 0), drum};
}

// A note on voice `key` from now to `end`: an off first if that voice still sounds (one note per voice), then the on.
int NoteStream::start_note(int64_t end, int pitch, int program, bool drum, NoteEvent* out) {
    const int key = drum ? pitch : (v_.multi ? (program + 1) * N_PITCHES + pitch : N_PITCHES + pitch);
    int k = 0;
    for (int i = 0; i < n_; ++i)
        if (voices_[i].key == key) {
            out[k++] = {t_, false, pitch, 0, program, drum};
            voices_[i] = voices_[--n_];
            break;
        }
    if (n_ == MAX_SOUNDING) {                        // more than 256 notes at once: the earliest-ending one stops now
        int e = 0;
        for (int i = 1; i < n_; ++i) if (voices_[i].end < voices_[e].end) e = i;
        voices_[e] = voices_[--n_];
    }
    voices_[n_++] = {std::max(end, t_ + 1), t_, key};
    out[k++] = {t_, true, pitch, vel_, program, drum};
    return k;
}

int NoteStream::push(int tok, NoteEvent* out) {
    if (tok < 0 || tok >= v_.size()) throw Error("token id " + std::to_string(tok) + " is outside 0-" + std::to_string(v_.size() - 1));
    const int VEL = v_.velocity(), DUR = v_.duration();
    if (tok == BOS) { start_piece(); return 0; }
    if (v_.is_control(tok)) return 0;               // a given note (conditioning): the player's or the clip's, not the model's to play
    if (v_.is_shift(tok)) { t_ += tok - TIME_SHIFT + 1; pending_ = -1; return 0; }
    if (v_.beat && tok == v_.bar()) {                // decode_beat's BAR: the next bar line (the first: here)
        bar_ = bars_ == 0 ? t_ : std::max(bar_ + bar_len_, t_); t_ = bar_; ++bars_; pending_ = -1; return 0;
    }
    if (v_.is_meter(tok)) { meter_ = tok - v_.meter(); bar_len_ = v_.bar_ticks(meter_); return 0; }
    if (v_.is_tempo(tok)) { tempo_ = tok - v_.tempo(); return 0; }
    if (tok >= VEL && tok < DUR) { vel_ = v_.velocity_value(tok - VEL + 1); return 0; }
    if (v_.multi && tok >= v_.program() && tok < v_.drum()) { prog_ = tok - v_.program(); return 0; }
    if (v_.multi && tok >= v_.drum()) return start_note(t_ + hit_, DRUM_LOW + tok - v_.drum(), 0, true, out);
    if (tok >= NOTE_ON && tok < NOTE_OFF) {
        if (!v_.performance) { pending_ = tok - NOTE_ON; return 0; }
        return start_note(INT64_MAX, tok - NOTE_ON, prog_, false, out);     // open until its NOTE_OFF
    }
    if (tok >= NOTE_OFF && tok < TIME_SHIFT && v_.performance) {
        const int key = N_PITCHES + tok - NOTE_OFF;
        for (int i = 0; i < n_; ++i) if (voices_[i].key == key && voices_[i].end == INT64_MAX) { voices_[i].end = std::max(t_, voices_[i].start + 1); break; }
        return 0;
    }
    if (v_.is_duration(tok) && pending_ >= 0) {
        const int p = pending_; pending_ = -1;
        return start_note(t_ + v_.duration_steps[tok - DUR], p, prog_, false, out);
    }
    return 0;                                        // <EOS>, <PAD>, a DURATION without its NOTE_ON
}

int NoteStream::pop_offs(int64_t until_step, NoteEvent* out, int cap) {
    int k = 0;
    while (k < cap) {
        int e = -1;
        for (int i = 0; i < n_; ++i) if (voices_[i].end <= until_step && (e < 0 || voices_[i].end < voices_[e].end)) e = i;
        if (e < 0) break;
        out[k++] = off_of(voices_[e], voices_[e].end);
        voices_[e] = voices_[--n_];
    }
    return k;
}

int NoteStream::all_off(NoteEvent* out, int cap) {
    int k = 0;
    while (n_ > 0 && k < cap) out[k++] = off_of(voices_[--n_], t_);
    return k;
}

void encode_notes(PlayedNote* notes, size_t n, const Vocab& v, std::vector<int>& out, int meter, int tempo) {
    if (v.performance) throw Error("encode_notes needs a duration-mode vocabulary");
    out.clear();
    out.push_back(BOS);
    if (v.header) { out.push_back(v.program()); out.push_back(v.header_end()); }   // a band of one: program 0
    // by onset step, pitch, longest first, earliest first (the Python tokenizer's order); one note per (onset, pitch)
    auto on = [](const PlayedNote& a) { return std::nearbyint(a.start); };
    std::sort(notes, notes + n, [&](const PlayedNote& a, const PlayedNote& b) {
        if (on(a) != on(b)) return on(a) < on(b);
        if (a.pitch != b.pitch) return a.pitch < b.pitch;
        if (a.end - a.start != b.end - b.start) return a.end - a.start > b.end - b.start;
        return a.start < b.start;
    });
    size_t m = 0;
    for (size_t i = 0; i < n; ++i)
        if (m == 0 || on(notes[i]) != on(notes[m - 1]) || notes[i].pitch != notes[m - 1].pitch) notes[m++] = notes[i];
    const int S = v.n_shifts;
    if (v.beat) {                                     // bars of `meter` from tick 0: the stream opens at the first note's bar
        if (meter < 0) meter = 3;                     // 4/4
        if (tempo < 0) tempo = 19;                    // 120 bpm
        if (meter >= N_METERS || tempo >= N_TEMPOS) throw Error("encode_notes: no such METER or TEMPO");
    }
    const int64_t bar_len = v.beat ? v.bar_ticks(meter) : 0;
    const double first = m ? on(notes[0]) : 0;
    const double base = v.beat ? std::floor(first / bar_len) * bar_len : first;
    if (v.beat && m) { out.push_back(v.bar()); out.push_back(v.meter() + meter); out.push_back(v.tempo() + tempo); }
    int64_t prev_on = 0, bar = 0;
    int prev_vb = -1;
    for (size_t i = 0; i < m; ++i) {
        const PlayedNote& a = notes[i];
        const int64_t t = (int64_t)(on(a) - base);
        double gap = INFINITY;                        // steps until this pitch starts again
        for (size_t j = i + 1; j < m; ++j) if (notes[j].pitch == a.pitch) { gap = on(notes[j]) - on(a); break; }
        const double dur = std::min(a.end - a.start, gap);
        const int b = v.duration_bin(dur, gap);
        if (v.beat) for (; t >= bar + bar_len; bar += bar_len) { out.push_back(v.bar()); prev_on = bar + bar_len; }
        int64_t shift = t - prev_on;
        for (; shift >= S; shift -= S) out.push_back(TIME_SHIFT + S - 1);
        if (shift > 0) out.push_back(TIME_SHIFT + (int)shift - 1);
        prev_on = t;
        const int vb = v.velocity_bin(a.velocity);
        if (v.multi && i == 0) out.push_back(v.program());      // program 0
        if (vb != prev_vb) out.push_back(v.velocity() + vb - 1);
        prev_vb = vb;
        out.push_back(NOTE_ON + a.pitch);
        out.push_back(v.duration() + b - 1);
    }
}

}  // namespace muse
