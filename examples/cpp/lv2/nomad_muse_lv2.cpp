// Nomad Muse as an LV2 plugin: a MIDI generator that plays an exported model in time with the host. This file maps
// LV2's ports, atoms and time:Position onto muse::Player (src/player.cpp), which every plugin format shares.
//
// The model runs on the audio thread with the native step (NativeGru or NativeTransformer: no allocation, no lock), a
// token at a time, just far enough ahead to know every note that starts in the current block.
// Time: a beat-time model (time_unit: beat) counts ticks of a quarter note: each note lands on its tick of the host's
// beat, at any tempo, a piece starts on the host's next bar line, and its bars are the host's: the model's METER is held
// to the host's time signature (where the vocabulary has it), its TEMPO tokens give way to the host's tempo. An ms model's
// time steps (20 ms at the default bins) are read as beats at 120 bpm, 25 steps a beat, so the music follows the host's
// tempo, and a piece starts on a beat when the transport starts. Each note is placed at its own
// frame inside the block. Parameters: temperature, top-p, note density (a bias on the NOTE_ON and DRUM logits, log
// density), and the mode: 0 generates continuously; 1 listens to the MIDI input and, one beat after the player stops,
// continues what was played (the phrase is encoded as the tokenizer would, fed to the model, and the model goes on);
// 2 accompanies the player live (a beat-time model trained with conditioning, `make bach-cond`): each note the player
// plays goes into the model's stream as a control (AHEAD_0 CTRL_NOTE_p, as the tokenizer writes a given part at 0 beats
// ahead) at the first tick of the model's grid it can still answer at, the next one after the note at the latest, and
// the model plays its parts around it. A time shift the model samples waits for its time before it is fed, so a note
// that comes in before the shift lands takes its place: the stream moves to the note's tick, hears it, and the model
// samples again. The model's notes at a tick wait a listen window (20 ms by default) for the player's, so a note played a
// little behind the beat, as people play, is heard on its own tick; they sound that much after their tick. Two output
// ports report it: the notes heard, and the longest reaction in ticks. A band model plays the instruments the
// Instruments port chooses (all, bass and drums, the bass, the drums, piano bass and drums, ...), from the next piece on.
// A musician's controls, applied by the grammar's mask as muse_sample's --scale, --pitch_range, --polyphony and
// --density are: a scale (root and mode: only its pitch classes start), the lowest and highest pitch, the most notes
// sounding at once and the most onsets a beat (0: no cap). They may move while it plays, with no allocation.
// The model is `model.onnx` in the bundle (a GRU or transformer exported by muse_export with INT8 or fp32 weights), or
// the file $MUSE_LV2_MODEL names.
#include "muse/muse.hpp"

#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/core/lv2.h>
#include <lv2/midi/midi.h>
#include <lv2/time/time.h>
#include <lv2/urid/urid.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#define MUSE_LV2_URI "https://github.com/nomad-muse/nomad-muse-trainer#generator"

