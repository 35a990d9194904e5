// Nomad Muse as an LV2 plugin: a MIDI generator that plays an exported GRU in time with the host.
//
// The model runs on the audio thread with the native step (NativeGru: no allocation, no lock, about a fifth of an
// onnxruntime step), a token at a time, just far enough ahead to know every note that starts in the current block.
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
// The model is `model.onnx` in the bundle (a GRU exported by muse_export with INT8 weights, or its fp32 twin), or the
// file $MUSE_LV2_MODEL names.
#include "muse/muse.hpp"

#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/core/lv2.h>
#include <lv2/midi/midi.h>
#include <lv2/time/time.h>
#include <lv2/urid/urid.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

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

constexpr int MAX_PHRASE = 256;          // notes of the player's phrase kept (the latest)
constexpr int MAX_GIVEN = 256;           // accompany mode: the player's notes waiting to be heard
// A band model's instruments (the Instruments port, an index of these): who plays from the next piece on
const char* const BANDS[] = {"", "bass,drums", "bass", "drums", "piano,bass,drums", "guitar,bass,drums", "piano", "strings"};
constexpr int N_BANDS = sizeof(BANDS) / sizeof(BANDS[0]);
constexpr double REF_BPM = 120.0;        // the tempo the model's seconds are read at

struct Plugin {
    // ports
    const LV2_Atom_Sequence* control = nullptr;
    LV2_Atom_Sequence* midi_out = nullptr;
    const float *temperature = nullptr, *top_p = nullptr, *density = nullptr, *mode = nullptr, *listen = nullptr, *band = nullptr;
    float *late_out = nullptr, *heard_out = nullptr, *reaction_out = nullptr;
    const float* shape[N_SHAPE] = {};    // scale root, scale (0: none, else 1 + an index of scale_names()), lowest, highest, polyphony, onsets a beat
    // host
    Uris uris;
    LV2_Atom_Forge forge;
    double rate;
    double bpm = REF_BPM, speed = 1.0, beat = 0.0;   // without time:Position from the host: 120 bpm, rolling
    double beats_per_bar = 4.0, bar_beat = 0.0;     // the host's bar: its beats, and where in it `beat` is
    int beat_unit = 4;                               // the note value of the host's beat (4: a quarter, 8: an eighth)
    // model
    std::unique_ptr<NativeGru> model;
    Grammar grammar;                     // the tokenizer's grammar: it follows the stream (the player's phrase too)
    std::vector<Grammar> bands;          // the same with the musician's controls and each choice of instruments (made once)
    Grammar* shaped = nullptr;           // the one that says what may be sampled now
    int band_now = 0;                    // its index in BANDS
    Controls controls;                   // made once; Controls::set refills its table in place
    float shape_now[N_SHAPE] = {-1, -1, -1, -1, -1, -1};
    GrammarState st, st0;
    Sampler sampler{0x5eed};
    NoteStream notes;
    const float* logits = nullptr;
    double steps_per_beat;
    double anchor = 0.0;                 // the host beat of the piece's step 0
    bool generating = false;
    float scratch[MAX_VOCAB];
    bool mask[MAX_VOCAB];
    NoteEvent ev[2 + NoteStream::MAX_SOUNDING];
    // the MIDI channel of each program (multi-track models), assigned as programs first play
    int channel_of[N_PROGRAMS];
    int next_channel = 0;
    // continue mode
    int cur_mode = -1;
    PlayedNote phrase[MAX_PHRASE];
    int n_phrase = 0, held[N_PITCHES], n_held = 0;   // held: the phrase's note a pitch sounds (key down, or up under the pedal)
    bool pedal = false, sustained[N_PITCHES];        // the player's sustain pedal (CC64), and the notes only it holds
    double phrase_origin = 0.0, last_release = -1e9;
    std::vector<int> feed;               // the phrase's tokens, fed a few per block (capacity reserved at instantiate)
    size_t fed = 0;
    bool feeding = false;
    uint32_t late = 0;
    // accompany mode: the player's notes not yet in the stream (where they sounded, in the stream's ticks; their CTRL id),
    // and a move the model sampled that waits for its time before it is fed
    struct Given { double tick; int64_t at; int id; };   // where it sounded (ticks), the tick it is heard at the earliest, its CTRL id
    Given given[MAX_GIVEN];
    int n_given = 0, waiting = -1;
    int64_t waiting_to = 0;
    uint32_t heard = 0;
    double reaction = 0.0;

