// The plugin as a VST3 host drives it, through DPF's VST3 entry point compiled into this harness with the shell and the
// library (as fuzz_plugin does through CLAP): a saved state restored through IComponent::setState (DPF's VST3 state
// parser, then the shell's setState), then blocks of VST3 note events, parameter changes (normalized values) and a
// process context. An input is the state's bytes up to DPF's terminator (0xFE; no
// terminator: all of it is the state), then events of 4 bytes:
//   frame/2, 0x90-0x9F, pitch, velocity   a note-on on that channel (pitch any byte: VST3 pitches are 16-bit), velocity/127
//   frame/2, 0x80-0x8F, pitch, velocity   a note-off
//   frame/2, 0xF4, param, value           a parameter change: id `param` (any: DPF maps ids, unknown ones and its MIDI CC
//                                         parameters included), normalized `value` / 255, 0 to 1 as VST3 has them (out of
//                                         that range DPF 1.6's own MIDI CC mapping casts NaN * 127 to int, undefined
//                                         behaviour this harness found in its first seconds; fuzz_plugin sends the shell NaN
//                                         and values out of range through CLAP)
//   frame/2, 0xF5, bpm, flags             the context from the next block: `bpm` (0 says no tempo), playing (flags & 1),
//                                         beats a bar (flags >> 1; 0 says no time signature)
//   anything else                         skipped (a frame below the last one starts the next block of 512)
// After the events 48 more blocks play, then the state is saved (IComponent::getState) and loaded into a second instance,
// which plays 48. The plugin must not crash, hang or read past a buffer, and what it sends must be notes a host can take:
// inside their block, channels 0-15, pitches 0-127, velocities 0-1, a note-off only for a key that sounds, never a second
// note-on on one. The model: $MUSE_MODEL unless the state names one ($MUSE_ZOO for zoo names); ctest and make fuzz set both.
#include <travesty/audio_processor.h>
#include <travesty/bstream.h>
#include <travesty/component.h>
#include <travesty/events.h>
#include <travesty/factory.h>

#include "fuzz.hpp"
#include "vst3_objects.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

extern "C" const void* GetPluginFactory(void);       // DPF's (DistrhoPluginMain.cpp, DISTRHO_PLUGIN_TARGET_VST3)
extern "C" bool ModuleEntry(void*);