namespace {
using namespace muse;

enum PortIndex : uint32_t { CONTROL = 0, MIDI_OUT = 1, TEMPERATURE = 2, TOP_P = 3, DENSITY = 4, MODE = 5, LATE = 6,
                            SCALE_ROOT = 7, SCALE = 8, LOWEST = 9, HIGHEST = 10, POLYPHONY = 11, ONSETS = 12, HEARD = 13, REACTION = 14, LISTEN = 15, INSTRUMENTS = 16 };
constexpr int N_SHAPE = 6;               // the controls' ports, SCALE_ROOT to ONSETS

struct Uris {
    LV2_URID atom_Blank, atom_Object, atom_Float, atom_Double, atom_Int, atom_Long, atom_Sequence, midi_MidiEvent,
        time_Position, time_bar, time_barBeat, time_beat, time_beatsPerBar, time_beatUnit, time_beatsPerMinute, time_speed;
    explicit Uris(LV2_URID_Map* m) {
        auto u = [m](const char* s) { return m->map(m->handle, s); };
        atom_Blank = u(LV2_ATOM__Blank); atom_Object = u(LV2_ATOM__Object); atom_Float = u(LV2_ATOM__Float);
        atom_Double = u(LV2_ATOM__Double); atom_Int = u(LV2_ATOM__Int); atom_Long = u(LV2_ATOM__Long);
        atom_Sequence = u(LV2_ATOM__Sequence); midi_MidiEvent = u(LV2_MIDI__MidiEvent);
        time_Position = u(LV2_TIME__Position); time_bar = u(LV2_TIME__bar); time_barBeat = u(LV2_TIME__barBeat);
        time_beat = u(LV2_TIME__beat); time_beatsPerBar = u(LV2_TIME__beatsPerBar); time_beatUnit = u(LV2_TIME__beatUnit);
        time_beatsPerMinute = u(LV2_TIME__beatsPerMinute); time_speed = u(LV2_TIME__speed);
    }
};

struct Plugin {
    // ports
    const LV2_Atom_Sequence* control = nullptr;
    LV2_Atom_Sequence* midi_out = nullptr;
    const float *temperature = nullptr, *top_p = nullptr, *density = nullptr, *mode = nullptr, *listen = nullptr, *band = nullptr;
    float *late_out = nullptr, *heard_out = nullptr, *reaction_out = nullptr;
    const float* shape[N_SHAPE] = {};    // scale root, scale (0: none, else 1 + an index of scale_names()), lowest, highest, polyphony, onsets a beat
    Uris uris;
    LV2_Atom_Forge forge;
    Player player;

    Plugin(LV2_URID_Map* map, double rate, std::unique_ptr<StepModel> m) : uris(map), player(std::move(m), rate) {
        lv2_atom_forge_init(&forge, map);
    }

    static void midi(void* self, uint32_t frame, const uint8_t msg[3]) {   // the player's MIDI, into the output sequence
        auto* p = static_cast<Plugin*>(self);
        struct { LV2_Atom_Event ev; uint8_t msg[3]; } e;
        e.ev.time.frames = frame;
        e.ev.body.type = p->uris.midi_MidiEvent;
        e.ev.body.size = 3;
        std::memcpy(e.msg, msg, 3);
        if (lv2_atom_forge_frame_time(&p->forge, frame)) lv2_atom_forge_write(&p->forge, &e.ev.body, sizeof(LV2_Atom) + 3);
    }

    PlayerSettings settings() const {                    // the ports as the player reads them (an unconnected one: its default)
        static const float dflt[N_SHAPE] = {0, 0, 0, 127, 0, 0};
        PlayerSettings s;
        s.temperature = *temperature; s.top_p = *top_p; s.density = *density;
        s.mode = (int)std::lround(*mode);
        s.listen_ms = listen ? *listen : 0.0f;
        s.band = band ? (int)std::lround(*band) : 0;
        for (int i = 0; i < N_SHAPE; ++i) s.shape[i] = shape[i] ? *shape[i] : dflt[i];
        return s;
    }

    void run(uint32_t n_frames) {
        const uint32_t capacity = midi_out->atom.size;
        lv2_atom_forge_set_buffer(&forge, reinterpret_cast<uint8_t*>(midi_out), capacity);
        LV2_Atom_Forge_Frame seq;
        lv2_atom_forge_sequence_head(&forge, &seq, 0);
        player.begin(settings(), &Plugin::midi, this);
        uint32_t done = 0;
        LV2_ATOM_SEQUENCE_FOREACH(control, e) {
            const uint32_t at = (uint32_t)std::min<int64_t>(std::max<int64_t>(e->time.frames, done), n_frames);
            player.play(done, at);
            done = at;
            if (e->body.type == uris.midi_MidiEvent) player.midi_in(at, reinterpret_cast<const uint8_t*>(e + 1), e->body.size);
            else if (e->body.type == uris.atom_Object || e->body.type == uris.atom_Blank) {
                const auto* obj = reinterpret_cast<const LV2_Atom_Object*>(&e->body);
                if (obj->body.otype == uris.time_Position) player.position(at, host_time(obj));
            }
        }
        player.play(done, n_frames);
        lv2_atom_forge_pop(&forge, &seq);
        if (late_out) *late_out = (float)player.late();
        if (heard_out) *heard_out = (float)player.heard();
        if (reaction_out) *reaction_out = (float)player.reaction();
    }