    Plugin(LV2_URID_Map* map, double sr, std::unique_ptr<NativeGru> m)
        : uris(map), rate(sr), model(std::move(m)), grammar(model->vocab()), notes(model->vocab()) {
        for (int i = 0; i < N_BANDS; ++i) {              // a single stream has one: its instruments are not chosen
            bands.emplace_back(model->vocab());
            if (i && model->vocab().multi) bands.back().set_instruments(std::string(BANDS[i]));
            if (!model->vocab().multi) break;
        }
        shaped = &bands[0];
        lv2_atom_forge_init(&forge, map);
        st0 = grammar.initial();
        st = st0;
        steps_per_beat = 60000.0 / (REF_BPM * model->vocab().time_shift_ms);
        feed.reserve(8 * MAX_PHRASE + 4096);
        std::fill(channel_of, channel_of + N_PROGRAMS, -1);
        std::fill(held, held + N_PITCHES, -1);
        std::fill(sustained, sustained + N_PITCHES, false);
    }

    double beat_of(int64_t step) const { return anchor + step / steps_per_beat + window(); }
    // Accompany mode: how long (in host beats) the model's notes at a tick wait for the player's: a note of the player's
    // up to this late is heard on its own tick, and the model's notes sound this much after theirs (the listen port, ms)
    double window() const { return cur_mode == 2 && listen ? std::max(0.0f, std::min(50.0f, *listen)) * bpm / 60000.0 : 0.0; }
    bool beat_time() const { return model->vocab().beat; }
    // Beat time: ticks a host beat, and the METER of the host's time signature (-1: one the vocabulary lacks)
    double ticks_per_beat() const { return model->vocab().resolution * 4.0 / beat_unit; }
    int host_meter() const {
        const Vocab& v = model->vocab();
        for (int i = 0; i < N_METERS; ++i)
            if (v.meters[i][1] == beat_unit && std::fabs(v.meters[i][0] - beats_per_bar) < 1e-6) return i;
        return -1;
    }
    int host_tempo() const { return model->vocab().tempo_bin(bpm * 4.0 / beat_unit); }   // the TEMPO nearest the host's, in quarter notes a minute
    // The host beat of the first bar line at or after host beat `b` (b no earlier than `beat`)
    double next_bar(double b) const {
        const double in_bar = std::fmod(bar_beat + (b - beat), beats_per_bar);
        return in_bar < 1e-6 ? b - in_bar : b + beats_per_bar - in_bar;   // on a bar line (to rounding): that one
    }
    double bar_before(double b) const { const double n = next_bar(b); return std::fabs(n - b) < 1e-6 ? n : n - beats_per_bar; }
    // The frame of host beat `b` in a block segment that starts at frame f0 on beat b0 (unrounded).
    double frame_at(double b, double b0, uint32_t f0) const { return f0 + (b - b0) * rate * 60.0 / (bpm * speed); }
    uint32_t frame_of(double b, double b0, uint32_t f0, uint32_t f1) {
        const double f = std::floor(frame_at(b, b0, f0) + 0.5);
        if (f < f0) { ++late; return f0; }                // a note generated too late for its time: played now
        return (uint32_t)std::min<double>(f, f1 - 1);
    }

    void midi(uint32_t frame, uint8_t status, uint8_t a, uint8_t b) {
        struct { LV2_Atom_Event ev; uint8_t msg[3]; } e;
        e.ev.time.frames = frame;
        e.ev.body.type = uris.midi_MidiEvent;
        e.ev.body.size = 3;
        e.msg[0] = status; e.msg[1] = a; e.msg[2] = b;
        if (lv2_atom_forge_frame_time(&forge, frame)) lv2_atom_forge_write(&forge, &e.ev.body, sizeof(LV2_Atom) + 3);
    }

