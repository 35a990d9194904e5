// Player: a model playing MIDI in time with a host (see muse.hpp). Every plugin format wraps this one class: the LV2
// plugin (lv2/), and VST3, CLAP and the JACK app through DPF. Nothing here allocates after the constructor.
#include "muse/muse.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace muse {

namespace {
// A band model's instruments (PlayerSettings::band, an index of these): who plays from the next piece on
const char* const BANDS[] = {"", "bass,drums", "bass", "drums", "piano,bass,drums", "guitar,bass,drums", "piano", "strings"};
constexpr int N_BANDS = sizeof(BANDS) / sizeof(BANDS[0]);
constexpr double REF_BPM = 120.0;        // the tempo an ms model's seconds are read at
constexpr int N_SHAPE = 6;
}  // namespace

struct Player::Impl {
    std::unique_ptr<StepModel> model;
    const Vocab& v;
    double rate;
    PlayerSettings set;
    MidiOut out = nullptr;
    void* user = nullptr;
    // host
    double bpm = REF_BPM, speed = 1.0, beat = 0.0;   // without a position from the host: 120 bpm, rolling
    double beats_per_bar = 4.0, bar_beat = 0.0;     // the host's bar: its beats, and where in it `beat` is
    int beat_unit = 4;                               // the note value of the host's beat (4: a quarter, 8: an eighth)
    // model
    Grammar grammar;                     // the tokenizer's grammar: it follows the stream (the player's phrase too)
    std::vector<Grammar> bands;          // the same with the musician's controls and each choice of instruments (made once)
    Grammar* shaped = nullptr;           // the one that says what may be sampled now
    Controls controls;                   // made once; Controls::set refills its table in place
    float shape_now[N_SHAPE] = {-1, -1, -1, -1, -1, -1};
    GrammarState st, st0;
    Sampler sampler;
    uint64_t seed;
    NoteStream notes;
    const float* logits = nullptr;
    double steps_per_beat;
    double anchor = 0.0;                 // the host beat of the piece's step 0
    bool generating = false;
    float scratch[MAX_VOCAB];
    bool mask[MAX_VOCAB];
    NoteEvent ev[2 + NoteStream::MAX_SOUNDING];
    int channel_of[N_PROGRAMS];          // the MIDI channel of each program (multi-track models), assigned as programs first play
    uint8_t sounding[16][N_PITCHES] = {};   // the model's voices sounding on each MIDI channel and key
    int next_channel = 0;
    // continue mode
    int cur_mode = -1;
    PlayedNote phrase[MAX_PHRASE];
    int n_phrase = 0, held[N_PITCHES], n_held = 0;   // held: the phrase's note a pitch sounds (key down, or up under the pedal)
    bool pedal = false, sustained[N_PITCHES];        // the player's sustain pedal (CC64), and the notes only it holds
    double phrase_origin = 0.0, last_release = -1e9;
    std::vector<int> feed;               // the phrase's tokens, fed a few per block (capacity reserved here)
    size_t fed = 0;
    bool feeding = false;
    uint32_t late = 0;
    // accompany mode: the player's notes not yet in the stream, and a move the model sampled that waits for its time
    struct Given { double tick; int64_t at; int id; };   // where it sounded (ticks), the tick it is heard at the earliest, its CTRL id
    Given given[MAX_GIVEN];
    int n_given = 0, waiting = -1;
    int64_t waiting_to = 0;
    uint32_t heard = 0;
    double reaction = 0.0;