    double number(const LV2_Atom* a) const {
        if (!a) return NAN;
        if (a->type == uris.atom_Float) return ((const LV2_Atom_Float*)a)->body;
        if (a->type == uris.atom_Double) return ((const LV2_Atom_Double*)a)->body;
        if (a->type == uris.atom_Int) return ((const LV2_Atom_Int*)a)->body;
        if (a->type == uris.atom_Long) return (double)((const LV2_Atom_Long*)a)->body;
        return NAN;
    }

    // time:Position as the player reads a host's transport (a value the host leaves out, or of another type: not said)
    HostTime host_time(const LV2_Atom_Object* obj) const {
        const LV2_Atom *bar = nullptr, *in_bar = nullptr, *abs_beat = nullptr, *per_bar = nullptr, *unit = nullptr, *tempo = nullptr, *spd = nullptr;
        lv2_atom_object_get(obj, uris.time_bar, &bar, uris.time_barBeat, &in_bar, uris.time_beat, &abs_beat,
                            uris.time_beatsPerBar, &per_bar, uris.time_beatUnit, &unit, uris.time_beatsPerMinute, &tempo, uris.time_speed, &spd, 0);
        HostTime t;
        t.bpm = number(tempo); t.speed = number(spd); t.beat = number(abs_beat); t.bar = number(bar); t.bar_beat = number(in_bar);
        t.beats_per_bar = number(per_bar); t.beat_unit = number(unit);
        return t;
    }
};

LV2_Handle instantiate(const LV2_Descriptor*, double rate, const char* bundle_path, const LV2_Feature* const* features) {
    LV2_URID_Map* map = nullptr;
    for (int i = 0; features && features[i]; ++i)
        if (!std::strcmp(features[i]->URI, LV2_URID__map)) map = static_cast<LV2_URID_Map*>(features[i]->data);
    if (!map) { std::fprintf(stderr, "nomad_muse: the host does not provide urid:map\n"); return nullptr; }
    const char* env = std::getenv("MUSE_LV2_MODEL");
    const std::string path = env && *env ? std::string(env) : std::string(bundle_path) + "/model.onnx";
    try {
        std::unique_ptr<StepModel> m = open_native(path);
        return new Plugin(map, rate, std::move(m));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nomad_muse: %s\n", e.what());
        return nullptr;
    }
}

void connect_port(LV2_Handle h, uint32_t port, void* data) {
    auto* p = static_cast<Plugin*>(h);
    switch (port) {
        case CONTROL: p->control = static_cast<const LV2_Atom_Sequence*>(data); break;
        case MIDI_OUT: p->midi_out = static_cast<LV2_Atom_Sequence*>(data); break;
        case TEMPERATURE: p->temperature = static_cast<const float*>(data); break;
        case TOP_P: p->top_p = static_cast<const float*>(data); break;
        case DENSITY: p->density = static_cast<const float*>(data); break;
        case MODE: p->mode = static_cast<const float*>(data); break;
        case LATE: p->late_out = static_cast<float*>(data); break;
        case HEARD: p->heard_out = static_cast<float*>(data); break;
        case REACTION: p->reaction_out = static_cast<float*>(data); break;
        case LISTEN: p->listen = static_cast<const float*>(data); break;
        case INSTRUMENTS: p->band = static_cast<const float*>(data); break;
        case SCALE_ROOT: case SCALE: case LOWEST: case HIGHEST: case POLYPHONY: case ONSETS:
            p->shape[port - SCALE_ROOT] = static_cast<const float*>(data); break;
    }
}

void activate(LV2_Handle h) { static_cast<Plugin*>(h)->player.activate(); }
void run(LV2_Handle h, uint32_t n) { static_cast<Plugin*>(h)->run(n); }
void cleanup(LV2_Handle h) { delete static_cast<Plugin*>(h); }

const LV2_Descriptor descriptor = {MUSE_LV2_URI, instantiate, connect_port, activate, run, nullptr, cleanup, nullptr};
}  // namespace

extern "C" LV2_SYMBOL_EXPORT const LV2_Descriptor* lv2_descriptor(uint32_t index) { return index == 0 ? &descriptor : nullptr; }