    int channel(const NoteEvent& n, uint32_t frame) {
        if (n.drum) return 9;
        if (!model->vocab().multi) return 0;
        int& c = channel_of[n.program];
        if (c < 0) {                                     // first note of this program: a channel and its program change
            c = next_channel;
            if (next_channel < 15) next_channel += next_channel == 8 ? 2 : 1;   // skip 9 (drums); beyond 15 share the last
            midi(frame, (uint8_t)(0xC0 | c), (uint8_t)n.program, 0);
        }
        return c;
    }

    void emit(const NoteEvent& n, double b0, uint32_t f0, uint32_t f1) {
        const uint32_t fr = frame_of(beat_of(n.step), b0, f0, f1);
        const int ch = channel(n, fr);
        if (n.on) midi(fr, (uint8_t)(0x90 | ch), (uint8_t)n.pitch, (uint8_t)std::max(1, std::min(127, n.velocity)));
        else midi(fr, (uint8_t)(0x80 | ch), (uint8_t)n.pitch, 0);
    }

    // the note-offs due at or before `step`, at their frames
    void emit_offs(int64_t step, double b0, uint32_t f0, uint32_t f1) {
        const int n = notes.pop_offs(step, ev, NoteStream::MAX_SOUNDING);
        for (int i = 0; i < n; ++i) emit(ev[i], b0, f0, f1);
    }

    void stop_all(uint32_t frame) {                       // every sounding note off at `frame`
        const int k = notes.all_off(ev, NoteStream::MAX_SOUNDING);
        for (int i = 0; i < k; ++i) midi(frame, (uint8_t)(0x80 | channel(ev[i], frame)), (uint8_t)ev[i].pitch, 0);
    }

    // A new piece from <BOS>, its step 0 on beat `at` (beat time: the host's first bar line from there).
    void new_piece(double at) {
        model->reset();
        notes.reset();
        st = st0;                                        // the same size: no allocation
        grammar.advance(st, BOS);
        logits = model->step(BOS);
        n_given = 0; waiting = -1;
        const int b = band ? (int)std::lround(*band) : 0;   // the instruments chosen: from this piece on (its header names them)
        band_now = b >= 0 && b < (int)bands.size() ? b : 0;
        shaped = &bands[band_now];
        if (beat_time()) { steps_per_beat = ticks_per_beat(); at = next_bar(std::max(at, beat)); }
        anchor = at;
        generating = true;
    }

    // The controls' ports, read each block: a move refills the controls' table (no allocation); controls that leave no
    // note to play are ignored until they change.
    void read_controls() {
        static const float dflt[N_SHAPE] = {0, 0, 0, 127, 0, 0};
        float now[N_SHAPE];
        bool moved = false;
        for (int i = 0; i < N_SHAPE; ++i) { now[i] = shape[i] ? *shape[i] : dflt[i]; moved |= now[i] != shape_now[i]; }
        if (!moved) return;
        std::copy(now, now + N_SHAPE, shape_now);
        auto whole = [](float x) { return (int)std::lround(x); };
        controls.set(whole(now[0]), whole(now[1]) - 1, whole(now[2]), whole(now[3]), whole(now[4]), whole(now[5]));
        for (Grammar& g : bands) g.try_set_controls(controls);
    }

    int sample() {
        shaped->allowed(st, mask);
        const Vocab& v = model->vocab();
        if (std::none_of(mask, mask + v.size(), [](bool b) { return b; })) grammar.allowed(st, mask);   // controls that moved mid-note: let the stream go on
        const int hm = v.beat ? host_meter() : -1;
        if (hm >= 0 && (st.meter < 0 || st.prev == v.bar())) {   // the model's bars are the host's: its METER is the host's
            const bool must = st.meter < 0 || st.meter != hm;
            if (must && mask[v.meter() + hm]) { std::fill(mask, mask + v.size(), false); mask[v.meter() + hm] = true; }
            else if (!must) std::fill(mask + v.meter(), mask + v.tempo(), false);
        }
        const int V = v.size();
        const float bias = std::log(std::max(0.05f, *density));
        if (cur_mode == 2 && std::count(mask, mask + V, true) > 1) mask[EOS] = false;   // accompanying: the piece goes on with the player
        for (int i = 0; i < V; ++i) {
            const bool note = (i >= NOTE_ON && i < NOTE_OFF) || (v.multi && i >= v.drum() && i < v.ahead());
            scratch[i] = logits[i] + (note ? bias : 0.0f);
        }
        SamplingParams sp;
        sp.temperature = std::max(0.05f, *temperature);
        sp.top_p = std::min(1.0f, std::max(0.05f, *top_p));
        return sampler.sample(scratch, mask, V, sp);
    }

