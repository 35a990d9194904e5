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
    const std::vector<uint8_t> bytes = detail::read_file(path, "MIDI file");
    return parse_midi(bytes.data(), bytes.size(), path);
}

GivenPart given_part(const MidiFile& m, const Vocab& v, bool include_drums) {
    if (!v.beat) throw Error("a given part sits on the beat grid: the vocabulary needs time_unit beat");
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
    if (rows.empty()) throw Error("no notes to give");
    double first = INFINITY, last = -INFINITY;
    for (const Row& r : rows) { first = std::min(first, std::nearbyint(r.on)); last = std::max(last, std::nearbyint(r.on)); }
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
    GivenPart g;
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
    auto bin = [&](double bpm) {
        int best = 0;
        for (int i = 1; i < N_TEMPOS; ++i) if (std::fabs(std::log(bpm) - std::log((double)v.tempos[i])) < std::fabs(std::log(bpm) - std::log((double)v.tempos[best]))) best = i;
        return best;
    };
    std::vector<std::pair<int64_t, int>> ch;
    size_t at0 = 0;
    for (size_t i = 0; i < tp.size(); ++i) if (std::llround(tp[i].first * k) - origin <= 0) at0 = i;
    ch.push_back({0, bin(tp[at0].second)});
    for (size_t i = at0 + 1; i < tp.size(); ++i) {
        const int64_t t = std::llround(tp[i].first * k) - origin;
        if (t > (int64_t)last - origin) break;
        if (t == ch.back().first) ch.back().second = bin(tp[i].second); else ch.push_back({t, bin(tp[i].second)});
    }
    for (size_t i = 0; i < ch.size(); ++i)
        if (i == 0 || ch[i].second != g.grid.tempo_bins.back()) { g.grid.tempo_ticks.push_back(ch[i].first); g.grid.tempo_bins.push_back(ch[i].second); }
    // the notes: one per (onset, instrument, pitch), ends as the quantizer leaves them
    struct Kept { int64_t end; int velocity, program; };
    std::map<std::tuple<int64_t, int, int>, Kept> seen;            // (onset, instrument, pitch) -> the longest one's end
    for (const Row& r : rows) {
        const int64_t on = (int64_t)std::nearbyint(r.on) - origin, end = (int64_t)std::nearbyint(r.end) - origin;
        auto key = std::make_tuple(on, r.inst, r.pitch);
        auto it = seen.find(key);
        if (it == seen.end()) seen[key] = {end, r.velocity, r.program};
        else if (end > it->second.end) it->second = {end, r.velocity, r.program};
    }
    std::map<std::pair<int, int>, int64_t> next_on;                // a pitch of an instrument cannot overlap itself: it ends where it starts again
    for (auto it = seen.rbegin(); it != seen.rend(); ++it) {
        const auto [on, inst, pitch] = it->first;
        int64_t end = it->second.end;
        auto nx = next_on.find({inst, pitch});
        if (nx != next_on.end()) end = std::min(end, nx->second);
        next_on[{inst, pitch}] = on;
        g.notes.push_back({on, pitch, inst < 0});
        g.sounding.push_back({on, std::max(end, on + 1), pitch, it->second.velocity, inst < 0 ? 0 : it->second.program, inst < 0});
        g.last_end = std::max(g.last_end, end);
    }
    std::reverse(g.notes.begin(), g.notes.end());
    std::reverse(g.sounding.begin(), g.sounding.end());
    return g;
}

}  // namespace muse
