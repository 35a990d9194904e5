// The plugin as a host drives it, through DPF's CLAP entry point compiled into this harness with the shell
// (dpf/nomad_muse_dpf.cpp) and the library: a saved state restored (DPF's state parser, which its VST3 wrapper shares
// line for line, then the shell's setState: a model named by path or zoo name, parameters as text), then blocks of the
// host's MIDI, parameter changes and transport. An input is the state's bytes up to DPF's terminator (0xFE; no
// terminator: all of it is the state), then events of 4 bytes:
//   frame/2, status, data1, data2   MIDI at that frame (a frame below the last one starts the next block of 512)
//   frame/2, 0xF4, param, value     a parameter change: `param` modulo the parameters, `value` below 8 one of NaN, +-inf,
//                                   +-1e9, -1, 0.5, 1e30; else value - 8
//   frame/2, 0xF5, bpm, flags       the transport from the next block: `bpm` (0 says none), rolling (flags & 1), beats a
//                                   bar (flags >> 1, 0 to 127; 0 says no time signature)
// After the events 48 more blocks play (half a second), the state is saved and loaded into a second instance, which plays 48. The
// plugin must not crash, hang or read past a buffer, and what it sends must be MIDI a host can take: inside its block,
// notes and program changes with 7-bit data, a note-off only for a key that sounds, never a second note-on on one (and
// parameter values it reports, finite).
// The model: $MUSE_MODEL unless the state names one ($MUSE_ZOO for zoo names); ctest and make fuzz set both.
#include "fuzz.hpp"

#include <clap/entry.h>
#include <clap/events.h>
#include <clap/ext/params.h>
#include <clap/ext/state.h>
#include <clap/host.h>
#include <clap/plugin-factory.h>
#include <clap/plugin.h>
#include <clap/process.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" const clap_plugin_entry_t clap_entry;   // DPF's (DistrhoPluginMain.cpp, DISTRHO_PLUGIN_TARGET_CLAP)