    // Play the block's frames [f0, f1): the host beat moves on; every note due in it is placed at its frame.
    void play(uint32_t f0, uint32_t f1) {
        if (f1 <= f0) return;
        if (speed <= 0.0) return;                         // transport stopped
        const double b0 = beat, b1 = beat + (f1 - f0) * speed * bpm / (60.0 * rate);
        // continue mode: once the player has been silent for a beat, feed the phrase, then answer it
        if (cur_mode == 1 && !generating && !feeding && n_phrase > 0 && n_held == 0 && b0 - last_release >= 1.0) start_answer(b0);
        if (feeding) {
            for (int k = 0; k < 48 && fed < feed.size(); ++k, ++fed) {   // at most 48 tokens a block
                grammar.advance(st, feed[fed]);
                notes.push(feed[fed], ev);                // the stream's time moves on;
                notes.all_off(ev, NoteStream::MAX_SOUNDING);   // the player's notes are not played back
                logits = model->step(feed[fed]);
            }
            if (fed == feed.size()) { feeding = false; generating = true; }
        }
        const int budget = std::max(64, (int)(f1 - f0) / 4);   // tokens a segment may sample: a band's busy tick (drums, bass, chords, the player's notes) takes dozens
        const bool live = cur_mode == 2 && accompanies();
        // tokens until the stream's time reaches a frame of the next block (rounded as frame_of rounds)
        for (int k = 0; generating && k < budget; ++k) {
            if (live) {                                   // the player's notes first, then a move that waits for its time
                const int r = accompany(b0, f0, f1);
                if (r == STOP) break;
                if (r == WROTE) continue;
            }
            if (frame_at(beat_of(notes.step()), b0, f0) >= f1 - 0.5) break;
            emit_offs(notes.step(), b0, f0, f1);
            const int tok = sample();
            if (tok < 0 || tok == EOS) {                  // the piece ends: the next one starts on the next beat (beat time: bar)
                const double end = std::max(b0, beat_of(notes.step()));
                stop_all(frame_of(end, b0, f0, f1));
                new_piece(beat_time() ? end + 1e-9 : std::ceil(end + 1e-9));
                continue;
            }
            if (live && (model->vocab().is_shift(tok) || tok == model->vocab().bar())) {
                const int64_t to = tok == model->vocab().bar() ? st.bar_start + st.bar_len : st.t + tok - TIME_SHIFT + 1;
                const int64_t c = due();
                if (c < to) { move_to(c, b0, f0, f1); hear(b0, f0, f1); continue; }   // a note of the player's comes first
                if (frame_at(beat_of(to), b0, f0) >= f1 - 0.5) { waiting = tok; waiting_to = to; break; }   // fed when its time comes
            }
            put(tok, b0, f0, f1);
        }
        // offs due before the block ends: those of steps whose frame falls in it, up to where the stream has reached
        if (generating && notes.sounding()) {
            int64_t last = waiting >= 0 ? waiting_to : notes.step();   // (a waiting move: the notes sounding now end on their own time)
            while (last > 0 && frame_at(beat_of(last), b0, f0) >= f1 - 0.5) --last;
            emit_offs(last, b0, f0, f1);
        }
        bar_beat = std::fmod(bar_beat + (b1 - b0), beats_per_bar);
        beat = b1;
    }

