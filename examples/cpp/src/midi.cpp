// MIDI: tokens to notes (a port of nomad_muse_trainer.tokenizer.decode_notes) and a standard MIDI file, written atomically.
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

// nomad_muse_trainer.tokenizer.decode_beat: notes in ticks, and where the tempo and the meter change
std::vector<Note> decode_beat(const std::vector<int>& ids, const Vocab& v, std::vector<TempoChange>* tempos, std::vector<MeterChange>* meters) {
    if (!v.beat) throw Error("decode_beat needs a time_unit: beat vocabulary");
    for (int t : ids) if (t < 0 || t >= v.size()) throw Error("token id " + std::to_string(t) + " is outside 0-" + std::to_string(v.size() - 1));
    const int VELOCITY = v.velocity(), DURATION = v.duration(), R = v.resolution;
    int64_t t = 0, bar = 0, bar_len = 4 * R;
    int vel = v.velocity_value(v.default_velocity_bin()), prog = 0, bars = 0;
    std::vector<TempoChange> tc{{0, 120.0}};
    std::vector<MeterChange> mc{{0, 4, 4}};
    std::vector<Note> notes;
    for (size_t i = 0; i < ids.size(); ++i) {
        const int tok = ids[i];
        if (tok == EOS) break;
        if (v.is_shift(tok)) t += tok - TIME_SHIFT + 1;
        else if (tok >= VELOCITY && tok < DURATION) vel = v.velocity_value(tok - VELOCITY + 1);
        else if (tok == v.bar()) { bar = bars == 0 ? t : std::max(bar + bar_len, t); t = bar; ++bars; }
        else if (v.is_meter(tok)) {
            const auto& m = v.meters[tok - v.meter()];
            bar_len = v.bar_ticks(tok - v.meter());
            if (mc.back().tick == bar) mc.back() = {bar, m[0], m[1]};
            else if (mc.back().numerator != m[0] || mc.back().denominator != m[1]) mc.push_back({bar, m[0], m[1]});
        } else if (v.is_tempo(tok)) {
            const double bpm = v.tempos[tok - v.tempo()];
            if (tc.back().tick == t) tc.back().bpm = bpm; else tc.push_back({t, bpm});
        }
        else if (v.multi && tok >= v.program() && tok < v.drum()) prog = tok - v.program();
        else if (v.multi && tok >= v.drum() && tok < v.ahead()) notes.push_back({t, t + std::max(1, R / 4), tok - v.drum() + DRUM_LOW, vel, 0, true});   // a drum hit: a 16th
        else if (tok >= NOTE_ON && tok < NOTE_OFF) {          // a NOTE_ON without its DURATION lasts a beat
            bool d = i + 1 < ids.size() && v.is_duration(ids[i + 1]);
            notes.push_back({t, t + (d ? v.duration_steps[ids[i + 1] - DURATION] : R), tok - NOTE_ON, vel, prog, false});
            if (d) ++i;
        }
    }
    if (tempos) *tempos = tc;
    if (meters) *meters = mc;
    return one_per_voice(std::move(notes), v.multi);
}

