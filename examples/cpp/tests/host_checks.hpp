// What the plugin test hosts (clap_host.cpp, vst3_host.cpp) hold the MIDI a plugin sent to, whatever the format's events:
// each message with the block it came in and its frame there.
#pragma once
#include <cmath>
#include <cstdint>
#include <iostream>
#include <map>
#include <vector>

namespace host {
inline int failed = 0;
#define CHECK(cond, what) do { const bool ok_ = (cond); std::cout << (ok_ ? "ok   " : "FAIL ") << what << std::endl; host::failed += !ok_; } while (0)

struct Midi { int64_t block, frame; int status, a, b; };
inline bool operator==(const Midi& x, const Midi& y) { return x.block == y.block && x.frame == y.frame && x.status == y.status && x.a == y.a && x.b == y.b; }

// Ons and offs balanced per channel and key (`left`: the notes still sounding at the end), only note messages and program
// changes, 7-bit data, velocities 1-127
inline bool legal(const std::vector<Midi>& m, int& left) {
    std::map<int, int> on;
    for (const Midi& e : m) {
        const int kind = e.status & 0xF0, key = (e.status & 0x0F) * 128 + e.a;
        if (e.a < 0 || e.a > 127 || e.b < 0 || e.b > 127) return false;
        if (kind == 0x90 && e.b > 0) ++on[key];
        else if (kind == 0x80 || kind == 0x90) { if (on[key] <= 0) return false; --on[key]; }
        else if (kind != 0xC0) return false;
    }
    left = 0;
    for (auto& kv : on) left += kv.second;
    return true;
}
inline int ons(const std::vector<Midi>& m) { int n = 0; for (const Midi& e : m) n += (e.status & 0xF0) == 0x90 && e.b > 0; return n; }

// The worst distance, in frames, from a note-on to its tick of the host's beat (12 ticks a quarter, 4/4 at `bpm` from beat 0)
inline double worst_off_tick(const std::vector<Midi>& m, double bpm, int64_t block, double rate) {
    const double fpt = rate * 60.0 / bpm / 12.0;
    double worst = 0;
    for (const Midi& e : m)
        if ((e.status & 0xF0) == 0x90 && e.b > 0) {
            const double tick = (e.block * block + e.frame) / fpt;
            worst = std::max(worst, std::fabs(tick - std::round(tick)) * fpt);
        }
    return worst;
}
}  // namespace host