namespace {
constexpr double RATE = 48000.0;
constexpr int32_t BLOCK = 512;
constexpr size_t MAX_BLOCKS = 256, TAIL = 48;

// A stream the host owns (IBStream): reads the saved state from the input, takes what the plugin writes
struct Stream {
    v3_funknown unknown;
    v3_bstream stream;
    Stream* self = this;
    const uint8_t* d = nullptr;
    size_t n = 0, at = 0;
    std::vector<uint8_t> out;
    static Stream* of(void* s) { return *static_cast<Stream**>(s); }
    Stream() {
        unknown.query_interface = [](void* s, const v3_tuid iid, void** obj) -> v3_result {
            if (v3_tuid_match(iid, v3_funknown_iid) || v3_tuid_match(iid, v3_bstream_iid)) { *obj = s; return V3_OK; }
            *obj = nullptr; return V3_NO_INTERFACE;
        };
        unknown.ref = [](void*) -> uint32_t { return 1; };
        unknown.unref = [](void*) -> uint32_t { return 1; };
        stream.read = [](void* s, void* buf, int32_t want, int32_t* got) -> v3_result {
            Stream* b = of(s);
            const size_t k = want > 0 ? std::min<size_t>((size_t)want, b->n - b->at) : 0;
            if (k) std::memcpy(buf, b->d + b->at, k);
            b->at += k;
            if (got) *got = (int32_t)k;
            return V3_OK;
        };
        stream.write = [](void* s, void* buf, int32_t len, int32_t* put) -> v3_result {
            if (len > 0) of(s)->out.insert(of(s)->out.end(), (const uint8_t*)buf, (const uint8_t*)buf + len);
            if (put) *put = len > 0 ? len : 0;
            return V3_OK;
        };
        stream.seek = [](void*, int64_t, int32_t, int64_t* r) -> v3_result { if (r) *r = 0; return V3_NOT_IMPLEMENTED; };
        stream.tell = [](void* s, int64_t* pos) -> v3_result { if (pos) *pos = (int64_t)of(s)->at; return V3_OK; };
    }
    v3_bstream** handle() { return reinterpret_cast<v3_bstream**>(&self); }
};
static_assert(offsetof(Stream, unknown) == 0, "the vtables first");

struct Change { int32_t frame; v3_param_id id; double value; };
struct Block { std::vector<v3_event> notes; std::vector<Change> params; double bpm = 120; bool playing = true; int per_bar = 4; };

std::vector<Block> blocks_of(const uint8_t* d, size_t n) {
    std::vector<Block> out(1);
    int32_t last = 0;
    for (size_t i = 0; i + 4 <= n && out.size() <= MAX_BLOCKS; i += 4) {
        const int32_t frame = 2 * d[i];
        if (frame < last) { Block next = out.back(); next.notes.clear(); next.params.clear(); out.push_back(next); }
        last = frame;
        Block& b = out.back();
        const uint8_t kind = d[i + 1], a = d[i + 2], v = d[i + 3];
        if (kind == 0xF5) { b.bpm = a; b.playing = v & 1; b.per_bar = v >> 1; continue; }
        if (kind == 0xF4) { b.params.push_back({frame, (v3_param_id)a, v / 255.0}); continue; }
        if ((kind & 0xE0) != 0x80) continue;
        v3_event e{};
        e.sample_offset = frame;
        if ((kind & 0xF0) == 0x90) { e.type = V3_EVENT_NOTE_ON; e.note_on.channel = kind & 0x0F; e.note_on.pitch = a; e.note_on.velocity = v / 127.0f; e.note_on.note_id = -1; }
        else { e.type = V3_EVENT_NOTE_OFF; e.note_off.channel = kind & 0x0F; e.note_off.pitch = a; e.note_off.velocity = v / 127.0f; e.note_off.note_id = -1; }
        b.notes.push_back(e);
    }
    return out;
}

struct Instance {
    v3_component_cpp** comp = nullptr;
    v3_audio_processor_cpp** proc = nullptr;
    Instance() {
        static v3_plugin_factory_cpp** factory = [] {
            if (!ModuleEntry(nullptr)) { std::fprintf(stderr, "fuzz_vst3: ModuleEntry failed\n"); std::exit(2); }
            return (v3_plugin_factory_cpp**)GetPluginFactory();
        }();
        static v3_class_info ci = [] {
            v3_class_info c{}, found{};
            for (int32_t i = 0; i < (*factory)->v1.num_classes(factory); ++i)
                if ((*factory)->v1.get_class_info(factory, i, &c) == V3_OK && !std::strcmp(c.category, "Audio Module Class")) found = c;
            return found;
        }();
        if ((*factory)->v1.create_instance(factory, ci.class_id, v3_component_iid, (void**)&comp) != V3_OK || !comp) __builtin_trap();
        if ((*comp)->base.initialize(comp, nullptr) != V3_OK) __builtin_trap();
        if ((*comp)->query_interface(comp, v3_audio_processor_iid, (void**)&proc) != V3_OK || !proc) __builtin_trap();
        (*comp)->comp.activate_bus(comp, V3_AUDIO, V3_OUTPUT, 0, true);
        (*comp)->comp.activate_bus(comp, V3_EVENT, V3_INPUT, 0, true);
        (*comp)->comp.activate_bus(comp, V3_EVENT, V3_OUTPUT, 0, true);
        v3_process_setup setup = {V3_REALTIME, V3_SAMPLE_32, BLOCK, RATE};
        (*proc)->proc.setup_processing(proc, &setup);
    }
    ~Instance() { (*proc)->unref(proc); (*comp)->base.terminate(comp); (*comp)->unref(comp); }

