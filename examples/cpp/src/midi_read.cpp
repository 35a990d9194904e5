// Reading a standard MIDI file, and a given part on a vocabulary's beat grid as the Python tokenizer places it
// (nomad_muse_trainer.midi.Midi, MuseTokenizer.piece): what muse_demo --accompany hears.
#include "detail.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <map>

namespace muse {

namespace {
struct Reader {                                     // bounds-checked big-endian reads over one chunk
    const uint8_t* p; size_t n, i = 0; const std::string& where;
    [[noreturn]] void fail(const std::string& why) const { throw Error(where + ": not a MIDI file this library reads (" + why + ")"); }
    uint8_t byte() { if (i >= n) fail("a track ends inside an event"); return p[i++]; }
    uint32_t be(int k) { uint32_t v = 0; for (int j = 0; j < k; ++j) v = v << 8 | byte(); return v; }
    uint32_t var() {                                // a variable-length quantity: at most 4 bytes
        uint32_t v = 0;
        for (int j = 0; j < 4; ++j) { const uint8_t b = byte(); v = v << 7 | (b & 0x7F); if (!(b & 0x80)) return v; }
        fail("a length of more than 4 bytes");
    }
    void skip(size_t k) { if (k > n - i) fail("an event runs past its track"); i += k; }
};
}  // namespace

MidiFile parse_midi(const uint8_t* data, size_t size, const std::string& where) {
    if (size > limits::MIDI_BYTES) throw Error(where + ": " + std::to_string(size) + " bytes, more than the " + std::to_string(limits::MIDI_BYTES) + " a MIDI file may have here");
    Reader file{data, size, 0, where};
    if (size < 14 || std::string((const char*)data, 4) != "MThd") file.fail("no MThd header");
    file.skip(4);
    const uint32_t hlen = file.be(4);
    if (hlen < 6) file.fail("a header shorter than 6 bytes");
    const size_t header_end = 8 + (size_t)hlen;
    const uint32_t format = file.be(2), ntracks = file.be(2), division = file.be(2);
    if (format > 2) file.fail("format " + std::to_string(format));
    if (division & 0x8000) file.fail("SMPTE time (frames a second): convert it with muse_prep, which reads it");
    if (division == 0) file.fail("0 ticks a quarter note");
    if (ntracks > limits::MIDI_TRACKS) file.fail(std::to_string(ntracks) + " tracks, more than " + std::to_string(limits::MIDI_TRACKS));
    if (header_end > size) file.fail("a header longer than the file");
    MidiFile m;
    m.tpq = (int)division;
    size_t at = header_end;
    for (uint32_t t = 0; t < ntracks && at + 8 <= size; ++t) {
        Reader c{data + at, size - at, 0, where};
        const std::string id((const char*)data + at, 4);
        c.skip(4);
        const uint32_t len = c.be(4);
        if (len > size - at - 8) file.fail("a track longer than the file");
        at += 8 + (size_t)len;
        if (id != "MTrk") continue;                 // an unknown chunk: skipped, as the standard says
        Reader r{c.p + 8, len, 0, where};
        int64_t tick = 0;
        uint8_t status = 0;
        int program[16] = {};
        std::map<int, std::deque<std::pair<int64_t, int>>> open;   // (channel, pitch) -> onsets and velocities not yet ended
        auto end_note = [&](int ch, int pitch, int64_t when) {
            auto it = open.find(ch * 128 + pitch);
            if (it == open.end() || it->second.empty()) return;
            const auto on = it->second.front();     // the earliest sounding one ends first
            it->second.pop_front();
            m.notes.push_back({on.first, when, pitch, on.second, ch, program[ch], (int)t});
        };
        while (r.i < r.n) {
            const uint32_t dt = r.var();
            tick += dt;
            if (tick > limits::MIDI_TICKS) file.fail("an event after tick " + std::to_string(limits::MIDI_TICKS));
            uint8_t b = r.byte();
            if (b < 0x80) {                         // running status: the data byte belongs to the last status
                if (status < 0x80 || status >= 0xF0) file.fail("a data byte without a status");
                --r.i;
                b = status;
            }
            if (b == 0xFF) {                        // a meta event
                const uint8_t type = r.byte();
                const uint32_t n = r.var();
                if (n > r.n - r.i) file.fail("a meta event runs past its track");
                const uint8_t* d = r.p + r.i;
                if (type == 0x51 && n >= 3) {
                    const uint32_t us = (uint32_t)d[0] << 16 | (uint32_t)d[1] << 8 | d[2];
                    if (us > 0) m.tempos.push_back({tick, 60e6 / us});
                } else if (type == 0x58 && n >= 2) m.meters.push_back({tick, d[0], d[1] < 31 ? (int64_t)1 << d[1] : 0});
                r.skip(n);
                if (type == 0x2F) break;            // the track's end
                continue;
            }
            if (b == 0xF0 || b == 0xF7) { r.skip(r.var()); continue; }   // system exclusive
            if (b >= 0xF0) file.fail("a system message inside a track");
            status = b;
            const int kind = b & 0xF0, ch = b & 0x0F;
            const uint8_t a = r.byte() & 0x7F;
            const uint8_t v = kind == 0xC0 || kind == 0xD0 ? 0 : r.byte() & 0x7F;
            if (kind == 0x90 && v > 0) {                // (struck again while it sounds: both sound, as symusic reads it)
                auto& q = open[ch * 128 + a];
                q.push_back({tick, v});
                if (m.notes.size() + q.size() > limits::MIDI_NOTES) file.fail("more than " + std::to_string(limits::MIDI_NOTES) + " notes");
            } else if (kind == 0x80 || kind == 0x90) end_note(ch, a, tick);
            else if (kind == 0xC0) program[ch] = a;
        }
        // (a note never ended is dropped, as symusic, which the Python pipeline reads files with, drops it)
    }
    std::stable_sort(m.notes.begin(), m.notes.end(), [](const MidiFile::Note& x, const MidiFile::Note& y) { return x.on != y.on ? x.on < y.on : x.pitch < y.pitch; });
    std::stable_sort(m.tempos.begin(), m.tempos.end(), [](const auto& x, const auto& y) { return x.first < y.first; });
    std::stable_sort(m.meters.begin(), m.meters.end(), [](const auto& x, const auto& y) { return x[0] < y[0]; });
    return m;
}

MidiFile read_midi(const std::string& path) {
    const std::vector<uint8_t> bytes = detail::read_file(path, "MIDI file", limits::MIDI_BYTES);
    return parse_midi(bytes.data(), bytes.size(), path);
}

BeatPiece beat_piece(const MidiFile& m, const Vocab& v, bool include_drums) {
    if (!v.beat) throw Error("a piece on the beat grid needs a time_unit: beat vocabulary");
    const int R = v.resolution;
    const double k = (double)R / m.tpq;
    struct Row { double on, end; int pitch; bool drum; int inst, velocity, program; };   // inst: a band's program (-1 drums), 0 for a single stream
    std::vector<Row> rows;
    for (const auto& n : m.notes) {
        const bool drum = n.channel == 9;
        if (drum && v.multi && (n.pitch < DRUM_LOW || n.pitch > DRUM_HIGH)) continue;   // keys a band stream drops
        if (drum && !v.multi && !include_drums) continue;
        rows.push_back({n.on * k, n.off * k, n.pitch, drum && v.multi, !v.multi ? 0 : drum ? -1 : n.program, n.velocity, n.program});
    }
    if (rows.empty()) throw Error("no notes" + std::string(v.multi || include_drums ? "" : " (drums are skipped)"));
    double first = INFINITY, last = -INFINITY;
    for (const Row& r : rows) { first = std::min(first, std::nearbyint(r.on)); last = std::max(last, std::nearbyint(r.on)); }
    if (last > (double)limits::MIDI_QUARTERS * R)
        throw Error("a note starts after " + std::to_string(limits::MIDI_QUARTERS) + " quarter notes: longer than a piece this library reads");
    // the bar lines (Midi.bars, MuseTokenizer's _file_bars): 4/4 where no (or a malformed) signature says otherwise
    std::vector<std::array<int64_t, 3>> ts;
    for (const auto& s : m.meters) ts.push_back(s[1] <= 0 || s[2] <= 0 ? std::array<int64_t, 3>{s[0], 4, 4} : s);
    if (ts.empty() || ts[0][0] > 0) ts.insert(ts.begin(), {0, 4, 4});
    std::vector<std::array<int64_t, 3>> sig;                        // of several at one tick, the last
    for (size_t i = 0; i < ts.size(); ++i) if (i + 1 == ts.size() || ts[i + 1][0] != ts[i][0]) sig.push_back(ts[i]);
    const int64_t end_tick = (int64_t)std::ceil(last * m.tpq / R) + 1;
    std::vector<int64_t> start; std::vector<int> num, den;
    for (size_t i = 0; i < sig.size(); ++i) {
        const int64_t bar = std::max<int64_t>(std::llround(sig[i][1] * m.tpq * 4.0 / std::max<int64_t>(sig[i][2], 1)), 1);
        const int64_t stop = i + 1 < sig.size() ? sig[i + 1][0] : end_tick + 1;
        for (int64_t t = sig[i][0]; t < std::max(stop, sig[i][0] + 1); t += bar) {
            if (start.size() >= limits::MIDI_BARS) throw Error("more than " + std::to_string(limits::MIDI_BARS) + " bars");
            start.push_back(t); num.push_back((int)sig[i][1]); den.push_back((int)sig[i][2]);
        }
    }
    std::vector<int64_t> b(start.size());
    for (size_t i = 0; i < start.size(); ++i) b[i] = std::llround(start[i] * k);
    const size_t i0 = (size_t)std::max<ptrdiff_t>(std::upper_bound(b.begin(), b.end(), (int64_t)first) - b.begin() - 1, 0);
    b.erase(b.begin(), b.begin() + i0); num.erase(num.begin(), num.begin() + i0); den.erase(den.begin(), den.begin() + i0);
    auto ticks_of = [&](int n, int d) { return (int64_t)n * 4 * R / d; };
    auto index_of = [&](int n, int d) {                           // vocab.meter_index: itself, else the nearest bar length
        for (int i = 0; i < N_METERS; ++i) if (v.meters[i][0] == n && v.meters[i][1] == d) return i;
        const double want = n * 4.0 * R / std::max(d, 1);
        int best = 0;
        for (int i = 1; i < N_METERS; ++i) if (std::fabs(v.bar_ticks(i) - want) < std::fabs(v.bar_ticks(best) - want)) best = i;
        return best;
    };
    BeatPiece g;
    const int64_t origin = b[0];
    for (size_t i = 0; i < b.size(); ++i) {
        const int64_t len = i + 1 < b.size() ? b[i + 1] - b[i] : ticks_of(num[i], den[i]);
        int mi = index_of(num[i], den[i]);
        if (len != ticks_of(num[i], den[i]))                      // a partial bar: the meter of its length, where one has it
            for (int j = N_METERS - 1; j >= 0; --j) if (v.bar_ticks(j) == len) { mi = j; }
        g.grid.meters.push_back(mi);
    }
    // the stream's bar lines: each bar its meter's length; covering the last onset
    g.grid.lines.push_back(0);
    for (size_t i = 0; i + 1 < g.grid.meters.size(); ++i) g.grid.lines.push_back(g.grid.lines.back() + v.bar_ticks(g.grid.meters[i]));
    while (g.grid.lines.back() <= (int64_t)last - origin) {
        if (g.grid.lines.size() >= limits::MIDI_BARS) throw Error("more than " + std::to_string(limits::MIDI_BARS) + " bars");
        g.grid.lines.push_back(g.grid.lines.back() + v.bar_ticks(g.grid.meters.back()));
        g.grid.meters.push_back(g.grid.meters.back());
    }
    const size_t nb = (size_t)(std::upper_bound(g.grid.lines.begin(), g.grid.lines.end(), (int64_t)last - origin) - g.grid.lines.begin());
    g.grid.lines.resize(nb); g.grid.meters.resize(nb);
    // the tempi (MuseTokenizer's _file_tempos): the one in effect at the first bar line, then each change of TEMPO
    std::vector<std::pair<int64_t, double>> tp = m.tempos;
    if (tp.empty() || tp[0].first > 0) tp.insert(tp.begin(), {0, 120.0});
    std::vector<std::pair<int64_t, int>> ch;
    size_t at0 = 0;
    for (size_t i = 0; i < tp.size(); ++i) if (std::llround(tp[i].first * k) - origin <= 0) at0 = i;
    ch.push_back({0, v.tempo_bin(tp[at0].second)});
    for (size_t i = at0 + 1; i < tp.size(); ++i) {
        const int64_t t = std::llround(tp[i].first * k) - origin;
        if (t > (int64_t)last - origin) break;
        if (t == ch.back().first) ch.back().second = v.tempo_bin(tp[i].second); else ch.push_back({t, v.tempo_bin(tp[i].second)});
    }
    for (size_t i = 0; i < ch.size(); ++i)
        if (i == 0 || ch[i].second != g.grid.tempo_bins.back()) { g.grid.tempo_ticks.push_back(ch[i].first); g.grid.tempo_bins.push_back(ch[i].second); }
    // the notes as the quantizer leaves them (_quantize_many): by onset, instrument, pitch, the longest (then earliest)
    // first; one per (onset, instrument, pitch); a pitch of an instrument ends where it starts again
    struct Q { int64_t on; int inst, pitch; double dur, start; int64_t end; int velocity; };
    std::vector<Q> q;
    q.reserve(rows.size());
    for (const Row& r : rows) {
        const double on = r.on - origin, end = r.end - origin;
        q.push_back({(int64_t)std::nearbyint(on), r.inst, r.pitch, end - on, on, (int64_t)std::nearbyint(end), r.velocity});
    }
    std::stable_sort(q.begin(), q.end(), [](const Q& a, const Q& b) {
        if (a.on != b.on) return a.on < b.on;
        if (a.inst != b.inst) return a.inst < b.inst;
        if (a.pitch != b.pitch) return a.pitch < b.pitch;
        if (a.dur != b.dur) return a.dur > b.dur;
        return a.start < b.start;
    });
    for (size_t i = 0; i < q.size(); ++i)
        if (i == 0 || q[i].on != q[i - 1].on || q[i].pitch != q[i - 1].pitch || q[i].inst != q[i - 1].inst)
            g.rows.push_back({q[i].on, q[i].end, q[i].dur, INFINITY, q[i].pitch, v.velocity_bin(q[i].velocity), q[i].velocity, q[i].inst});
    std::map<std::pair<int, int>, int64_t> next_on;                // (instrument, pitch) -> its next onset
    for (size_t i = g.rows.size(); i-- > 0;) {
        BeatPiece::Row& r = g.rows[i];
        auto nx = next_on.find({r.inst, r.pitch});
        if (nx != next_on.end()) { r.gap = (double)(nx->second - r.on); r.dur = std::min(r.dur, r.gap); r.end = std::min(r.end, nx->second); }
        next_on[{r.inst, r.pitch}] = r.on;
    }
    return g;
}

GivenPart given_part(const MidiFile& m, const Vocab& v, bool include_drums) {
    const BeatPiece p = beat_piece(m, v, include_drums);
    GivenPart g;
    g.grid = p.grid;
    for (const BeatPiece::Row& r : p.rows) {
        g.notes.push_back({r.on, r.pitch, r.inst < 0});
        g.sounding.push_back({r.on, std::max(r.end, r.on + 1), r.pitch, r.velocity, std::max(r.inst, 0), r.inst < 0});
        g.last_end = std::max(g.last_end, r.end);
    }
    return g;
}

// MuseTokenizer's _encode_beat (with _note_columns, _stream and _with_headers): the events of a tick in order (BAR,
// METER, TEMPO, the controls by ticks ahead and id, the notes in the quantizer's order), TIME_SHIFTs between ticks.
std::vector<int> encode_beat(const BeatPiece& p, const Vocab& v, const std::vector<char>* mine, const std::vector<ControlEvent>* controls, int64_t span_end) {
    if (!v.beat) throw Error("encode_beat needs a time_unit: beat vocabulary");
    if (mine && mine->size() != p.rows.size()) throw Error("encode_beat: `mine` needs one flag a note");
    if (controls && !controls->empty() && !v.conditioning) throw Error("controls need a vocabulary with conditioning");
    const int64_t e = span_end >= 0 ? span_end : INT64_MAX;
    struct Ev { int64_t t; int kind; int64_t rank; int tok0, prog, vel, note, dur; };
    std::vector<Ev> ev;
    int last_prog = -2, last_vb = -1;
    std::vector<bool> used(N_PROGRAMS, false);
    bool drums = false;
    int64_t k = 0;
    for (size_t i = 0; i < p.rows.size(); ++i) {
        if (mine && !(*mine)[i]) continue;
        const BeatPiece::Row& r = p.rows[i];
        const bool drum = r.inst < 0;
        Ev x{r.on, 4, k++, -1, -1, -1, -1, -1};
        if (v.multi && !drum && r.inst != last_prog) { x.prog = v.program() + r.inst; last_prog = r.inst; }
        if (r.vbin != last_vb) { x.vel = v.velocity() + r.vbin - 1; last_vb = r.vbin; }
        if (drum) { x.note = v.drum() + r.pitch - DRUM_LOW; drums = true; }
        else {
            x.note = NOTE_ON + r.pitch;
            double dur = r.dur, gap = r.gap;
            if (span_end >= 0) { dur = std::min(dur, (double)(e - r.on)); gap = std::min(gap, (double)(e - r.on)); }   // the model's notes end by the span's end
            x.dur = v.duration() + v.duration_bin(dur, gap) - 1;
            if (v.multi) used[r.inst] = true;
        }
        ev.push_back(x);
    }
    if (k == 0) throw Error("no notes of the model's to encode");
    const BeatGrid& g = p.grid;
    for (size_t i = 0; i < g.lines.size() && g.lines[i] < e; ++i) {
        ev.push_back({g.lines[i], 0, 0, v.bar(), -1, -1, -1, -1});
        if (i == 0 || g.meters[i] != g.meters[i - 1]) ev.push_back({g.lines[i], 1, 0, v.meter() + g.meters[i], -1, -1, -1, -1});
    }
    for (size_t i = 0; i < g.tempo_ticks.size() && g.tempo_ticks[i] < e; ++i) ev.push_back({g.tempo_ticks[i], 2, 0, v.tempo() + g.tempo_bins[i], -1, -1, -1, -1});
    if (controls)
        for (size_t i = 0; i < controls->size(); ++i) {
            const ControlEvent& c = (*controls)[i];
            const bool opens = i == 0 || (*controls)[i - 1].at != c.at || (*controls)[i - 1].ahead != c.ahead;
            ev.push_back({c.at, 3, (int64_t)c.ahead * 4096 + c.id, opens ? v.ahead() + c.ahead : -1, -1, -1, c.id, -1});
        }
    std::stable_sort(ev.begin(), ev.end(), [](const Ev& a, const Ev& b) {
        return a.t != b.t ? a.t < b.t : a.kind != b.kind ? a.kind < b.kind : a.rank < b.rank;
    });
    std::vector<int> out{BOS};
    if (v.header) {
        for (int q = 0; q < N_PROGRAMS; ++q) if (used[q]) out.push_back(v.program() + q);
        if (drums) out.push_back(v.header_drums());
        out.push_back(v.header_end());
    }
    int64_t prev = 0;
    for (const Ev& x : ev) {
        int64_t gap = x.kind == 0 ? 0 : x.t - prev;                   // BAR moves to its bar line itself
        prev = x.t;
        for (; gap >= v.n_shifts; gap -= v.n_shifts) out.push_back(TIME_SHIFT + v.n_shifts - 1);
        if (gap > 0) out.push_back(TIME_SHIFT + (int)gap - 1);
        for (int t : {x.tok0, x.prog, x.vel, x.note, x.dur}) if (t >= 0) out.push_back(t);
    }
    out.push_back(EOS);
    return out;
}

}  // namespace muse