    Impl(std::unique_ptr<StepModel> m, double sr, uint64_t seed_)
        : model(std::move(m)), v(model->vocab()), rate(sr), grammar(v), sampler(seed_), seed(seed_), notes(v) {
        if (v.size() > MAX_VOCAB) throw Error("a vocabulary of " + std::to_string(v.size()) + " ids: the player holds at most " + std::to_string(MAX_VOCAB));
        for (int i = 0; i < N_BANDS; ++i) {              // a single stream has one: its instruments are not chosen
            bands.emplace_back(v);
            if (i && v.multi) bands.back().set_instruments(std::string(BANDS[i]));
            if (!v.multi) break;
        }
        shaped = &bands[0];
        st0 = grammar.initial();
        st = st0;
        steps_per_beat = 60000.0 / (REF_BPM * v.time_shift_ms);
        feed.reserve(8 * MAX_PHRASE + 4096);
        std::fill(channel_of, channel_of + N_PROGRAMS, -1);
        std::fill(held, held + N_PITCHES, -1);
        std::fill(sustained, sustained + N_PITCHES, false);
    }

    double beat_of(int64_t step) const { return anchor + step / steps_per_beat + window(); }
    // Accompany mode: how long (in host beats) the model's notes at a tick wait for the player's: a note of the player's
    // up to this late is heard on its own tick, and the model's notes sound this much after theirs
    double window() const { return cur_mode == 2 ? std::max(0.0f, std::min(50.0f, set.listen_ms)) * bpm / 60000.0 : 0.0; }
    bool beat_time() const { return v.beat; }
    bool accompanies() const { return v.conditioning && v.beat; }
    // Whether mode `m` plays on its own from the transport's start: generate, and accompany with a model that can (one
    // trained without conditioning stays silent in mode 2, and heard() says -1)
    bool plays(int m) const { return m == 0 || (m == 2 && accompanies()); }
    // Beat time: ticks a host beat, and the METER of the host's time signature (-1: one the vocabulary lacks)
    double ticks_per_beat() const { return v.resolution * 4.0 / beat_unit; }
    int host_meter() const {
        for (int i = 0; i < N_METERS; ++i)
            if (v.meters[i][1] == beat_unit && std::fabs(v.meters[i][0] - beats_per_bar) < 1e-6) return i;
        return -1;
    }
    int host_tempo() const { return v.tempo_bin(bpm * 4.0 / beat_unit); }   // the TEMPO nearest the host's, in quarter notes a minute
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
        const uint8_t msg[3] = {status, a, b};
        if (out) out(user, frame, msg);
    }

    int channel(const NoteEvent& n, uint32_t frame) {
        if (n.drum) return 9;
        if (!v.multi) return 0;
        int& c = channel_of[n.program];
        if (c < 0) {                                     // first note of this program: a channel and its program change
            c = next_channel;
            if (next_channel < 15) next_channel += next_channel == 8 ? 2 : 1;   // skip 9 (drums); beyond 15 share the last
            midi(frame, (uint8_t)(0xC0 | c), (uint8_t)n.program, 0);
        }
        return c;
    }

    // A note on or off as MIDI. Two of the model's voices can meet on one channel and key (programs past the 15th share
    // the last channel), which MIDI cannot hold twice: the key is struck again (off, then on) and sounds until the last
    // voice on it ends. (Found by fuzz_player: a band that had played 16 programs sent a second note-on on a sounding key.)
    void note(uint32_t frame, int ch, int pitch, bool on, int velocity) {
        uint8_t& n = sounding[ch][pitch];
        if (on) {
            if (n) midi(frame, (uint8_t)(0x80 | ch), (uint8_t)pitch, 0);
            n = (uint8_t)std::min(255, n + 1);
            midi(frame, (uint8_t)(0x90 | ch), (uint8_t)pitch, (uint8_t)std::max(1, std::min(127, velocity)));
        } else if (n && --n == 0) midi(frame, (uint8_t)(0x80 | ch), (uint8_t)pitch, 0);
    }

    void emit(const NoteEvent& n, double b0, uint32_t f0, uint32_t f1) {
        const uint32_t fr = frame_of(beat_of(n.step), b0, f0, f1);
        note(fr, channel(n, fr), n.pitch, n.on, n.velocity);
    }

    // the note-offs due at or before `step`, at their frames
    void emit_offs(int64_t step, double b0, uint32_t f0, uint32_t f1) {
        const int n = notes.pop_offs(step, ev, NoteStream::MAX_SOUNDING);
        for (int i = 0; i < n; ++i) emit(ev[i], b0, f0, f1);
    }

    void stop_all(uint32_t frame) {                       // every sounding note off at `frame`
        const int k = notes.all_off(ev, NoteStream::MAX_SOUNDING);
        for (int i = 0; i < k; ++i) note(frame, channel(ev[i], frame), ev[i].pitch, false, 0);
    }

    // A new piece from <BOS>, its step 0 on beat `at` (beat time: the host's first bar line from there).
    void new_piece(double at) {
        model->reset();
        notes.reset();
        st = st0;                                        // the same size: no allocation
        grammar.advance(st, BOS);
        logits = model->step(BOS);
        n_given = 0; waiting = -1;
        const int b = set.band;                          // the instruments chosen: from this piece on (its header names them)
        shaped = &bands[b >= 0 && b < (int)bands.size() ? b : 0];
        if (beat_time()) { steps_per_beat = ticks_per_beat(); at = next_bar(std::max(at, beat)); }
        anchor = at;
        generating = true;
    }

    // The controls, read each block: a move refills the controls' table (no allocation); controls that leave no note to
    // play are ignored until they change.
    void read_controls() {
        bool moved = false;
        for (int i = 0; i < N_SHAPE; ++i) moved |= set.shape[i] != shape_now[i];
        if (!moved) return;
        std::copy(set.shape, set.shape + N_SHAPE, shape_now);
        auto whole = [](float x) { return (int)std::lround(x); };
        controls.set(whole(shape_now[0]), whole(shape_now[1]) - 1, whole(shape_now[2]), whole(shape_now[3]), whole(shape_now[4]), whole(shape_now[5]));
        for (Grammar& g : bands) g.try_set_controls(controls);
    }

    int sample() {
        shaped->allowed(st, mask);
        if (std::none_of(mask, mask + v.size(), [](bool b) { return b; })) grammar.allowed(st, mask);   // controls that moved mid-note: let the stream go on
        const int hm = v.beat ? host_meter() : -1;
        if (hm >= 0 && (st.meter < 0 || st.prev == v.bar())) {   // the model's bars are the host's: its METER is the host's
            const bool must = st.meter < 0 || st.meter != hm;
            if (must && mask[v.meter() + hm]) { std::fill(mask, mask + v.size(), false); mask[v.meter() + hm] = true; }
            else if (!must) std::fill(mask + v.meter(), mask + v.tempo(), false);
        }
        const int V = v.size();
        const float bias = std::log(std::max(0.05f, set.density));
        if (cur_mode == 2 && std::count(mask, mask + V, true) > 1) mask[EOS] = false;   // accompanying: the piece goes on with the player
        for (int i = 0; i < V; ++i) {
            const bool note = (i >= NOTE_ON && i < NOTE_OFF) || (v.multi && i >= v.drum() && i < v.ahead());
            scratch[i] = logits[i] + (note ? bias : 0.0f);
        }
        SamplingParams sp;
        sp.temperature = std::max(0.05f, set.temperature);
        sp.top_p = std::min(1.0f, std::max(0.05f, set.top_p));
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
            if (live && (v.is_shift(tok) || tok == v.bar())) {
                const int64_t to = tok == v.bar() ? st.bar_start + st.bar_len : st.t + tok - TIME_SHIFT + 1;
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
    void put(int tok, double b0, uint32_t f0, uint32_t f1) {   // one token into the stream: grammar, notes, model
        grammar.advance(st, tok);
        const int n = notes.push(tok, ev);
        for (int i = 0; i < n; ++i) emit(ev[i], b0, f0, f1);
        logits = model->step(tok);
    }
    bool force(int tok, double b0, uint32_t f0, uint32_t f1) {   // a token the loop writes itself, if the stream allows it here
        bool ok[MAX_VOCAB];
        grammar.legal(st, ok);
        if (tok < 0 || tok >= v.size() || !ok[tok]) return false;
        put(tok, b0, f0, f1);
        return true;
    }
    // The tick the first waiting note may be written at: the tick nearest where it sounded, unless that tick's notes are
    // already due to sound (the listen window passed) or the model has played (or heard) something there: then the next.
    int64_t due() const {
        if (n_given == 0) return INT64_MAX;
        const int p = st.prev;
        const bool fresh = st.cprev < 0 && (v.is_shift(p) || p == v.bar() || v.is_meter(p) || v.is_tempo(p));
        return std::max<int64_t>(given[0].at, st.t + (fresh ? 0 : 1));
    }
    // Time forward to tick `c` as the tokenizer writes it: bar lines (with the host's METER where it changes) and shifts.
    void move_to(int64_t c, double b0, uint32_t f0, uint32_t f1) {
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
            if (ok[v.ahead()]) { emit_offs(notes.step(), b0, f0, f1); hear(b0, f0, f1); return WROTE; }
        }
        return SAMPLE;
    }
    void player_given(int pitch, bool drum, double at) {      // a note the player plays, to be heard at the next tick it may be
        if (!generating || !accompanies() || n_given == MAX_GIVEN) return;
        if (drum && !(v.multi && pitch >= DRUM_LOW && pitch <= DRUM_HIGH)) return;
        const double tick = (at - anchor) * steps_per_beat;            // (the stream's tick 0 sounds at anchor + window)
        const int64_t earliest = (int64_t)std::ceil((at - anchor - window()) * steps_per_beat - 1e-9);
        given[n_given++] = {tick, std::max<int64_t>((int64_t)std::nearbyint(tick), earliest), v.control_of(pitch, drum)};
    }

    // ------------------------------------------------------------------------------------------- continue mode
    void start_answer(double now) {
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

    // ------------------------------------------------------------------------------------------- the host's events
    void begin(const PlayerSettings& s) {
        set = s;
        auto sane = [](float x, float lo, float hi, float dflt) { return std::isfinite(x) ? std::min(hi, std::max(lo, x)) : dflt; };
        set.temperature = sane(s.temperature, 0.05f, 100.0f, 1.0f); set.top_p = sane(s.top_p, 0.05f, 1.0f, 0.95f);
        set.density = sane(s.density, 0.05f, 20.0f, 1.0f); set.listen_ms = sane(s.listen_ms, 0.0f, 50.0f, 20.0f);
        for (int i = 0; i < N_SHAPE; ++i) set.shape[i] = sane(s.shape[i], -1000.0f, 1000.0f, i == 3 ? 127.0f : 0.0f);
        read_controls();
        if (s.mode != cur_mode) {                         // mode change: silence, then generate or listen
            stop_all(0);
            generating = feeding = false;
            n_phrase = n_held = 0;
            std::fill(held, held + N_PITCHES, -1);
            std::fill(sustained, sustained + N_PITCHES, false);
            pedal = false;
            cur_mode = s.mode;
            if (plays(cur_mode) && speed > 0.0) new_piece(std::ceil(beat - 1e-9));
        }
    }

    void midi_in(uint32_t at, const uint8_t* msg, uint32_t size) {
        if (size < 3) return;
        const uint8_t kind = msg[0] & 0xF0;
        if (cur_mode == 2 && kind == 0x90 && msg[2] > 0 && msg[1] < N_PITCHES) player_given(msg[1], (msg[0] & 0x0F) == 9, beat);
        else if (cur_mode == 1 && (kind == 0x90 || kind == 0x80) && msg[1] < N_PITCHES) {
            if (generating) stop_all(at);                      // the player takes over
            else if (feeding) notes.all_off(ev, NoteStream::MAX_SOUNDING);   // (the phrase's own notes never sounded)
            player_note(kind == 0x90 && msg[2] > 0, msg[1], msg[2], beat);
        } else if (cur_mode == 1 && kind == 0xB0 && msg[1] == 64) player_pedal(msg[2] >= 64, beat);
    }

    // The host's transport: tempo, where it is, whether it rolls (a jump or a restart starts a new piece)
    void position(uint32_t frame, const HostTime& t) {
        auto has = [](double x) { return std::isfinite(x); };         // NaN: not said; an infinity is not a position either
        if (has(t.bpm)) bpm = std::min(960.0, std::max(1.0, t.bpm));
        const int was_unit = beat_unit;
        if (has(t.beats_per_bar)) beats_per_bar = std::min(64.0, std::max(1.0, t.beats_per_bar));
        if (has(t.beat_unit)) { const int u = (int)std::lround(t.beat_unit); if (u == 1 || u == 2 || u == 4 || u == 8 || u == 16) beat_unit = u; }
        double where = beat;
        if (has(t.beat)) where = t.beat;
        else if (has(t.bar) && has(t.bar_beat) && has(t.beats_per_bar)) where = t.bar * beats_per_bar + t.bar_beat;
        where = std::min(1e9, std::max(-1e9, where));                  // (a billion beats: 15 years at 120 bpm)
        const double was = speed;
        if (has(t.speed)) speed = std::min(16.0, t.speed);            // below 0 (rewinding) plays as stopped
        const bool jumped = std::fabs(where - beat) > 1e-3;
        beat = where;
        bar_beat = std::fmod(std::max(0.0, has(t.bar_beat) ? t.bar_beat : std::fmod(where, beats_per_bar)), beats_per_bar);
        if (beat_time() && beat_unit != was_unit && speed > 0.0 && plays(cur_mode)) { stop_all(frame); new_piece(beat); return; }   // another beat unit: another tick
        if (speed <= 0.0 && was > 0.0) { stop_all(frame); generating = feeding = false; return; }
        if (speed > 0.0 && (was <= 0.0 || jumped) && plays(cur_mode)) {
            stop_all(frame);
            new_piece(std::ceil(beat - 1e-9));
        }
    }
};

Player::Player(std::unique_ptr<StepModel> model, double sample_rate, uint64_t seed) {
    if (!model) throw Error("Player: no model");
    if (!(sample_rate > 0.0)) throw Error("Player: a sample rate above 0, got " + std::to_string(sample_rate));
    p_.reset(new Impl(std::move(model), sample_rate, seed));
}
Player::~Player() = default;
const char* const* Player::bands(int* n) { if (n) *n = N_BANDS; return BANDS; }
const StepModel& Player::model() const { return *p_->model; }
bool Player::accompanies() const { return p_->accompanies(); }
void Player::activate() {
    p_->cur_mode = -1;                                   // the first block starts a piece (or listens)
    p_->generating = p_->feeding = false;
    p_->notes.reset();
    std::memset(p_->sounding, 0, sizeof(p_->sounding));   // (a host silences its synth on deactivation)
    std::fill(p_->channel_of, p_->channel_of + N_PROGRAMS, -1);   // the programs' channels assigned again as they first play
    p_->next_channel = 0;
    p_->sampler.seed(p_->seed);
}
void Player::begin(const PlayerSettings& s, MidiOut out, void* user) { p_->out = out; p_->user = user; p_->begin(s); }
void Player::play(uint32_t f0, uint32_t f1) { p_->play(f0, f1); }
void Player::midi_in(uint32_t frame, const uint8_t* msg, uint32_t size) { p_->midi_in(frame, msg, size); }
void Player::position(uint32_t frame, const HostTime& t) { p_->position(frame, t); }
uint32_t Player::late() const { return p_->late; }
int Player::heard() const { return p_->accompanies() ? (int)p_->heard : -1; }
double Player::reaction() const { return p_->reaction; }

}  // namespace muse