std::vector<Note> decode_notes(const std::vector<int>& ids, const Vocab& v) {
    const int VELOCITY = v.velocity(), DURATION = v.duration();
    for (int t : ids) if (t < 0 || t >= v.size()) throw Error("token id " + std::to_string(t) + " is outside 0-" + std::to_string(v.size() - 1));
    if (v.beat) return decode_beat(ids, v);
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
            if (i + 1 < ids.size() && v.is_duration(ids[i + 1])) { notes.push_back({t, t + v.duration_steps[ids[i + 1] - DURATION], p, vel}); ++i; }
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

void write_midi(const std::vector<int>& ids, const std::string& path, double tempo_bpm, const Vocab& v, int program, const std::vector<Note>* with) {
    const int time_shift_ms = v.time_shift_ms;
    if (!(tempo_bpm > 0) && !(v.beat && tempo_bpm == 0)) throw Error("tempo must be positive");
    const int tpq = 480;
    const double ticks_per_step = v.beat ? double(tpq) / v.resolution : time_shift_ms / 1000.0 * tpq * tempo_bpm / 60.0;   // beat: MIDI ticks a tick
    struct Ev { int64_t tick; int order; uint8_t status, a, b; };
    std::vector<Ev> ev;
    std::vector<TempoChange> tempos{{0, tempo_bpm}};
    std::vector<MeterChange> meters{{0, 4, 4}};
    const std::vector<Note> notes = v.beat ? decode_beat(ids, v, tempo_bpm == 0 ? &tempos : nullptr, &meters) : decode_notes(ids, v);
    std::map<int, int> channel;                             // multi: program -> channel (drums: 9, MIDI channel 10)
    if (v.multi) {
        std::vector<int> progs;
        for (const Note& n : notes) if (!n.drum && !channel.count(n.program)) { channel[n.program] = 0; progs.push_back(n.program); }
        std::sort(progs.begin(), progs.end());
        int c = 0;
        for (int p : progs) { channel[p] = c; if (c < 15) c += c == 8 ? 2 : 1; }   // skip 9; beyond 15 share the last
    } else channel[program] = 0;
    auto put = [&](const Note& n, int ch) {
        int64_t on = std::llround(n.start * ticks_per_step), off = std::max(on + 1, (int64_t)std::llround(n.end * ticks_per_step));
        ev.push_back({on, 1, (uint8_t)(0x90 | ch), (uint8_t)n.pitch, (uint8_t)std::max(1, std::min(127, n.velocity))});
        ev.push_back({off, 0, (uint8_t)(0x80 | ch), (uint8_t)n.pitch, 0});   // offs before ons at the same tick
    };
    for (const Note& n : notes) put(n, n.drum ? 9 : channel[v.multi ? n.program : program]);
    std::map<int, int> pc_with;                             // the notes written beside: a channel per program, after the stream's
    if (with) {
        int c = 0;
        for (auto& kv : channel) c = std::max(c, kv.second + 1);
        for (const Note& n : *with) {
            if (n.drum) { put(n, 9); continue; }
            if (!pc_with.count(n.program)) { pc_with[n.program] = std::min(c, 15); if (c < 15) c += c == 8 ? 2 : 1; }
            put(n, pc_with[n.program]);
        }
    }
    std::stable_sort(ev.begin(), ev.end(), [](const Ev& a, const Ev& b) { return a.tick != b.tick ? a.tick < b.tick : a.order < b.order; });
    std::string trk;
    std::vector<std::pair<int64_t, std::string>> meta;      // tempo and meter changes (beat time: the piece's own, at their ticks)
    for (const TempoChange& c : tempos) {
        std::string e = "\xFF\x51\x03"; put_be(e, (uint32_t)std::llround(60e6 / c.bpm), 3);
        meta.push_back({std::llround(c.tick * ticks_per_step), e});
    }
    for (const MeterChange& c : meters) {
        int log2den = 0; while ((1 << log2den) < c.denominator) ++log2den;
        std::string e = "\xFF\x58\x04"; e.push_back((char)c.numerator); e.push_back((char)log2den); e += std::string("\x18\x08", 2);
        meta.push_back({std::llround(c.tick * ticks_per_step), e});
    }
    std::stable_sort(meta.begin(), meta.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (auto& m : meta) if (m.first == 0) { put_var(trk, 0); trk += m.second; }
    const std::string name = "nomad-muse";
    put_var(trk, 0); trk += "\xFF\x03"; put_var(trk, (uint32_t)name.size()); trk += name;
    std::map<int, int> pc;                                  // one program change per channel used
    for (auto& kv : channel) if (!pc.count(kv.second)) pc[kv.second] = kv.first;
    for (auto& kv : pc_with) if (!pc.count(kv.second)) pc[kv.second] = kv.first;
    for (auto& kv : pc) { put_var(trk, 0); trk.push_back((char)(0xC0 | kv.first)); trk.push_back((char)(kv.second & 0x7F)); }
    int64_t last = 0;
    size_t k = 0;
    while (k < meta.size() && meta[k].first == 0) ++k;
    for (const Ev& e : ev) {
        for (; k < meta.size() && meta[k].first <= e.tick; ++k) { put_var(trk, (uint32_t)(meta[k].first - last)); last = meta[k].first; trk += meta[k].second; }
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