    // ------------------------------------------------------------------------------------------- accompany mode
    enum { SAMPLE, WROTE, STOP };
    bool accompanies() const { return model->vocab().conditioning && model->vocab().beat; }
    // Whether mode `m` plays on its own from the transport's start: generate, and accompany with a model that can (one
    // trained without conditioning stays silent in mode 2, and the heard port says -1)
    bool plays(int m) const { return m == 0 || (m == 2 && accompanies()); }
    void put(int tok, double b0, uint32_t f0, uint32_t f1) {   // one token into the stream: grammar, notes, model
        grammar.advance(st, tok);
        const int n = notes.push(tok, ev);
        for (int i = 0; i < n; ++i) emit(ev[i], b0, f0, f1);
        logits = model->step(tok);
    }
    bool force(int tok, double b0, uint32_t f0, uint32_t f1) {   // a token the loop writes itself, if the stream allows it here
        bool ok[MAX_VOCAB];
        grammar.legal(st, ok);
        if (tok < 0 || tok >= model->vocab().size() || !ok[tok]) return false;
        put(tok, b0, f0, f1);
        return true;
    }
    // The tick the first waiting note may be written at: the tick nearest where it sounded, unless that tick's notes are
    // already due to sound (the listen window passed) or the model has played (or heard) something there: then the next.
    int64_t due() const {
        if (n_given == 0) return INT64_MAX;
        const Vocab& v = model->vocab();
        const int p = st.prev;
        const bool fresh = st.cprev < 0 && (v.is_shift(p) || p == v.bar() || v.is_meter(p) || v.is_tempo(p));
        return std::max<int64_t>(given[0].at, st.t + (fresh ? 0 : 1));
    }
    // Time forward to tick `c` as the tokenizer writes it: bar lines (with the host's METER where it changes) and shifts.
    void move_to(int64_t c, double b0, uint32_t f0, uint32_t f1) {
        const Vocab& v = model->vocab();
        while (st.t < c) {
            emit_offs(notes.step(), b0, f0, f1);
            bool ok;
            if (c >= st.bar_start + st.bar_len) {
                ok = force(v.bar(), b0, f0, f1);
                const int hm = host_meter();
                if (ok && hm >= 0 && st.meter != hm) ok = force(v.meter() + hm, b0, f0, f1);
            } else ok = force(TIME_SHIFT - 1 + (int)std::min<int64_t>(c - st.t, v.n_shifts), b0, f0, f1);
            if (!ok) { n_given = 0; return; }            // (the stream cannot move there: the waiting notes are dropped)
        }
    }
    // The waiting notes due here, as one group AHEAD_0 CTRL.. (ids rising), where a group may open.
    void hear(double b0, uint32_t f0, uint32_t f1) {
        const Vocab& v = model->vocab();
        bool ok[MAX_VOCAB];
        grammar.insertable(st, ok);
        if (!ok[v.ahead()] || n_given == 0 || due() > st.t) return;
        int ids[MAX_GIVEN], n = 0, k = 0;
        for (int i = 0; i < n_given; ++i) {
            if (given[i].at <= st.t) {
                ids[n++] = given[i].id;
                reaction = std::max(reaction, (double)st.t - given[i].tick);
                ++heard;
            } else given[k++] = given[i];
        }
        n_given = k;
        std::sort(ids, ids + n);
        n = (int)(std::unique(ids, ids + n) - ids);
        if (!force(v.ahead(), b0, f0, f1)) return;
        for (int i = 0; i < n; ++i) force(ids[i], b0, f0, f1);
    }
    // Before the model samples: hear the notes due here; a held move is fed when its time comes, or gives way to a note
    // that sounded before it lands.
    int accompany(double b0, uint32_t f0, uint32_t f1) {
        const int64_t c = due();
        if (waiting >= 0) {
            if (c < waiting_to) { waiting = -1; move_to(c, b0, f0, f1); hear(b0, f0, f1); return WROTE; }
            if (frame_at(beat_of(waiting_to), b0, f0) >= f1 - 0.5) return STOP;
            const int t = waiting;
            waiting = -1;
            emit_offs(notes.step(), b0, f0, f1);
            put(t, b0, f0, f1);
            return WROTE;
        }
        if (c <= st.t) {
            bool ok[MAX_VOCAB];
            grammar.insertable(st, ok);
            if (ok[model->vocab().ahead()]) { emit_offs(notes.step(), b0, f0, f1); hear(b0, f0, f1); return WROTE; }
        }
        return SAMPLE;
    }
    void player_given(int pitch, bool drum, double at) {      // a note the player plays, to be heard at the next tick it may be
        if (!generating || !accompanies() || n_given == MAX_GIVEN) return;
        const Vocab& v = model->vocab();
        if (drum && !(v.multi && pitch >= DRUM_LOW && pitch <= DRUM_HIGH)) return;
        const double tick = (at - anchor) * steps_per_beat;            // (the stream's tick 0 sounds at anchor + window)
        const int64_t earliest = (int64_t)std::ceil((at - anchor - window()) * steps_per_beat - 1e-9);
        given[n_given++] = {tick, std::max<int64_t>((int64_t)std::nearbyint(tick), earliest), v.control_of(pitch, drum)};
    }

