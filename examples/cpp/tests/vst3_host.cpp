// A small VST3 host written against the VST3 ABI as DPF's travesty headers declare it (the interfaces' layouts and IDs,
// no Steinberg SDK): a second judge of the VST3 build beside minihost (JUCE's hosting). It loads NomadMuse.vst3 the way a
// DAW does: ModuleEntry, GetPluginFactory, the audio module class, IComponent and IAudioProcessor, its buses (a stereo
// output and an event bus each way), setup, activation, and process() with a process context (tempo, project time in
// quarters, the bar's position, time signature, playing) and event lists the host implements.
// Usage: vst3_host NomadMuse.vst3 MODEL.onnx     (the plugin opens $MUSE_MODEL, which this sets)
#include <travesty/audio_processor.h>
#include <travesty/component.h>
#include <travesty/events.h>
#include <travesty/factory.h>

#include <dlfcn.h>

#include "host_checks.hpp"
#include "vst3_objects.hpp"

#include <chrono>
#include <cmath>
#include <cstddef>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <string>
#include <vector>

namespace {
using host::Midi;
using vst3::EventList;
using vst3::ParamChanges;
using vst3::Output;

constexpr double RATE = 48000.0;
constexpr int32_t BLOCK = 512;
}  // namespace

int main(int argc, char** argv) {
    if (argc < 3) { std::cerr << "usage: vst3_host NomadMuse.vst3 MODEL.onnx\n"; return 2; }
    setenv("MUSE_MODEL", argv[2], 1);
    const std::string so = std::string(argv[1]) + "/Contents/x86_64-linux/NomadMuse.so";
    void* lib = dlopen(so.c_str(), RTLD_NOW | RTLD_LOCAL);
    CHECK(lib != nullptr, "dlopen " << so << (lib ? "" : std::string(": ") + dlerror()));
    if (!lib) return 1;
    auto entry = reinterpret_cast<bool (*)(void*)>(dlsym(lib, "ModuleEntry"));
    auto factory_of = reinterpret_cast<void* (*)()>(dlsym(lib, "GetPluginFactory"));
    CHECK(entry && factory_of && entry(lib), "ModuleEntry and GetPluginFactory");
    if (!factory_of) return 1;
    auto** factory = static_cast<v3_plugin_factory_cpp**>(factory_of());
    v3_factory_info fi{};
    (*factory)->v1.get_factory_info(factory, &fi);
    const int32_t n = (*factory)->v1.num_classes(factory);
    int audio = -1;
    v3_class_info ci{};
    for (int32_t i = 0; i < n; ++i) {
        v3_class_info c{};
        if ((*factory)->v1.get_class_info(factory, i, &c) == V3_OK && !std::strcmp(c.category, "Audio Module Class")) { audio = i; ci = c; }
    }
    CHECK(audio >= 0, "the factory (vendor '" << fi.vendor << "') has an audio module class: '" << ci.name << "' of " << n << " classes");
    if (audio < 0) return 1;
    v3_component_cpp** comp = nullptr;
    CHECK((*factory)->v1.create_instance(factory, ci.class_id, v3_component_iid, (void**)&comp) == V3_OK && comp, "create_instance: IComponent");
    if (!comp) return 1;
    CHECK((*comp)->base.initialize(comp, nullptr) == V3_OK, "initialize");
    v3_audio_processor_cpp** proc = nullptr;
    CHECK((*comp)->query_interface(comp, v3_audio_processor_iid, (void**)&proc) == V3_OK && proc, "IAudioProcessor");
    if (!proc) return 1;
    const int32_t audio_out = (*comp)->comp.get_bus_count(comp, V3_AUDIO, V3_OUTPUT), events_in = (*comp)->comp.get_bus_count(comp, V3_EVENT, V3_INPUT),
                  events_out = (*comp)->comp.get_bus_count(comp, V3_EVENT, V3_OUTPUT), audio_in = (*comp)->comp.get_bus_count(comp, V3_AUDIO, V3_INPUT);
    CHECK(audio_in == 0 && audio_out == 1 && events_in == 1 && events_out == 1, "buses: no audio input, one audio output, one event bus in and out (" << audio_in << ", " << audio_out << ", " << events_in << ", " << events_out << ")");
    (*comp)->comp.activate_bus(comp, V3_AUDIO, V3_OUTPUT, 0, true);
    (*comp)->comp.activate_bus(comp, V3_EVENT, V3_INPUT, 0, true);
    (*comp)->comp.activate_bus(comp, V3_EVENT, V3_OUTPUT, 0, true);
    v3_process_setup setup = {V3_REALTIME, V3_SAMPLE_32, BLOCK, RATE};
    CHECK((*proc)->proc.setup_processing(proc, &setup) == V3_OK, "setup_processing: 48 kHz, 512 frames, 32-bit");

    std::vector<double> us;                     // each process() call's time while the transport rolls
    auto run = [&](int blocks, double bpm, int* outside) {
        std::vector<Midi> got;
        (*comp)->comp.set_active(comp, true);
        (*proc)->proc.set_processing(proc, true);
        Output out(BLOCK);
        int loud = 0;
        for (int b = 0; b < blocks + 20; ++b) {
            EventList ins, outs;
            ParamChanges params_in, params_out;
            v3_process_context ctx{};
            const bool playing = b < blocks;
            const double q = b * BLOCK / RATE * bpm / 60.0;
            ctx.state = V3_PROCESS_CTX_PROJECT_TIME_VALID | V3_PROCESS_CTX_TEMPO_VALID | V3_PROCESS_CTX_BAR_POSITION_VALID | V3_PROCESS_CTX_TIME_SIG_VALID | (playing ? V3_PROCESS_CTX_PLAYING : 0);
            ctx.sample_rate = RATE; ctx.project_time_in_samples = (int64_t)b * BLOCK; ctx.continuous_time_in_samples = (int64_t)b * BLOCK;
            ctx.project_time_quarters = q; ctx.bar_position_quarters = std::floor(q / 4.0) * 4.0; ctx.bpm = bpm;
            ctx.time_sig_numerator = 4; ctx.time_sig_denom = 4;
            v3_process_data data = out.data(ins, outs, params_in, params_out, ctx);
            const auto t0 = std::chrono::steady_clock::now();
            (*proc)->proc.process(proc, &data);
            if (b > 0 && playing) us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
            for (const v3_event& e : outs.events) {
                if (e.type == V3_EVENT_NOTE_ON) got.push_back({b, e.sample_offset, 0x90 | e.note_on.channel, e.note_on.pitch, (int)std::lround(e.note_on.velocity * 127)});
                else if (e.type == V3_EVENT_NOTE_OFF) got.push_back({b, e.sample_offset, 0x80 | e.note_off.channel, e.note_off.pitch, 0});
            }
            *outside += outs.outside;
            for (float x : out.l) loud += x != 0.0f;
        }
        (*proc)->proc.set_processing(proc, false);
        (*comp)->comp.set_active(comp, false);
        *outside += loud;
        return got;
    };
    int outside = 0;
    const std::vector<Midi> notes = run(1200, 100.0, &outside);
    int left = -1;
    const bool legal = host::legal(notes, left);
    const int ons = host::ons(notes);
    const double worst = host::worst_off_tick(notes, 100.0, BLOCK, RATE);
    CHECK(ons > 50, "MIDI out while the transport rolls: " << ons << " note-ons in " << 1200 * BLOCK / RATE << " s at 100 bpm");
    CHECK(legal && left == 0 && outside == 0, "every event inside its block, legal notes, ons and offs balanced after the stop (" << left << " left), silent audio");
    CHECK(worst <= 1.0, "every note-on within a frame of its tick of the host's beat (worst " << worst << " frames)");
    std::sort(us.begin(), us.end());
    if (!us.empty()) std::printf("     process() of %d frames: p50 %.0f us, p99 %.0f us, max %.0f us (the block: %.0f us)\n", BLOCK, us[us.size() / 2], us[us.size() * 99 / 100], us.back(), BLOCK / RATE * 1e6);
    int outside2 = 0;
    CHECK(run(1200, 100.0, &outside2) == notes, "reactivated, the same transport plays the same " << notes.size() << " events");
    (*proc)->unref(proc);
    (*comp)->base.terminate(comp);
    (*comp)->unref(comp);
    {   // a model file that cannot be read: silence, and the host goes on
        setenv("MUSE_MODEL", "/nonexistent/model.onnx", 1);
        v3_component_cpp** c2 = nullptr;
        v3_audio_processor_cpp** p2 = nullptr;
        const bool made = (*factory)->v1.create_instance(factory, ci.class_id, v3_component_iid, (void**)&c2) == V3_OK && c2 &&
                          (*c2)->base.initialize(c2, nullptr) == V3_OK && (*c2)->query_interface(c2, v3_audio_processor_iid, (void**)&p2) == V3_OK;
        size_t events = 1;
        if (made) {
            (*c2)->comp.activate_bus(c2, V3_EVENT, V3_OUTPUT, 0, true);
            (*p2)->proc.setup_processing(p2, &setup);
            comp = c2; proc = p2;
            int o = 0;
            events = run(100, 100.0, &o).size();
            (*p2)->unref(p2); (*c2)->base.terminate(c2); (*c2)->unref(c2);
        }
        CHECK(made && events == 0, "a missing model: the plugin is made, processes, and stays silent");
    }
    (*factory)->unref(factory);
    if (auto exit_fn = reinterpret_cast<bool (*)()>(dlsym(lib, "ModuleExit"))) exit_fn();
    std::cout << (host::failed ? "FAILED" : "all passed") << std::endl;
    return host::failed ? 1 : 0;
}
