// A plugin's inputs, as any host may give them, through muse::Player (the core every format shares: VST3, CLAP, LV2, the
// JACK app): the parameters each block (any floats, NaN and infinities included; any mode, instruments, controls), the
// transport (any tempo, position, time signature, speed, or none), MIDI input of any bytes at any frame, blocks of 1 to
// 4,096 frames, reactivation. Any bytes are a sequence of those events. The player must not crash, hang or read past a
// buffer, and what it sends must be MIDI a host can take: every event inside its block, only note-ons, note-offs and
// program changes with 7-bit data, never a note-off for a key that does not sound, never a second note-on on a key.
// The model is $MUSE_FUZZ_PLAYER_MODEL (ctest and make fuzz: the fixtures' band GRU with conditioning, so band,
// accompany and continue modes are all reachable).
#include "fuzz.hpp"

#include <cmath>
#include <cstdlib>
#include <cstring>

namespace {
struct Reader {
    const uint8_t* d; size_t n, i = 0;
    bool more() const { return i < n; }
    uint8_t u8() { return i < n ? d[i++] : 0; }
    uint16_t u16() { return (uint16_t)(u8() | u8() << 8); }
    uint32_t u32() { return (uint32_t)u16() | (uint32_t)u16() << 16; }
    float f32() { const uint32_t b = u32(); float f; std::memcpy(&f, &b, 4); return f; }
    double f64() { const uint64_t b = (uint64_t)u32() | (uint64_t)u32() << 32; double x; std::memcpy(&x, &b, 8); return x; }
    double maybe() { return u8() & 1 ? f64() : NAN; }   // a transport field the host says, or not
};

struct Out : fuzz::Sounding { uint32_t block = 0; };

void midi_out(void* user, uint32_t frame, const uint8_t msg[3]) {
    Out& o = *static_cast<Out*>(user);
    if (frame >= o.block) __builtin_trap();                               // outside its block
    o.midi(msg);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const char* model = std::getenv("MUSE_FUZZ_PLAYER_MODEL");
    if (!model || !*model) { std::fprintf(stderr, "fuzz_player: set MUSE_FUZZ_PLAYER_MODEL to a model file\n"); std::abort(); }
    if (size > 1 << 16) return 0;                                         // a bounded session
    static muse::Player* player = [] {                                  // one player for every input (a model opens once), started over each time
        try { return new muse::Player(muse::open_native(model), 48000.0); }
        catch (const std::exception& e) { std::fprintf(stderr, "fuzz_player: %s\n", e.what()); std::exit(2); }   // a setup error, not a crash
    }();
    muse::Player& p = *player;
    Out out;
    {   // a fresh start: reactivated, the transport at 120 bpm in 4/4 from beat 0, the default settings
        p.activate();
        muse::HostTime t;
        t.bpm = 120; t.speed = 1; t.beat = 0; t.bar_beat = 0; t.beats_per_bar = 4; t.beat_unit = 4;
        out.block = 1;
        p.begin(muse::PlayerSettings(), midi_out, &out);
        p.position(0, t);
        p.play(0, 1);
    }
    Reader r{data, size};
    bool begun = false;
    uint32_t done = 0;
    auto finish = [&] { if (begun) p.play(done, out.block); begun = false; };
    while (r.more()) {
        const uint8_t op = r.u8();
        switch (op % 6) {
            case 0: {                                                     // a block starts: its length and any settings
                finish();
                muse::PlayerSettings s;
                s.temperature = r.f32(); s.top_p = r.f32(); s.density = r.f32(); s.listen_ms = r.f32();
                s.mode = (int)r.u32(); s.band = (int)r.u32();
                for (float& x : s.shape) x = r.f32();
                out.block = 1 + r.u16() % 4096; done = 0;
                p.begin(s, midi_out, &out);
                begun = true;
                break;
            }
            case 1: case 2: case 3: {                                    // inside a block: play to a frame, then an event there
                if (!begun) break;
                uint32_t at = r.u16() % (out.block + 1);
                if (at < done) at = done;
                p.play(done, at);
                done = at;
                if (op % 6 == 1) {
                    muse::HostTime t;
                    t.bpm = r.maybe(); t.speed = r.maybe(); t.beat = r.maybe(); t.bar = r.maybe(); t.bar_beat = r.maybe();
                    t.beats_per_bar = r.maybe(); t.beat_unit = r.maybe();
                    if (at < out.block) p.position(at, t);
                } else if (op % 6 == 2) {
                    uint8_t msg[8];
                    const uint32_t n = r.u8() % 9;
                    for (uint32_t k = 0; k < n; ++k) msg[k] = r.u8();
                    if (at < out.block) p.midi_in(at, msg, n);
                }
                break;
            }
            case 4:                                                       // the host deactivates and activates again
                finish();
                p.activate();
                out.reset();                                              // (a host silences its synth on deactivation)
                break;
            case 5: {                                                     // a plain block at the defaults, 120 bpm rolling: deep states
                finish();
                muse::PlayerSettings s;
                s.mode = r.u8() % 3; s.band = r.u8() % 8;
                out.block = 256; done = 0;
                p.begin(s, midi_out, &out);
                p.play(0, 256);
                break;
            }
        }
    }
    finish();
    return 0;
}