    void start_answer(double now) {
        const Vocab& v = model->vocab();
        if (v.performance) { n_phrase = 0; return; }     // encode_notes needs duration mode: the phrase is dropped
        const double answer = std::ceil(now - 1e-9);      // the answer starts on the next beat
        if (v.beat) { start_answer_beat(answer); return; }
        for (int i = 0; i < n_phrase; ++i) { phrase[i].start = (phrase[i].start - phrase_origin) * steps_per_beat; phrase[i].end = (phrase[i].end - phrase_origin) * steps_per_beat; }
        double first = phrase[0].start, last_on = phrase[0].start;
        for (int i = 0; i < n_phrase; ++i) { first = std::min(first, phrase[i].start); last_on = std::max(last_on, phrase[i].start); }
        encode_notes(phrase, (size_t)n_phrase, v, feed);
        // silence from the phrase's last onset to the answer, as TIME_SHIFTs (the model hears the pause)
        int64_t gap = (int64_t)std::llround((answer - phrase_origin) * steps_per_beat - std::nearbyint(first)) - (int64_t)(std::nearbyint(last_on) - std::nearbyint(first));
        for (; gap >= v.n_shifts; gap -= v.n_shifts) feed.push_back(TIME_SHIFT + v.n_shifts - 1);
        if (gap > 0) feed.push_back(TIME_SHIFT + (int)gap - 1);
        model->reset(); notes.reset(); st = st0;
        logits = nullptr;
        fed = 0; feeding = true;
        anchor = phrase_origin + std::nearbyint(first) / steps_per_beat;   // step 0 is the phrase's first onset
        n_phrase = 0;
    }

    // Beat time: the phrase in ticks from the host's bar line before it, in the host's meter and tempo, then bars and
    // shifts to the answer's beat; the stream's tick 0 is that bar line.
    void start_answer_beat(double answer) {
        const Vocab& v = model->vocab();
        steps_per_beat = ticks_per_beat();
        const double origin = bar_before(phrase_origin);
        for (int i = 0; i < n_phrase; ++i) { phrase[i].start = (phrase[i].start - origin) * steps_per_beat; phrase[i].end = (phrase[i].end - origin) * steps_per_beat; }
        const int hm = host_meter();
        encode_notes(phrase, (size_t)n_phrase, v, feed, hm, host_tempo());
        const int64_t bar_len = v.bar_ticks(hm >= 0 ? hm : 3);
        const int64_t base = (int64_t)(std::floor(std::nearbyint(phrase[0].start) / (double)bar_len) * bar_len);   // the stream's first BAR (sorted: phrase[0] is the first)
        int64_t last_on = 0;
        for (int i = 0; i < n_phrase; ++i) last_on = std::max<int64_t>(last_on, (int64_t)std::nearbyint(phrase[i].start) - base);
        const int64_t target = (int64_t)std::llround((answer - origin) * steps_per_beat) - base;
        int64_t bar = last_on / bar_len * bar_len, pos = last_on;
        for (; target >= bar + bar_len; bar += bar_len) { feed.push_back(v.bar()); pos = bar + bar_len; }
        for (int64_t gap = target - pos; gap > 0; gap -= std::min<int64_t>(gap, v.n_shifts)) feed.push_back(TIME_SHIFT + (int)std::min<int64_t>(gap, v.n_shifts) - 1);
        model->reset(); notes.reset(); st = st0;
        logits = nullptr;
        fed = 0; feeding = true;
        anchor = origin + base / steps_per_beat;
        n_phrase = 0;
    }