namespace {
constexpr double RATE = 48000.0;
constexpr uint32_t BLOCK = 512;
constexpr size_t MAX_BLOCKS = 256;                  // a bounded session: 2.7 s of audio
constexpr size_t TAIL = 48;                         // blocks played after the events

const void* host_ext(const clap_host_t*, const char*) { return nullptr; }
void host_nothing(const clap_host_t*) {}
const clap_host_t HOST = {CLAP_VERSION, nullptr, "nomad-muse fuzz_plugin", "nomad-muse", "", "1.0", host_ext, host_nothing, host_nothing, host_nothing};

union Event { clap_event_header_t header; clap_event_midi_t midi; clap_event_param_value_t param; };
struct Block { std::vector<Event> events; double bpm = 120; bool rolling = true; int per_bar = 4; };

uint32_t in_size(const clap_input_events_t* l) { return (uint32_t)static_cast<const Block*>(l->ctx)->events.size(); }
const clap_event_header_t* in_get(const clap_input_events_t* l, uint32_t i) { return &static_cast<const Block*>(l->ctx)->events[i].header; }

fuzz::Sounding sounding;                            // notes the plugin holds, per channel and key
bool out_push(const clap_output_events_t*, const clap_event_header_t* e) {
    if (e->time >= BLOCK) __builtin_trap();                                  // outside its block
    if (e->space_id != CLAP_CORE_EVENT_SPACE_ID) __builtin_trap();
    if (e->type == CLAP_EVENT_PARAM_VALUE) {                                 // DPF reports a parameter (an output: late, heard, reaction)
        if (!std::isfinite(reinterpret_cast<const clap_event_param_value_t*>(e)->value)) __builtin_trap();
        return true;
    }
    if (e->type != CLAP_EVENT_MIDI) __builtin_trap();                        // else raw MIDI only
    sounding.midi(reinterpret_cast<const clap_event_midi_t*>(e)->data);
    return true;
}

struct Stream { const uint8_t* d; size_t n, at = 0; std::vector<uint8_t> out; };
int64_t read_from(const clap_istream_t* s, void* p, uint64_t n) {
    auto* b = static_cast<Stream*>(s->ctx);
    const size_t k = std::min<size_t>(n, b->n - b->at);
    if (k) std::memcpy(p, b->d + b->at, k);
    b->at += k;
    return (int64_t)k;
}
int64_t write_to(const clap_ostream_t* s, const void* p, uint64_t n) {
    auto* b = static_cast<Stream*>(s->ctx);
    b->out.insert(b->out.end(), (const uint8_t*)p, (const uint8_t*)p + n);
    return (int64_t)n;
}

const clap_plugin_factory_t* factory() {
    static const clap_plugin_factory_t* f = [] {
        if (!clap_entry.init("fuzz_plugin")) { std::fprintf(stderr, "fuzz_plugin: clap_entry.init failed\n"); std::exit(2); }
        return static_cast<const clap_plugin_factory_t*>(clap_entry.get_factory(CLAP_PLUGIN_FACTORY_ID));
    }();
    return f;
}

std::vector<Block> blocks_of(const uint8_t* d, size_t n, uint32_t n_params) {
    static const double SPECIAL[8] = {NAN, INFINITY, -INFINITY, -1e9, 1e9, -1, 0.5, 1e30};
    std::vector<Block> out(1);
    uint32_t last = 0;
    for (size_t i = 0; i + 4 <= n && out.size() <= MAX_BLOCKS; i += 4) {
        const uint32_t frame = 2u * d[i];
        if (frame < last) { Block next = out.back(); next.events.clear(); out.push_back(next); }
        last = frame;
        Block& b = out.back();
        Event e{};
        if (d[i + 1] == 0xF5) { b.bpm = d[i + 2]; b.rolling = d[i + 3] & 1; b.per_bar = d[i + 3] >> 1; continue; }
        if (d[i + 1] == 0xF4) {
            if (!n_params) continue;
            e.param = {{sizeof(clap_event_param_value_t), frame, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_PARAM_VALUE, 0},
                       d[i + 2] % n_params, nullptr, -1, -1, -1, -1, d[i + 3] < 8 ? SPECIAL[d[i + 3]] : d[i + 3] - 8.0};
        } else {
            e.midi = {{sizeof(clap_event_midi_t), frame, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_MIDI, 0}, 0, {d[i + 1], d[i + 2], d[i + 3]}};
        }
        b.events.push_back(e);
    }
    return out;
}

// Plays `blocks` (then `tail` blocks without events) from the song's start; every note off after the transport stops
void play(const clap_plugin_t* p, const std::vector<Block>& blocks, size_t tail) {
    if (!p->activate(p, RATE, 1, BLOCK) || !p->start_processing(p)) return;
    sounding.reset();
    std::vector<float> l(BLOCK), r(BLOCK);
    float* chans[2] = {l.data(), r.data()};
    clap_audio_buffer_t audio = {chans, nullptr, 2, 0, 0};
    clap_output_events_t outs = {nullptr, out_push};
    Block quiet = blocks.empty() ? Block() : blocks.back();   // the tail: the last block's transport, no events
    quiet.events.clear();
    double beat = 0;
    for (size_t k = 0; k < blocks.size() + tail; ++k) {
        const Block& b = k < blocks.size() ? blocks[k] : quiet;
        clap_input_events_t ins = {const_cast<Block*>(&b), in_size, in_get};
        clap_event_transport_t t{};
        t.header = {sizeof(t), 0, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_TRANSPORT, 0};
        // (0 beats a bar is said as no time signature: DPF 1.6's CLAP wrapper divides by tsig_num unchecked,
        // DistrhoPluginCLAP.cpp:899, a SIGFPE this harness found in its first seconds; no host says a bar of 0 beats)
        t.flags = (b.bpm > 0 ? CLAP_TRANSPORT_HAS_TEMPO | CLAP_TRANSPORT_HAS_BEATS_TIMELINE : 0) | (b.bpm > 0 && b.per_bar > 0 ? CLAP_TRANSPORT_HAS_TIME_SIGNATURE : 0)
                  | (b.rolling ? CLAP_TRANSPORT_IS_PLAYING : 0);
        t.tempo = b.bpm;
        t.song_pos_beats = (clap_beattime)std::llround(beat * CLAP_BEATTIME_FACTOR);
        t.tsig_num = (uint16_t)b.per_bar; t.tsig_denom = 4;
        t.bar_number = b.per_bar > 0 ? (int32_t)std::floor(beat / b.per_bar) : 0;
        t.bar_start = (clap_beattime)std::llround(t.bar_number * (double)b.per_bar * CLAP_BEATTIME_FACTOR);
        clap_process_t pr{};
        pr.steady_time = (int64_t)(k * BLOCK); pr.frames_count = BLOCK; pr.transport = &t;
        pr.audio_outputs = &audio; pr.audio_outputs_count = 1; pr.in_events = &ins; pr.out_events = &outs;
        p->process(p, &pr);
        if (b.rolling && b.bpm > 0) beat += BLOCK / RATE * b.bpm / 60.0;
    }
    p->stop_processing(p);
    p->deactivate(p);
}

struct Instance {
    const clap_plugin_t* p;
    const clap_plugin_state_t* state = nullptr;
    uint32_t n_params = 0;
    Instance() : p(factory()->create_plugin(factory(), &HOST, factory()->get_plugin_descriptor(factory(), 0)->id)) {
        if (!p || !p->init(p)) __builtin_trap();
        state = static_cast<const clap_plugin_state_t*>(p->get_extension(p, CLAP_EXT_STATE));
        const auto* params = static_cast<const clap_plugin_params_t*>(p->get_extension(p, CLAP_EXT_PARAMS));
        if (!state || !params) __builtin_trap();
        n_params = params->count(p);
    }
    ~Instance() { p->destroy(p); }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 1 << 16) return 0;
    const size_t state_size = fuzz::state_size(data, size);
    Stream saved{data, state_size};
    {
        Instance a;
        clap_istream_t is = {&saved, read_from};
        a.state->load(a.p, &is);                     // false is an answer (DPF refuses a malformed state); a crash is not
        play(a.p, blocks_of(data + state_size, size - state_size, a.n_params), TAIL);
        clap_ostream_t os = {&saved, write_to};
        if (!a.state->save(a.p, &os)) __builtin_trap();
    }
    Instance b;
    Stream again{saved.out.data(), saved.out.size()};
    clap_istream_t is = {&again, read_from};
    b.state->load(b.p, &is);
    play(b.p, {}, TAIL);
    return 0;
}
