// A small CLAP host, written against the CLAP headers DPF ships (not against DPF itself), that loads NomadMuse.clap the
// way a DAW does: the entry, the factory, a plugin with a host, its note ports and features, activate, process blocks
// with a transport, parameters, and state saved from one instance and loaded into another.
// Usage: clap_host PLUGIN.clap MODEL.onnx     (the plugin opens $MUSE_MODEL, which this sets)
#include <clap/entry.h>
#include <clap/events.h>
#include <clap/ext/note-ports.h>
#include <clap/ext/params.h>
#include <clap/ext/state.h>
#include <clap/host.h>
#include <clap/plugin-factory.h>
#include <clap/plugin.h>
#include <clap/process.h>

#include <dlfcn.h>

#include "host_checks.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {
using host::Midi;

constexpr double RATE = 48000.0;
constexpr uint32_t BLOCK = 512;

const void* host_ext(const clap_host_t*, const char*) { return nullptr; }
void host_nothing(const clap_host_t*) {}
const clap_host_t HOST = {CLAP_VERSION, nullptr, "nomad-muse clap_host", "nomad-muse", "", "1.0", host_ext, host_nothing, host_nothing, host_nothing};


// the events the host sends in a block (a parameter change) and those the plugin sends back
struct InEvents { std::vector<clap_event_param_value_t> params; };
uint32_t in_size(const clap_input_events_t* l) { return (uint32_t)static_cast<InEvents*>(l->ctx)->params.size(); }
const clap_event_header_t* in_get(const clap_input_events_t* l, uint32_t i) { return &static_cast<InEvents*>(l->ctx)->params[i].header; }
struct OutEvents { std::vector<Midi> midi; uint32_t block = 0, other = 0, outside = 0; };
bool out_push(const clap_output_events_t* l, const clap_event_header_t* e) {
    auto* o = static_cast<OutEvents*>(l->ctx);
    if (e->time >= BLOCK) ++o->outside;
    if (e->space_id == CLAP_CORE_EVENT_SPACE_ID && e->type == CLAP_EVENT_MIDI) {
        const auto* m = reinterpret_cast<const clap_event_midi_t*>(e);
        o->midi.push_back({o->block, e->time, m->data[0], m->data[1], m->data[2]});
    } else ++o->other;
    return true;
}

struct Buffer { std::vector<uint8_t> bytes; size_t at = 0; };
int64_t write_to(const clap_ostream_t* s, const void* p, uint64_t n) { auto* b = static_cast<Buffer*>(s->ctx); b->bytes.insert(b->bytes.end(), (const uint8_t*)p, (const uint8_t*)p + n); return (int64_t)n; }
int64_t read_from(const clap_istream_t* s, void* p, uint64_t n) {
    auto* b = static_cast<Buffer*>(s->ctx);
    const size_t k = std::min<size_t>(n, b->bytes.size() - b->at);
    std::memcpy(p, b->bytes.data() + b->at, k); b->at += k;
    return (int64_t)k;
}