    void player_note(bool on, int pitch, int velocity, double at) {
        if (on) {
            generating = feeding = false;                 // the player takes over: the model falls silent
            if (n_phrase == 0) phrase_origin = at;
            if (n_phrase == MAX_PHRASE) {                 // keep the latest notes
                std::memmove(phrase, phrase + 1, sizeof(PlayedNote) * (MAX_PHRASE - 1));
                for (int q = 0; q < N_PITCHES; ++q)
                    if (held[q] > 0) --held[q];
                    else if (held[q] == 0) { held[q] = -1; sustained[q] = false; --n_held; }   // the oldest, still sounding, is forgotten
                --n_phrase;
            }
            if (held[pitch] >= 0) { phrase[held[pitch]].end = at; --n_held; sustained[pitch] = false; }   // struck again: the last one ends
            phrase[n_phrase] = {at, at + 0.25, pitch, velocity};
            held[pitch] = n_phrase++;
            ++n_held;
        } else if (held[pitch] >= 0 && pedal) {
            sustained[pitch] = true;                      // the key is up, the pedal holds the note: it ends when the pedal lifts
        } else if (held[pitch] >= 0) release(pitch, at);
    }

    void release(int pitch, double at) {
        phrase[held[pitch]].end = std::max(at, phrase[held[pitch]].start + 1e-3);
        held[pitch] = -1;
        sustained[pitch] = false;
        --n_held;
        last_release = at;
    }

    // The sustain pedal, as the tokenizer reads it in files: notes let go under it sound until it lifts.
    void player_pedal(bool down, double at) {
        pedal = down;
        if (!down) for (int q = 0; q < N_PITCHES; ++q) if (sustained[q]) release(q, at);
    }

    void run(uint32_t n_frames) {
        const uint32_t capacity = midi_out->atom.size;
        lv2_atom_forge_set_buffer(&forge, reinterpret_cast<uint8_t*>(midi_out), capacity);
        LV2_Atom_Forge_Frame seq;
        lv2_atom_forge_sequence_head(&forge, &seq, 0);
        read_controls();
        const int m = (int)std::lround(*mode);
        if (m != cur_mode) {                              // mode change: silence, then generate or listen
            stop_all(0);
            generating = feeding = false;
            n_phrase = n_held = 0;
            std::fill(held, held + N_PITCHES, -1);
            std::fill(sustained, sustained + N_PITCHES, false);
            pedal = false;
            if (plays(m) && speed > 0.0) new_piece(std::ceil(beat - 1e-9));
            cur_mode = m;
        }
        uint32_t done = 0;
        LV2_ATOM_SEQUENCE_FOREACH(control, e) {
            const uint32_t at = (uint32_t)std::min<int64_t>(std::max<int64_t>(e->time.frames, done), n_frames);
            play(done, at);
            done = at;
            if (e->body.type == uris.midi_MidiEvent && e->body.size >= 3) {
                const uint8_t* msg = reinterpret_cast<const uint8_t*>(e + 1);
                const uint8_t kind = msg[0] & 0xF0;
                if (cur_mode == 2 && kind == 0x90 && msg[2] > 0 && msg[1] < N_PITCHES) player_given(msg[1], (msg[0] & 0x0F) == 9, beat);
                else if (cur_mode == 1 && (kind == 0x90 || kind == 0x80) && msg[1] < N_PITCHES) {
                    if (generating) stop_all(at);                      // the player takes over
                    else if (feeding) notes.all_off(ev, NoteStream::MAX_SOUNDING);   // (the phrase's own notes never sounded)
                    player_note(kind == 0x90 && msg[2] > 0, msg[1], msg[2], beat);
                } else if (cur_mode == 1 && kind == 0xB0 && msg[1] == 64) player_pedal(msg[2] >= 64, beat);
            } else if (e->body.type == uris.atom_Object || e->body.type == uris.atom_Blank) {
                const auto* obj = reinterpret_cast<const LV2_Atom_Object*>(&e->body);
                if (obj->body.otype == uris.time_Position) position(obj, at);
            }
        }
        play(done, n_frames);
        lv2_atom_forge_pop(&forge, &seq);
        if (late_out) *late_out = (float)late;
        if (heard_out) *heard_out = accompanies() ? (float)heard : -1.0f;
        if (reaction_out) *reaction_out = (float)reaction;
    }