    void play(const std::vector<Block>& blocks, size_t tail) {
        static fuzz::Sounding sounding;
        sounding.reset();
        (*comp)->comp.set_active(comp, true);
        (*proc)->proc.set_processing(proc, true);
        vst3::Output out(BLOCK);
        Block quiet = blocks.empty() ? Block() : blocks.back();   // the tail: the last block's context, no events
        quiet.notes.clear(); quiet.params.clear();
        double q = 0;
        for (size_t k = 0; k < blocks.size() + tail; ++k) {
            const Block& b = k < blocks.size() ? blocks[k] : quiet;
            vst3::EventList ins, outs;
            ins.events = b.notes;
            vst3::ParamChanges params_in, params_out;
            for (const Change& c : b.params) {                            // a queue per parameter, its points in time order
                auto it = std::find_if(params_in.queues.begin(), params_in.queues.end(), [&](const vst3::Queue* q) { return q->id == c.id; });
                if (it == params_in.queues.end()) { params_in.queues.push_back(new vst3::Queue); params_in.queues.back()->id = c.id; it = params_in.queues.end() - 1; }
                (*it)->points.push_back({c.frame, c.value});
            }
            v3_process_context ctx{};
            ctx.state = V3_PROCESS_CTX_PROJECT_TIME_VALID | (b.bpm > 0 ? V3_PROCESS_CTX_TEMPO_VALID : 0) | (b.per_bar > 0 ? V3_PROCESS_CTX_BAR_POSITION_VALID | V3_PROCESS_CTX_TIME_SIG_VALID : 0)
                        | (b.playing ? V3_PROCESS_CTX_PLAYING : 0);
            ctx.sample_rate = RATE; ctx.project_time_in_samples = (int64_t)(k * BLOCK); ctx.continuous_time_in_samples = (int64_t)(k * BLOCK);
            ctx.project_time_quarters = q; ctx.bar_position_quarters = b.per_bar > 0 ? std::floor(q / b.per_bar) * b.per_bar : 0; ctx.bpm = b.bpm;
            ctx.time_sig_numerator = b.per_bar; ctx.time_sig_denom = 4;
            v3_process_data data = out.data(ins, outs, params_in, params_out, ctx);
            (*proc)->proc.process(proc, &data);
            if (outs.outside) __builtin_trap();                                 // an event outside its block
            for (const v3_event& e : outs.events) {
                if (e.type == V3_EVENT_NOTE_ON) {
                    const auto& x = e.note_on;
                    if (x.channel < 0 || x.channel > 15 || x.pitch < 0 || x.pitch > 127 || !(x.velocity >= 0 && x.velocity <= 1)) __builtin_trap();
                    if (x.velocity > 0) sounding.note_on(x.channel, x.pitch);
                } else if (e.type == V3_EVENT_NOTE_OFF) {
                    const auto& x = e.note_off;
                    if (x.channel < 0 || x.channel > 15 || x.pitch < 0 || x.pitch > 127) __builtin_trap();
                    sounding.note_off(x.channel, x.pitch);
                }
            }
            if (b.playing && b.bpm > 0) q += BLOCK / RATE * b.bpm / 60.0;
        }
        (*proc)->proc.set_processing(proc, false);
        (*comp)->comp.set_active(comp, false);
    }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size > 1 << 16) return 0;
    const size_t state_size = fuzz::state_size(data, size);
    Stream saved;
    saved.d = data; saved.n = state_size;
    {
        Instance a;
        (*a.comp)->comp.set_state(a.comp, saved.handle());   // an error is an answer (DPF refuses a malformed state); a crash is not
        a.play(blocks_of(data + state_size, size - state_size), TAIL);
        if ((*a.comp)->comp.get_state(a.comp, saved.handle()) != V3_OK) __builtin_trap();
    }
    Instance b;
    Stream again;
    again.d = saved.out.data(); again.n = saved.out.size();
    (*b.comp)->comp.set_state(b.comp, again.handle());
    b.play({}, TAIL);
    return 0;
}