struct Instance {
    const clap_plugin_t* p = nullptr;
    const clap_plugin_params_t* params = nullptr;
    const clap_plugin_state_t* state = nullptr;
    Instance(const clap_plugin_factory_t* f, const char* id) {
        p = f->create_plugin(f, &HOST, id);
        if (p && p->init(p)) {
            params = static_cast<const clap_plugin_params_t*>(p->get_extension(p, CLAP_EXT_PARAMS));
            state = static_cast<const clap_plugin_state_t*>(p->get_extension(p, CLAP_EXT_STATE));
        } else if (p) { p->destroy(p); p = nullptr; }
    }
    ~Instance() { if (p) p->destroy(p); }
    clap_id param(const char* name) const {
        for (uint32_t i = 0; params && i < params->count(p); ++i) {
            clap_param_info_t info;
            if (params->get_info(p, i, &info) && !std::strcmp(info.name, name)) return info.id;
        }
        return CLAP_INVALID_ID;
    }
    // `blocks` blocks of 4/4 at `bpm` from beat 0, the transport stopping for the last 20; `change`: parameter values sent with the first block
    std::vector<Midi> run(int blocks, double bpm, const std::map<clap_id, double>& change = {}, double* max_us = nullptr, uint32_t* outside = nullptr) {
        std::vector<Midi> out;
        if (!p->activate(p, RATE, 32, BLOCK) || !p->start_processing(p)) return out;
        std::vector<float> l(BLOCK), r(BLOCK);
        float* chans[2] = {l.data(), r.data()};
        clap_audio_buffer_t audio = {chans, nullptr, 2, 0, 0};
        OutEvents oe;
        clap_output_events_t outs = {&oe, out_push};
        for (int b = 0; b < blocks + 20; ++b) {
            InEvents ie;
            if (b == 0) for (auto& kv : change) ie.params.push_back({{sizeof(clap_event_param_value_t), 0, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_PARAM_VALUE, 0}, kv.first, nullptr, -1, -1, -1, -1, kv.second});
            clap_input_events_t ins = {&ie, in_size, in_get};
            const bool playing = b < blocks;
            const double beat = b * BLOCK / RATE * bpm / 60.0;
            clap_event_transport_t t{};
            t.header = {sizeof(t), 0, CLAP_CORE_EVENT_SPACE_ID, CLAP_EVENT_TRANSPORT, 0};
            t.flags = CLAP_TRANSPORT_HAS_TEMPO | CLAP_TRANSPORT_HAS_BEATS_TIMELINE | CLAP_TRANSPORT_HAS_SECONDS_TIMELINE | CLAP_TRANSPORT_HAS_TIME_SIGNATURE | (playing ? CLAP_TRANSPORT_IS_PLAYING : 0);
            t.song_pos_beats = (clap_beattime)std::llround(beat * CLAP_BEATTIME_FACTOR);
            t.song_pos_seconds = (clap_sectime)std::llround(b * BLOCK / RATE * CLAP_SECTIME_FACTOR);
            t.tempo = bpm;
            t.bar_number = (int32_t)std::floor(beat / 4.0);
            t.bar_start = (clap_beattime)std::llround(t.bar_number * 4.0 * CLAP_BEATTIME_FACTOR);
            t.tsig_num = 4; t.tsig_denom = 4;
            clap_process_t pr{};
            pr.steady_time = (int64_t)b * BLOCK; pr.frames_count = BLOCK; pr.transport = &t;
            pr.audio_outputs = &audio; pr.audio_outputs_count = 1; pr.in_events = &ins; pr.out_events = &outs;
            oe.block = (uint32_t)b;
            const auto t0 = std::chrono::steady_clock::now();
            p->process(p, &pr);
            const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count();
            if (max_us && b > 0) *max_us = std::max(*max_us, us);
            for (uint32_t k = 0; k < BLOCK; ++k) if (l[k] != 0.0f || r[k] != 0.0f) { ++oe.other; break; }   // (counted as a wrong output: the audio is silent)
        }
        p->stop_processing(p);
        p->deactivate(p);
        if (outside) *outside = oe.outside + oe.other;
        return oe.midi;
    }
};

}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) { std::cerr << "usage: clap_host PLUGIN.clap MODEL.onnx\n"; return 2; }
    setenv("MUSE_MODEL", argv[2], 1);
    void* lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != nullptr, "dlopen " << argv[1] << (lib ? "" : std::string(": ") + dlerror()));
    if (!lib) return 1;
    const auto* entry = static_cast<const clap_plugin_entry_t*>(dlsym(lib, "clap_entry"));
    CHECK(entry && clap_version_is_compatible(entry->clap_version), "clap_entry, a compatible CLAP version");
    if (!entry || !entry->init(argv[1])) return 1;
    const auto* f = static_cast<const clap_plugin_factory_t*>(entry->get_factory(CLAP_PLUGIN_FACTORY_ID));
    CHECK(f && f->get_plugin_count(f) == 1, "the plugin factory has one plugin");
    const clap_plugin_descriptor_t* d = f->get_plugin_descriptor(f, 0);
    bool note_effect = false, instrument = false;
    for (const char* const* x = d->features; x && *x; ++x) { note_effect |= !std::strcmp(*x, CLAP_PLUGIN_FEATURE_NOTE_EFFECT); instrument |= !std::strcmp(*x, CLAP_PLUGIN_FEATURE_INSTRUMENT); }
    CHECK(note_effect && instrument, "descriptor " << d->id << " '" << d->name << "': features note-effect and instrument");
    {
        Instance a(f, d->id);
        CHECK(a.p != nullptr, "create_plugin and init");
        if (!a.p) return 1;
        const auto* np = static_cast<const clap_plugin_note_ports_t*>(a.p->get_extension(a.p, CLAP_EXT_NOTE_PORTS));
        clap_note_port_info_t in{}, out{};
        const bool ports = np && np->count(a.p, true) == 1 && np->count(a.p, false) == 1 && np->get(a.p, 0, true, &in) && np->get(a.p, 0, false, &out);
        CHECK(ports && (in.supported_dialects & CLAP_NOTE_DIALECT_MIDI) && (out.supported_dialects & CLAP_NOTE_DIALECT_MIDI),
              "note ports: one MIDI input ('" << (ports ? in.name : "") << "') and one MIDI output ('" << (ports ? out.name : "") << "')");
        CHECK(a.params && a.param("Temperature") != CLAP_INVALID_ID && a.param("Mode") != CLAP_INVALID_ID && a.param("Instruments") != CLAP_INVALID_ID,
              "parameters: " << (a.params ? a.params->count(a.p) : 0) << ", Temperature, Mode and Instruments among them");
        CHECK(a.state != nullptr, "the state extension");
        // a default run, then one at temperature 0.5 whose state goes into a second instance
        double max_us = 0; uint32_t outside = 0;
        const std::vector<Midi> plain = a.run(1200, 100.0, {}, &max_us, &outside);
        int left = -1;
        CHECK(host::ons(plain) > 50, "MIDI out while the transport rolls: " << host::ons(plain) << " note-ons in " << 1200 * BLOCK / RATE << " s at 100 bpm");
        CHECK(host::legal(plain, left) && left == 0 && outside == 0, "every event inside its block, legal notes, ons and offs balanced after the stop (" << left << " left), silent audio");
        const double worst = host::worst_off_tick(plain, 100.0, BLOCK, RATE);
        CHECK(worst <= 1.0, "every note-on within a frame of its tick of the host's beat (worst " << worst << " frames)");
        std::printf("     the longest process() call: %.0f us for %u frames (%.1f%% of the block's %.1f ms)\n", max_us, BLOCK, 100.0 * max_us / (BLOCK / RATE * 1e6), BLOCK / RATE * 1e3);
        const std::vector<Midi> again = a.run(1200, 100.0);
        CHECK(again == plain, "reactivated, the same transport plays the same " << plain.size() << " events");
        const std::vector<Midi> cool = a.run(1200, 100.0, {{a.param("Temperature"), 0.5}});
        CHECK(!cool.empty() && !(cool == plain), "at temperature 0.5 (a parameter event) it plays otherwise: " << host::ons(cool) << " note-ons");
        Buffer saved;
        clap_ostream_t os = {&saved, write_to};
        CHECK(a.state->save(a.p, &os) && !saved.bytes.empty(), "state saved: " << saved.bytes.size() << " bytes");
        Instance b(f, d->id);
        clap_istream_t is = {&saved, read_from};
        CHECK(b.p && b.state && b.state->load(b.p, &is), "state loaded into a second instance");
        const std::vector<Midi> restored = b.p ? b.run(1200, 100.0) : std::vector<Midi>{};
        CHECK(restored == a.run(1200, 100.0), "the second instance, from the saved state, plays what the first plays (" << host::ons(restored) << " note-ons, temperature 0.5)");
    }
    {   // a model file that cannot be read: silence, and the host goes on
        setenv("MUSE_MODEL", "/nonexistent/model.onnx", 1);
        Instance c(f, d->id);
        const std::vector<Midi> none = c.p ? c.run(100, 100.0) : std::vector<Midi>{{0, 0, 0, 0, 0}};
        Buffer saved;
        clap_ostream_t os = {&saved, write_to};
        const bool ok = c.p && c.state && c.state->save(c.p, &os);
        const std::string text(saved.bytes.begin(), saved.bytes.end());
        CHECK(none.empty() && ok && text.find("error: model not found: /nonexistent/model.onnx") != std::string::npos,
              "a missing model: silent, and the saved state's status says why");
    }
    entry->deinit();
    dlclose(lib);
    std::cout << (host::failed ? "FAILED" : "all passed") << std::endl;
    return host::failed ? 1 : 0;
}