    void bar_beat_of(double b) { bar_beat = std::fmod(std::max(0.0, b), beats_per_bar); }

    double number(const LV2_Atom* a, double dflt) const {
        if (!a) return dflt;
        if (a->type == uris.atom_Float) return ((const LV2_Atom_Float*)a)->body;
        if (a->type == uris.atom_Double) return ((const LV2_Atom_Double*)a)->body;
        if (a->type == uris.atom_Int) return ((const LV2_Atom_Int*)a)->body;
        if (a->type == uris.atom_Long) return (double)((const LV2_Atom_Long*)a)->body;
        return dflt;
    }

    // time:Position from the host: tempo, transport and where it is (a jump or a restart starts a new piece)
    void position(const LV2_Atom_Object* obj, uint32_t frame) {
        const LV2_Atom *bar = nullptr, *in_bar = nullptr, *abs_beat = nullptr, *per_bar = nullptr, *unit = nullptr, *tempo = nullptr, *spd = nullptr;
        lv2_atom_object_get(obj, uris.time_bar, &bar, uris.time_barBeat, &in_bar, uris.time_beat, &abs_beat,
                            uris.time_beatsPerBar, &per_bar, uris.time_beatUnit, &unit, uris.time_beatsPerMinute, &tempo, uris.time_speed, &spd, 0);
        if (tempo) bpm = std::max(1.0, number(tempo, bpm));
        const int was_unit = beat_unit;
        if (per_bar) beats_per_bar = std::max(1.0, number(per_bar, beats_per_bar));
        if (unit) { const int u = (int)std::lround(number(unit, beat_unit)); if (u == 1 || u == 2 || u == 4 || u == 8 || u == 16) beat_unit = u; }
        double where = beat;
        if (abs_beat) where = number(abs_beat, beat);
        else if (bar && in_bar && per_bar) where = number(bar, 0) * number(per_bar, 4) + number(in_bar, 0);
        const double was = speed;
        if (spd) speed = number(spd, speed);
        const bool jumped = std::fabs(where - beat) > 1e-3;
        beat = where;
        bar_beat_of(in_bar ? number(in_bar, 0) : std::fmod(where, beats_per_bar));
        if (beat_time() && beat_unit != was_unit && speed > 0.0 && plays(cur_mode)) { stop_all(frame); new_piece(beat); return; }   // another beat unit: another tick
        if (speed <= 0.0 && was > 0.0) { stop_all(frame); generating = feeding = false; return; }
        if (speed > 0.0 && (was <= 0.0 || jumped) && plays(cur_mode)) {
            stop_all(frame);
            new_piece(std::ceil(beat - 1e-9));
        }
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
        std::unique_ptr<NativeGru> m(new NativeGru(path));
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

void activate(LV2_Handle h) {
    auto* p = static_cast<Plugin*>(h);
    p->cur_mode = -1;                                     // the first run() starts a piece (or listens)
    p->generating = p->feeding = false;
    p->notes.reset();
}

void run(LV2_Handle h, uint32_t n) { static_cast<Plugin*>(h)->run(n); }
void cleanup(LV2_Handle h) { delete static_cast<Plugin*>(h); }

const LV2_Descriptor descriptor = {MUSE_LV2_URI, instantiate, connect_port, activate, run, nullptr, cleanup, nullptr};
}  // namespace

extern "C" LV2_SYMBOL_EXPORT const LV2_Descriptor* lv2_descriptor(uint32_t index) { return index == 0 ? &descriptor : nullptr; }
