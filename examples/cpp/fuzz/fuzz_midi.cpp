// A MIDI file as muse_demo --accompany and --infill read it (parse_midi, then given_part and beat_piece on the beat grid
// of a band and of a single stream with conditioning, the controls of its notes, and encode_beat's tokens, which the
// grammar must accept): any bytes.
#include "fuzz.hpp"

namespace {
muse::Vocab conditioning(bool multi) {
    muse::Vocab v;
    v.beat = true; v.resolution = 12; v.multi = multi; v.header = multi; v.conditioning = true; v.max_ahead = 48;
    return v;
}
const muse::Vocab SINGLE = conditioning(false), BAND = conditioning(true);
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const muse::MidiFile m = muse::parse_midi(data, size, "fuzz");
        for (const auto& n : m.notes) if (n.off < n.on || n.pitch < 0 || n.pitch > 127 || n.channel < 0 || n.channel > 15) __builtin_trap();
        for (const muse::Vocab* v : {&SINGLE, &BAND}) {
            try {
                const muse::GivenPart g = muse::given_part(m, *v);
                g.grid.check();                                                // a grid it gives is one
                const auto c = muse::controls_of(g.notes, *v, 24);
                for (const auto& e : c) if (e.id < v->ctrl() || e.id >= v->size()) __builtin_trap();
                if (!g.notes.empty()) (void)g.grid.end_line(g.last_end, *v);
                const muse::BeatPiece p = muse::beat_piece(m, *v);
                if (p.rows.size() <= 2000) {                                   // (checking a long stream is slow under ASan, not a finding)
                    const auto ids = muse::encode_beat(p, *v);
                    if (muse::Grammar(*v).check(ids) != -1) __builtin_trap();   // what it writes is a legal stream
                }
            } catch (const muse::Error&) {}
        }
    } catch (const muse::Error&) {}
    return 0;
}
