// Nomad Muse Trainer: a C++17 host library for the exported models.
//
//  - OnnxStream: streams tokens through muse_quantized.onnx (or the transformer) with the state kept
//    between calls, in buffers allocated once: a step allocates nothing in this library.
//  - NativeGru: the GRU step computed here from the same file, without onnxruntime, for the audio thread.
//  - MarkovModel / MarkovStream: read baseline.bin as documented in nbs/02_markov.ipynb and give
//    next-token probabilities, for hosts that want no neural runtime at all.
//  - Grammar: the tokenizer's grammar (nbs/00_tokenizer.ipynb), so sampling only emits canonical streams.
//  - Sampler: temperature, top-k and top-p over a masked distribution, with preallocated scratch space.
//  - decode_notes / write_midi: tokens to a standard MIDI file.
//
// Token ids (nbs/00_tokenizer.ipynb): 0-3 specials, 4-131 NOTE_ON, 132-259 NOTE_OFF, then TIME_SHIFT_1..S,
// VELOCITY_1..V and DURATION_1..D. The bins S, V, D (and the duration table) are the vocabulary's settings, read
// from vocab.json, from a model's metadata or from a baseline.bin's header: `Vocab`. The defaults give 316 ids:
// 260-291 TIME_SHIFT_1..32, 292-299 VELOCITY_1..8, 300-315 DURATION_1..16. A multi-track vocabulary (`tracks: multi`)
// adds PROGRAM_0..127 and DRUM_27..87 after the durations (505 ids by default): one stream for a band. Beat time adds
// BAR, METER and TEMPO ids (and a band's header); conditioning adds AHEAD and CTRL ids at the end (Vocab::ahead()).
#pragma once
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace muse {

constexpr int PAD = 0, BOS = 1, EOS = 2, UNK = 3;
constexpr int NOTE_ON = 4, NOTE_OFF = 132, TIME_SHIFT = 260, N_PITCHES = 128;
constexpr int MAX_VOCAB = 1024;                // ids fit in 10 bits (the .bin packs contexts in 9 bits up to 512 ids, else 10); buffers are this size
constexpr int N_PROGRAMS = 128, DRUM_LOW = 27, DRUM_HIGH = 87, N_DRUMS = DRUM_HIGH - DRUM_LOW + 1;   // tracks: multi
constexpr int N_METERS = 27, N_TEMPOS = 32;    // time_unit: beat: METER_n/d and TEMPO_b (nomad_muse_trainer.vocab METERS, TEMPOS)

// What a file may have or claim before a reader refuses it: every bound the library's readers hold a file to, in one
// place; a file past one is refused with an Error before anything that size is allocated (examples/cpp/README.md,
// Fuzzing). The Python readers' are nomad_muse_trainer.core.limits (nbs/00_core.ipynb, "What a file may be"), the
// same numbers where both read a kind of file (its test reads this header).
namespace limits {
constexpr uint64_t MODEL_BYTES = 1ull << 30;  // a model file (.onnx): 1 GB (the zoo's are under 3 MB; the seed's 1.1M-parameter transformer in fp32 about 5 MB)
constexpr uint64_t BASELINE_BYTES = 8ull << 30;   // a Markov baseline.bin: 8 GB (order 5 on the band's 3.6M training tokens: 38 MB)
constexpr uint64_t VOCAB_BYTES = 16u << 20;   // a vocab.json: 16 MB (the largest layout's is 11 KB)
constexpr int VOCAB_NUMBER = 1 << 20;         // a number in a vocabulary's settings (a bin, a resolution, a duration in steps)
constexpr size_t MIDI_BYTES = 64u << 20;      // a MIDI file: 64 MB (the largest in the Lakh corpus is under 2 MB)
constexpr uint32_t MIDI_TRACKS = 4096;        // its tracks
constexpr size_t MIDI_NOTES = 4u << 20;       // its notes: 4 million
constexpr int64_t MIDI_TICKS = 1LL << 40;     // the tick of its last event (about 70 years at 480 ticks a quarter and 120 bpm)
constexpr int64_t MIDI_QUARTERS = 1 << 16;    // a note's onset on the beat grid: 65,536 quarter notes (4.5 hours at 240 bpm)
constexpr size_t MIDI_BARS = 1u << 17;        // the bars a piece spans on the beat grid (65,536 quarters of 1/8 bars)
}  // namespace limits

// A user-facing failure (missing file, wrong vocabulary, damaged .bin): the message says what and where.
struct Error : std::runtime_error { using std::runtime_error::runtime_error; };

// The sha256 recorded in a vocab.json (checked to be 64 hex characters).
std::string read_vocab_sha256(const std::string& vocab_json_path);

// Beat time's METER_n/d (1-12/4, 1-12/8, 2/2, 3/2, 4/2) and TEMPO_b (40-240 bpm, a semitone apart), as the Python vocab's.
std::array<std::array<int, 2>, N_METERS> default_meters();
std::array<int, N_TEMPOS> default_tempos();

// A vocabulary's layout and bins. The default is the 316-id layout.
struct Vocab {
    bool performance = false;                    // NOTE_ON + NOTE_OFF (else NOTE_ON + DURATION)
    bool multi = false;                          // tracks: multi (PROGRAM and DRUM ids after the durations)
    bool beat = false;                           // time_unit: beat: steps are ticks of a quarter note; BAR, METER and TEMPO ids after the durations
    bool header = false;                         // a band's header (HEADER_DRUMS, HEADER_END) before the PROGRAM ids: beat-time bands
    int resolution = 0;                          // beat: ticks a quarter note
    int time_shift_ms = 20, n_shifts = 32, n_velocities = 8, n_durations = 16;
    std::vector<int> duration_steps{1, 2, 3, 4, 5, 7, 10, 13, 18, 25, 35, 50, 70, 100, 140, 200};   // per DURATION bin, in steps (beat: ticks)
    std::array<std::array<int, 2>, N_METERS> meters = default_meters();   // beat: each METER's (numerator, denominator)
    std::array<int, N_TEMPOS> tempos = default_tempos();                  // beat: each TEMPO's bpm
    int velocity() const { return TIME_SHIFT + n_shifts; }           // the first VELOCITY id
    int duration() const { return velocity() + n_velocities; }       // the first DURATION id
    int duration_end() const { return duration() + n_durations; }    // one past the last DURATION id
    int bar() const { return beat ? duration_end() : -1; }           // BAR (beat; -1 otherwise)
    int meter() const { return beat ? bar() + 1 : -1; }              // the first METER id (beat)
    int tempo() const { return beat ? meter() + N_METERS : -1; }     // the first TEMPO id (beat)
    int header_drums() const { return header ? duration_end() + (beat ? 1 + N_METERS + N_TEMPOS : 0) : -1; }
    int header_end() const { return header ? header_drums() + 1 : -1; }
    int program() const { return duration_end() + (beat ? 1 + N_METERS + N_TEMPOS : 0) + (header ? 2 : 0); }   // the first PROGRAM id (multi; = size() otherwise)
    int drum() const { return program() + (multi ? N_PROGRAMS : 0); } // the first DRUM id (multi; = ahead() otherwise)
    // conditioning (beat time): a given part's notes as controls, after the layout's last id: AHEAD_0..max_ahead (ticks
    // before they sound), CTRL_NOTE_0..127 and, for a band, CTRL_DRUM_27..87 (nomad_muse_trainer.tokenizer, nbs/01b)
    bool conditioning = false;
    int max_ahead = 0;                           // conditioning: the most ticks ahead (4 beats)
    int ahead() const { return drum() + (multi ? N_DRUMS : 0); }      // the first AHEAD id (= size() without conditioning)
    int ctrl() const { return ahead() + (conditioning ? max_ahead + 1 : 0); }       // the first CTRL_NOTE id
    int ctrl_drum() const { return ctrl() + (conditioning ? N_PITCHES : 0); }       // the first CTRL_DRUM id (a band)
    int size() const { return ctrl_drum() + (conditioning && multi ? N_DRUMS : 0); }
    bool is_control(int t) const { return conditioning && t >= ahead() && t < size(); }   // AHEAD or CTRL: never sampled, never a note
    int control_of(int pitch, bool drum) const { return drum ? ctrl_drum() + pitch - DRUM_LOW : ctrl() + pitch; }   // the CTRL id of a given note
    bool is_shift(int t) const { return t >= TIME_SHIFT && t < velocity(); }
    bool is_duration(int t) const { return t >= duration() && t < duration_end(); }
    bool is_meter(int t) const { return beat && t >= meter() && t < tempo(); }
    bool is_tempo(int t) const { return beat && t >= tempo() && t < tempo() + N_TEMPOS; }
    int bar_ticks(int meter_index) const { return meters[meter_index][0] * 4 * resolution / meters[meter_index][1]; }
    int velocity_value(int bin) const;           // bin 1..V -> the MIDI velocity in the middle of its band (8 bins: 8, 24, .., 120)
    int default_velocity_bin() const;            // the bin of velocity 72, what a note gets before any VELOCITY token
    // The tokenizer's bins (nomad_muse_trainer.vocab): a MIDI velocity's bin 1..V; the DURATION bin 1..D nearest `steps`
    // (ties to the shorter) among those no longer than `max_steps` (the steps until its pitch starts again); the TEMPO
    // index nearest `bpm` on a log scale.
    int velocity_bin(int velocity) const;
    int duration_bin(double steps, double max_steps) const;
    int tempo_bin(double bpm) const;
    // The settings of a vocab.json (its text, or an ONNX model's `vocab_json` metadata); `where` names it in errors.
    static Vocab parse(const std::string& vocab_json, const std::string& where);
    static Vocab read(const std::string& vocab_json_path);
};

// A token's name, as in vocab.json ("NOTE_ON_60", "TIME_SHIFT_4", ...).
std::string token_name(int id, const Vocab& v = Vocab{});

// ---------------------------------------------------------------------------------------------- grammar
struct GrammarState {
    int phase = 0, prev = -1, vel = 0, step_on = -1, step_off = -1, n_notes = 0;
    bool on_in_step = false;
    int64_t t = 0;                               // time step (duration mode bookkeeping)
    std::array<bool, N_PITCHES> sounding{};      // performance mode
    std::vector<int64_t> busy = std::vector<int64_t>(N_PITCHES, 0);   // duration mode: step until which each pitch sounds
                                                 // (multi: per program, busy[program * 128 + pitch]; sized by Grammar::initial)
    int prog = -1, step_prog = -1, step_drum = -1;   // multi: the program notes go to; the last program and drum key of this step
    bool head = false, band_drums = false;       // a band's header: inside it; the drums it named
    std::array<bool, N_PROGRAMS> band{};         // the programs it named
    int bars = 0, meter = -1, tempo = -1;        // beat: bars begun, the bar's METER and the TEMPO (indices; -1 before them)
    int64_t bar_start = 0, bar_len = 0;          // beat: where the bar began and its length, in ticks
    bool tempo_here = false;                     // beat: a TEMPO at this position already
    int64_t win = -1;                            // the beat of the last onset (as Controls' density cap counts beats)
    int win_notes = 0;                           // and the onsets in it
    int cprev = -1, cahead = -1, n_ctrl = 0;     // conditioning: the control id just before (else -1), its group's ticks ahead, controls so far
};

// What a musician asks of the sampler with no retraining (the Python grammar's Controls), applied by the grammar's mask:
// a scale (only its pitch classes may start), a pitch range per instrument, a polyphony cap (pitched notes sounding at
// once) and a density cap (onsets, drum hits too, in one beat: beat time's beats of the bar, ms streams' half seconds).
struct Controls {
    std::vector<uint8_t> pitch_ok = std::vector<uint8_t>((size_t)N_PROGRAMS * N_PITCHES, 1);   // [program * 128 + pitch]
    int polyphony = 0, density = 0;              // 0: no cap
    std::string scale, pitch_range;              // as given (for messages)
    int tonic = 0, mode = -1, low = 0, high = N_PITCHES - 1;   // as set() gives them (describe() says these without words)
    // From a musician's words: a scale such as "D dorian" (empty: any), ranges "lo-hi" or "bass:E1-G3, piano:C3-C6"
    // (empty: any; names only when `multi`), the caps (0: none). An Error, worded as Python's, for what it cannot read.
    static Controls parse(const std::string& scale, const std::string& pitch_range, int polyphony, int density, bool multi);
    // From numbers, as a plugin's parameters give them: a scale (`tonic` 0-11, `mode` an index of scale_names(); -1:
    // any pitch class), one range `low`-`high` for every instrument, the caps. The table is reused: no allocation, so a
    // plugin may call it on its audio thread when a parameter moves.
    void set(int tonic, int mode, int low, int high, int polyphony_cap, int density_cap);
    bool any() const;                            // whether anything is asked at all
    std::string describe() const;                // "Controls(scale 'D dorian', at most 3 sounding)"
};
// The scales Controls knows, in the Python SCALES' order (a plugin's mode parameter is an index of these).
const std::vector<std::string>& scale_names();
// A MIDI pitch from a number (0-127) or a note name with its octave: C4 = 60, F#2 = 42, Bb-1 = 10.
int parse_pitch(const std::string& s);
// The pitch classes (C first) of a scale such as "D dorian", "F# minor", "Bb blues" or "G" (major).
std::array<bool, 12> parse_scale(const std::string& spec);
// Which pitches each program may play, [program * 128 + pitch]: a range for all, or per instrument (later ranges win).
std::vector<uint8_t> parse_ranges(const std::string& spec, bool multi);

class Grammar {
public:
    explicit Grammar(const Vocab& v) : v_(v), perf_(v.performance) { prog_ok_.fill(true); beat_steps_ = density_beat(v_); }
    explicit Grammar(bool performance = false) : perf_(performance) { v_.performance = performance; prog_ok_.fill(true); beat_steps_ = density_beat(v_); }   // the default layout
    // Multi-track vocabularies: only these programs (and drums, if `drums`) may play; an Error for a single-stream one.
    void set_instruments(const std::vector<int>& programs, bool drums);
    // The same from a spec such as "bass,drums,0" (Python's Grammar(instruments='...')): a band's header then names one
    // program a part (the model picks within a family), then HEADER_DRUMS if the drums are named.
    void set_instruments(const std::string& spec);
    // A scale, pitch ranges and caps on what may start (Python's Grammar(controls=...)); an Error if they leave no note to
    // play for the instruments chosen. clear_controls() gives the tokenizer's grammar back.
    void set_controls(const Controls& c);
    // The same without an exception: false (and no controls) where they leave nothing to play. No allocation once this
    // grammar has held controls made by Controls::set (the audio thread's case).
    bool try_set_controls(const Controls& c) noexcept;
    void clear_controls() { has_ctl_ = false; }
    bool has_controls() const { return has_ctl_; }
    GrammarState initial() const;
    // The ids a model may sample next (never a control); no allocation.
    void allowed(const GrammarState& st, bool* mask /*[vocab().size()]*/) const;
    // Conditioning: the control ids that may come next (a group AHEAD_k CTRL.. opens wherever a note may start; in a group
    // its CTRL ids rising, or the tick's next group), and every legal id (allowed | insertable). No allocation.
    void insertable(const GrammarState& st, bool* mask) const;
    void legal(const GrammarState& st, bool* mask) const;
    // Where a generated part stops (Python's Grammar.until / ring, beat time): no time moves past `tick` and, unless
    // `ring`, no note of the model's sounds past it (a fill ends on its span's last bar line). clear_until() lifts it.
    void set_until(int64_t tick, bool ring = false);
    void clear_until() { until_ = -1; }
    int64_t until() const { return until_; }
    bool advance(GrammarState& st, int tok) const;                       // false (state untouched) if `tok` is not legal here
    int check(const std::vector<int>& ids) const;                        // first illegal position, or -1
    bool performance() const { return perf_; }
    const Vocab& vocab() const { return v_; }
private:
    void step(GrammarState& st, int tok) const;
    void allowed_multi(const GrammarState& st, bool* mask) const;
    void allowed_single(const GrammarState& st, bool* mask) const;
    bool allowed_opening(const GrammarState& st, bool* mask) const;     // a band's header, beat time's first BAR, METER, TEMPO
    void beat_rules(const GrammarState& st, bool* mask) const;
    void until_rules(const GrammarState& st, bool* mask) const;
    int prev_of(const GrammarState& st) const { return st.cprev >= 0 ? v_.duration() : st.prev; }   // after controls: as after a whole note
    bool prog_ok(const GrammarState& st, int p) const { return prog_ok_[p] && (!v_.header || st.band[p]); }
    bool drums_ok(const GrammarState& st) const { return drums_ok_ && (!v_.header || st.band_drums); }
    bool controls_leave_notes() const;
    const uint8_t* pitch_row(int program) const { return ctl_.pitch_ok.data() + (size_t)(v_.multi ? program : 0) * N_PITCHES; }
    bool room(const GrammarState& st) const;                              // the caps leave room for a pitched note now
    bool onset_room(const GrammarState& st) const;                        // the density cap leaves room for an onset now
    int64_t window(const GrammarState& st, int64_t t) const;              // the beat `t` falls in, as the density cap counts
    void landings(const GrammarState& st, int n, bool* out) const;        // shifts of 1..n: something may start where each lands
    void count_onset(GrammarState& st) const;
    Vocab v_;
    bool perf_;
    std::array<bool, N_PROGRAMS> prog_ok_{};
    bool drums_ok_ = true;
    std::vector<std::vector<int>> parts_;        // a spec's parts, rising: the header's programs in turn
    Controls ctl_;
    bool has_ctl_ = false, chosen_ = false;      // chosen_: set_instruments was called (the error names them)
    int beat_steps_ = 1;                         // the density cap's beat in steps (every grammar counts onsets in it)
    int64_t until_ = -1;                         // set_until: the tick a generated part stops at (-1: none)
    bool ring_ = false;
    static int density_beat(const Vocab& v);     // beat time: the resolution; ms: half a second (a beat at 120 bpm)
};

// The instruments a spec such as "bass,drums", "piano" or "0,33,drums" names (General MIDI program numbers, the family
// names of the Python `GM_FAMILIES`/`FAMILY_ALIASES`, each its 8 programs, and drums): programs in `programs`, drums in `drums`.
// An Error if unknown. (Full General MIDI names are Python's only.)
void parse_instruments(const std::string& spec, std::vector<int>& programs, bool& drums);
// The parts a spec names, each the programs it may be (a program alone, a family's 8), and the drums.
void parse_instrument_groups(const std::string& spec, std::vector<std::vector<int>>& groups, bool& drums);

// Close a legal prefix into a whole piece (the Python `complete`): cut at <EOS>, or drop dangling tokens,
// switch sounding notes off (performance mode) and append <EOS>. A prefix with no note yet gives <BOS><EOS>, the
// empty piece, which the grammar does not accept (there is nothing to play).
std::vector<int> complete(const Grammar& g, const std::vector<int>& ids);

// ---------------------------------------------------------------------------------------------- sampling
struct SamplingParams { float temperature = 1.0f; int top_k = 0; float top_p = 1.0f; };

class Sampler {
public:
    explicit Sampler(uint64_t seed) : rng_(seed) {}
    void seed(uint64_t s) { rng_.seed(s); }        // start the draws over (no allocation)
    // Draw an id in 0..n-1 from logits (float) or probabilities (double) restricted to `mask`;
    // temperature <= 0 is greedy. No allocation. Returns -1 if no id is allowed.
    int sample(const float* logits, const bool* mask, int n, const SamplingParams& p);
    int sample(const double* probs, const bool* mask, int n, const SamplingParams& p);
private:
    int draw(int n, const SamplingParams& p);
    std::mt19937_64 rng_;
    std::array<double, MAX_VOCAB> q_{};
    std::array<int, MAX_VOCAB> idx_{};
};

// ---------------------------------------------------------------------------------------------- Markov .bin
class MarkovModel {
public:
    static constexpr int MAX_ORDER = 6, N_POSITIONS = 48;
    // Reads and validates `path` (size, magic, version 1 to 3, CRC32, sizes; vocab sha256 if `expect_sha` is not empty).
    // Version 2 records the vocabulary's layout, version 3 also a band header and beat time (and packs contexts in 10 bits
    // an id over 512 ids); version 1 files have the default layout.
    explicit MarkovModel(const std::string& path, const std::string& expect_sha = "");
    MarkovModel(const MarkovModel&) = delete;             // the tables point into the file's bytes
    MarkovModel& operator=(const MarkovModel&) = delete;
    MarkovModel(MarkovModel&&) = default;                 // a moved vector keeps its bytes where they are
    int order() const { return (int)order_; }
    const std::string& vocab_sha256() const { return sha_; }
    bool performance() const { return mode_ == 1; }
    int time_shift_ms() const { return (int)ts_ms_; }
    float beta() const { return beta_; }
    const Vocab& vocab() const { return vocab_; }
    // P(next | context): `ctx` holds the last `order()` tokens, oldest first (PAD before the start). No allocation.
    void probs(const int* ctx, double* out /*[vocab().size()]*/) const;
    // Reweight the time shifts of `p` by bar position (time step `t` before the next token, bar length and phase
    // in steps) and renormalize; a no-op when the model's beta is 0. No allocation.
    void apply_rhythm(double* p, int64_t t, double bar_steps, double bar_phase) const;
private:
    struct Table { const uint64_t* keys; const uint32_t *total, *types, *start; const uint16_t* next; const uint32_t* count; uint32_t n_ctx, n_pairs; };
    std::vector<uint8_t> data_;
    std::vector<Table> tables_;
    std::array<double, MAX_VOCAB> p0_{};
    Vocab vocab_;
    const float* rhythm_ = nullptr;
    uint32_t order_ = 0, npos_ = 0, mode_ = 0, ts_ms_ = 20, bits_ = 9;
    float beta_ = 0.0f;
    std::string sha_;
};

// A running context over a MarkovModel (which must outlive it): feed tokens, read the next distribution. Allocation-free.
class MarkovStream {
public:
    // bar_steps <= 0: no rhythm weights.
    explicit MarkovStream(const MarkovModel& m, double bar_steps = 0, double bar_phase = 0) : m_(m), bar_(bar_steps), phase_(bar_phase) { reset(); }
    void reset();
    const double* step(int tok);                   // tok in 0..size-1 (an Error otherwise)
    const double* probs() const { return p_.data(); }
private:
    const MarkovModel& m_;
    double bar_, phase_;
    std::array<int, MarkovModel::MAX_ORDER> ctx_{};
    int64_t t_ = 0;
    std::array<double, MAX_VOCAB> p_{};
};

// ---------------------------------------------------------------------------------------------- ONNX
struct OrtHandles;                                  // onnxruntime objects, kept out of this header

// The onnxruntime shared library in use: `path` if given, else $MUSE_ORT_LIBRARY, else the one CMake found.
// Loaded once (dlopen) with the API version of the headers; returns its version string.
std::string load_onnxruntime(const std::string& path = "");

// Tokens OnnxStream::feed gives onnxruntime a run when priming with many (a whole piece as a primer keeps memory flat;
// the Python runtime's FEED_CHUNK).
constexpr size_t FEED_CHUNK = 256;

// What Generator and a host's sampling loop need from a model: one token in, the next token's logits out, with the
// state kept inside: OnnxStream (onnxruntime), NativeGru and NativeTransformer (this library's own steps).
// Not for use from two threads at once: give each thread its own.
class StepModel {
public:
    virtual ~StepModel() = default;
    virtual const std::string& model_type() const = 0;    // "gru" or "transformer"
    virtual const Vocab& vocab() const = 0;
    bool performance() const { return vocab().performance; }
    int time_shift_ms() const { return vocab().time_shift_ms; }
    virtual SamplingParams sampling_defaults() const = 0;
    virtual void reset() = 0;                                  // empty state
    virtual const float* step(int64_t token) = 0;              // logits[vocab().size()], valid until the next call
    virtual const float* feed(const std::vector<int64_t>& ids) = 0;   // many tokens (priming); the last token's logits
    // What a host holding any StepModel (open_model's) may ask; a model of its own need not answer ("", 0).
    virtual std::string metadata(const std::string& key) const { (void)key; return ""; }   // the file's metadata ("" if absent)
    virtual std::string kernel() const { return ""; }          // how a step computes: "onnxruntime", "int8-q15-vnni", "int8-q15-avx2" or "fp32"
    virtual int64_t cached() const { return 0; }               // tokens in a transformer's cache (0 for the GRU)
};

// A StepModel read from a file muse_export wrote: its kind, vocabulary and sampling defaults are the file's metadata.
class ExportedModel : public StepModel {
public:
    const std::string& model_type() const override { return kind_; }
    const Vocab& vocab() const override { return vocab_; }     // from the model's vocab_json metadata
    SamplingParams sampling_defaults() const override { return defaults_; }
protected:
    explicit ExportedModel(std::string kind = "") : kind_(std::move(kind)) {}
    std::string kind_;
    Vocab vocab_;
    SamplingParams defaults_;
};

// A model through onnxruntime: the GRU or the transformer, any quantization muse_export writes.
class OnnxStream : public ExportedModel {
public:
    // Refuses a model whose vocab_sha256 metadata differs from `expect_sha` (when given).
    explicit OnnxStream(const std::string& model_path, const std::string& expect_sha = "", const std::string& ort_library = "");
    ~OnnxStream() override;
    OnnxStream(const OnnxStream&) = delete;
    OnnxStream& operator=(const OnnxStream&) = delete;
    std::string metadata(const std::string& key) const override;
    std::string kernel() const override { return "onnxruntime"; }
    int64_t cached() const override { return cached_; }
    // A GRU's steps go through its step-only graph (no Scan): the file itself, or the X_step.onnx muse_export writes
    // beside X.onnx when its metadata carries the same weights' fingerprint (model_sha256).
    bool step_graph() const;
    // A transformer's steps go through its ring step twin (state_update "ring"): the cache is read where it lies, in
    // rings written in place, instead of being passed and appended as one `state` tensor.
    bool ring_graph() const;
    void reset() override;
    const float* step(int64_t token) override;      // allocation-free in this library (onnxruntime's Run allocates)
    const float* feed(const std::vector<int64_t>& ids) override;
private:
    std::unique_ptr<OrtHandles> h_;
    int64_t cached_ = 0;
};

namespace detail { struct OnnxFile; }

// What the native steps share: the file they read themselves (its metadata stays; the weights go into the model's own
// buffers), the kernel they chose for all their products, and feed(), which checks every id before stepping any.
class NativeModel : public ExportedModel {
public:
    ~NativeModel() override;
    std::string metadata(const std::string& key) const override;
    std::string kernel() const override { return kernel_; }   // "int8-q15-vnni", "int8-q15-avx2" or "fp32"
    const float* feed(const std::vector<int64_t>& ids) override;
protected:
    // Reads `path` and its metadata, refusing another vocabulary than `expect_sha` and another kind than `kind` (`why` says so)
    NativeModel(const std::string& path, const std::string& expect_sha, const std::string& kind, const std::string& why);
    std::unique_ptr<detail::OnnxFile> file_;
    std::string kernel_ = "fp32";
};

// The GRU computed by this library, without onnxruntime: for a host's audio thread. It reads the weights from the
// exported file itself (muse_export's default INT8 weights, int8 with a scale per output column or embedding row,
// or the fp32 twin) with a small ONNX reader, and runs the step in buffers made once: a step allocates nothing, takes
// no lock and makes no system call. Two kernels: where the CPU has AVX-512 VNNI, or AVX2 and FMA (and the library is
// built for it, as -march=native does), an INT8-weight file runs with its int8 weights and the hidden state in Q15 inside the matrix
// products (exact int32 sums; logits within about 3e-4 of onnxruntime's on the same file, twice as fast); otherwise,
// or with `exact`, fp32 products with the weights onnxruntime computes (logits within about 1e-5). ctest native_gru
// checks both against onnxruntime. Files written with `--quantization dynamic` are refused: their activations are
// rounded to 8 bits on every step in a way only onnxruntime reproduces.
class NativeGru : public NativeModel {
public:
    explicit NativeGru(const std::string& model_path, const std::string& expect_sha = "", bool exact = false);
    ~NativeGru() override;
    NativeGru(const NativeGru&) = delete;
    NativeGru& operator=(const NativeGru&) = delete;
    void reset() override;
    const float* step(int64_t token) override;      // no allocation, no lock
    int layers() const;
    int hidden() const;
    const std::string& weights() const { return weights_; }   // "int8" or "fp32": what the file stored
    const float* state() const;                     // [layers * hidden]
private:
    struct Impl;
    std::unique_ptr<Impl> p_;
    std::string weights_;
};

// The transformer computed by this library, without onnxruntime: for hosts that want the better model on their own
// thread with no runtime. Reads the weights from the exported file (INT8 weights or fp32; dynamic INT8 is refused) and
// keeps the cache in rings of max_context - 1 tokens made once, so the window slides without moving memory and a step
// allocates nothing. Two kernels, as NativeGru's: with AVX-512 VNNI an INT8-weight file runs its int8 weights with each
// product's input as two Q15 terms, its value and that rounding's residual (logits within 1e-4 of onnxruntime's); otherwise,
// or with `exact`, fp32 products (within 1e-4). ctest native_transformer checks both.
class NativeTransformer : public NativeModel {
public:
    explicit NativeTransformer(const std::string& model_path, const std::string& expect_sha = "", bool exact = false);
    ~NativeTransformer() override;
    NativeTransformer(const NativeTransformer&) = delete;
    NativeTransformer& operator=(const NativeTransformer&) = delete;
    int64_t cached() const override;                // at most max_context - 1
    void reset() override;
    const float* step(int64_t token) override;      // no allocation, no lock
private:
    struct Impl;
    std::unique_ptr<Impl> p_;
};

// A StepModel for `path`: NativeGru or NativeTransformer where they can run the file (INT8 or fp32 weights, written by
// this version's muse_export) and `native` is set, OnnxStream otherwise.
std::unique_ptr<StepModel> open_model(const std::string& path, const std::string& expect_sha = "", bool native = true,
                                      const std::string& ort_library = "");
// NativeGru or NativeTransformer for `path`, or an Error saying why not: what an audio thread may step (no allocation, no lock).
std::unique_ptr<StepModel> open_native(const std::string& path, const std::string& expect_sha = "");

// ---------------------------------------------------------------------------------------------- real time
// A wait-free single-producer, single-consumer queue of token ids: the only thing an audio thread touches.
template <size_t N>
class TokenQueue {
    static_assert(N >= 2 && (N & (N - 1)) == 0, "N must be a power of two");
public:
    bool push(int tok) {                           // producer only
        size_t t = tail_.load(std::memory_order_relaxed);
        if (t - head_.load(std::memory_order_acquire) == N) return false;
        buf_[t & (N - 1)] = tok;
        tail_.store(t + 1, std::memory_order_release);
        return true;
    }
    bool pop(int& tok) {                           // consumer only
        size_t h = head_.load(std::memory_order_relaxed);
        if (h == tail_.load(std::memory_order_acquire)) return false;
        tok = buf_[h & (N - 1)];
        head_.store(h + 1, std::memory_order_release);
        return true;
    }
    size_t size() const { return tail_.load(std::memory_order_acquire) - head_.load(std::memory_order_acquire); }
private:
    std::array<int, N> buf_{};
    alignas(64) std::atomic<size_t> head_{0};
    alignas(64) std::atomic<size_t> tail_{0};
};

// Runs a model on its own thread and keeps up to `lookahead` sampled tokens ready, so the audio thread never calls
// the model (onnxruntime's Run allocates; a transformer step is long): it only calls next(), which is wait-free and allocation-free. Each piece starts at
// <BOS> (after an optional primer); after <EOS> a new piece starts, with the model's state reset. With `max_tokens`,
// a piece is closed with <EOS> at the first legal point after that many sampled tokens.
class Generator {
public:
    Generator(StepModel& model, const SamplingParams& sp, uint64_t seed, size_t lookahead = 256, size_t max_tokens = 0);
    ~Generator();                                   // stops the worker
    Generator(const Generator&) = delete;
    Generator& operator=(const Generator&) = delete;
    // Multi-track models: only these instruments play in what is sampled (as Grammar::set_instruments; call before
    // start()); a primer plays as it is, whatever its instruments.
    void set_instruments(const std::vector<int>& programs, bool drums);
    void set_instruments(const std::string& spec);  // a spec: a band's header names one program a part (Grammar::set_instruments)
    // A musician's controls on what is sampled (Grammar::set_controls; call before start()); an Error if they leave
    // nothing to play for the instruments chosen. A primer plays as it is.
    void set_controls(const Controls& c);
    void start(const std::vector<int>& primer = {});   // primer: tokens after <BOS> (a legal prefix), fed before sampling
    void stop();
    bool next(int& tok) {                           // audio thread: the next token, false if none is ready (an underrun)
        if (queue_.pop(tok)) return true;
        underruns_.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    size_t ready() const { return queue_.size(); }
    size_t underruns() const { return underruns_.load(); }
    size_t pieces() const { return pieces_.load(); }
private:
    void run(std::vector<int> primer);
    Grammar grammar() const;                        // the model's grammar, with the instruments chosen
    StepModel& model_;
    std::vector<int> programs_;
    std::string spec_;
    bool drums_ = true, choose_ = false;
    Controls controls_;
    SamplingParams sp_;
    uint64_t seed_;
    size_t lookahead_, max_tokens_;
    TokenQueue<1024> queue_;
    std::atomic<bool> running_{false};
    std::atomic<size_t> underruns_{0}, pieces_{0};
    std::thread worker_;
};

// ---------------------------------------------------------------------------------------------- given notes
// A note as the decoders give it (and as a given part sounds)
struct Note { int64_t start, end; int pitch, velocity; int program = 0; bool drum = false; };   // times in time steps (beat: ticks)
// Conditioning (a vocabulary with AHEAD and CTRL ids, beat time): the model plays with given notes, which sit in its
// stream as controls (nbs/01d_conditioning): a given note sounding at tick t is written at tick t - ahead as a group
// AHEAD_ahead CTRL_.. after the tick's BAR, METER and TEMPO and before its notes. The model never samples a control;
// generate_given writes them where the tokenizer would, as nomad_muse_trainer.sampling.generate_given does (ctest
// given_oracle checks the two write the same stream).

// A piece's bars and tempi on the beat grid, in ticks from its first bar line (Python's Piece.grid).
struct BeatGrid {
    std::vector<int64_t> lines;                  // the bar lines, rising, the first 0
    std::vector<int> meters;                     // each bar's METER index
    std::vector<int64_t> tempo_ticks;            // where the tempo changes, rising, the first 0
    std::vector<int> tempo_bins;                 // the TEMPO index from there on
    void check() const;                          // an Error where these are not a grid
    int tempo_at(int64_t tick) const;            // the TEMPO index in effect at `tick`
    int64_t end_line(int64_t tick, const Vocab& v) const;   // the first bar line at or after `tick` (past the last: bars of the last one's meter)
};
struct GivenNote { int64_t tick; int pitch; bool drum; };          // a given note's onset (ticks) and key
struct ControlEvent {                            // a control as the stream holds it: placed at tick `at`, sounding `ahead` ticks later
    int64_t at; int ahead; int id;
    bool operator<(const ControlEvent& o) const { return at != o.at ? at < o.at : ahead != o.ahead ? ahead < o.ahead : id < o.id; }
    bool operator==(const ControlEvent& o) const { return at == o.at && ahead == o.ahead && id == o.id; }
};
// The controls of `notes` (Python's Piece.controls), in stream order, one per (tick, ahead, id): each `ahead` ticks early
// (never before tick 0); only those placed before `before` (a fill's end). An Error for a note the vocabulary cannot give.
std::vector<ControlEvent> controls_of(const std::vector<GivenNote>& notes, const Vocab& v, int ahead, int64_t before = INT64_MAX);

// What the model plays with: the piece's grid, the given notes' controls and where it plays.
struct GivenTask {
    BeatGrid grid;
    std::vector<ControlEvent> controls;          // controls_of the given notes (for a fill: those in and after its span)
    int64_t start = 0, end = 0;                  // accompany: 0 and the bar line after the given part (its last chord may ring on);
                                                 // fill: the span's first and end bar lines (its notes end by `end`)
    bool fill = false;
    std::vector<int> prefix;                     // fill: the tokens after <BOS> up to the span's first bar line, as the tokenizer writes them
};
struct GivenOptions {
    SamplingParams sampling;
    uint64_t seed = 42;
    std::string instruments;                     // a band: who the model plays (accompany: its header names one program a part), empty: any
    Controls controls;                           // a musician's controls on what the model plays (none by default)
    size_t max_tokens = 0;                       // a bound on the tokens sampled (0: 64 a beat of the span, and 256)
};
// The model's part with the given notes, one token stream <BOS>..<EOS> with the controls inside: from the piece's start
// (accompany) or its bars before the span (fill), up to `end`. Before the model may move time past a control's tick or
// start a note there, the loop writes the time to it and the controls, feeds them and samples again; the piece's meters
// and tempi are written where the tokenizer writes them; a fill stops on its last bar line and no note of the model's
// sounds past it. An Error for a model without conditioning, a task that is not one, or a prefix that is not legal.
std::vector<int> generate_given(StepModel& model, const GivenTask& task, const GivenOptions& options = {});

// A standard MIDI file as read (format 0, 1 or 2; SMPTE time is refused): its notes in its own ticks, as symusic (what
// the Python pipeline reads files with) pairs them: a note-off (or a note-on of velocity 0) ends the earliest sounding
// note of its key and channel, a key struck again while it sounds starts another, a note never ended is dropped; with its
// channel, the program its channel had at the onset and its track; the tempo changes (tick, bpm) and time signatures
// (tick, numerator, denominator). An Error naming `where` for what it cannot read; nothing read past the buffer; the
// sizes are bounded by `limits`.
struct MidiFile {
    struct Note { int64_t on, off; int pitch, velocity, channel, program, track; };
    int tpq = 480;
    std::vector<Note> notes;                     // by onset, then pitch
    std::vector<std::pair<int64_t, double>> tempos;
    std::vector<std::array<int64_t, 3>> meters;
};
MidiFile parse_midi(const uint8_t* data, size_t size, const std::string& where);
MidiFile read_midi(const std::string& path);
// A file on `v`'s beat grid as the Python tokenizer's `piece` holds it: its grid (bar lines from the time signatures, from
// the bar of its first onset; meters and tempi as the stream writes them) and its notes as the quantizer leaves them, by
// onset, instrument and pitch, one per (onset, instrument, pitch); channel 10 is drums (a band's keys 27-87; a single
// stream drops them unless `include_drums`). An Error for a vocabulary not in beat time or a file with no notes.
struct BeatPiece {
    struct Row {
        int64_t on, end;                         // ticks from the first bar line (the end cut where its pitch starts again)
        double dur, gap;                         // its length unrounded, and the ticks until its pitch starts again (inf: never)
        int pitch, vbin, velocity, inst;         // the VELOCITY bin and the velocity; inst: a band's program (-1: drums), 0 for a single stream
    };
    BeatGrid grid;
    std::vector<Row> rows;
};
BeatPiece beat_piece(const MidiFile& m, const Vocab& v, bool include_drums = false);
// The tokens of `p` as the Python tokenizer writes them (`encode`; with conditioning, `encode_given`): only the rows
// `mine` flags (all when null), `controls` among them, and with `span_end` >= 0 nothing from that tick on (the model's
// notes cut to end there), <BOS> to <EOS>. ctest beat_encode checks it against Python's on real files and fill tasks.
std::vector<int> encode_beat(const BeatPiece& p, const Vocab& v, const std::vector<char>* mine = nullptr,
                             const std::vector<ControlEvent>* controls = nullptr, int64_t span_end = -1);
// Every note of `m` as a given part on `v`'s beat grid, where the Python tokenizer's `piece` places it: its bar lines
// from the time signatures (from the bar of its first onset), meters and tempi as the grid's, onsets rounded to ticks,
// one note per (onset, instrument, pitch); channel 10 is drums (a band's keys 27-87; a single stream drops them
// unless `include_drums`). `last_end` is the tick where its last note ends.
// `sounding`: the same notes as they sound (ticks, velocity, program; drums), for writing them beside the model's.
struct GivenPart { BeatGrid grid; std::vector<GivenNote> notes; int64_t last_end = 0; std::vector<Note> sounding; };
GivenPart given_part(const MidiFile& m, const Vocab& v, bool include_drums = false);

// ---------------------------------------------------------------------------------------------- live notes
// Tokens to timed note events as they are sampled, for a host that plays them live (decode_notes one token at a time,
// with the same notes on a legal stream). push(tok) returns the note-ons a token makes; the note-offs wait inside until
// the host asks for those due by a time step (pop_offs), so a note that restarts its voice early is cut there; a
// performance-mode note sounds until its NOTE_OFF (all_off at the end of a piece). All buffers are made in the
// constructor: push, pop_offs and all_off allocate nothing.
struct NoteEvent { int64_t step; bool on; int pitch, velocity, program; bool drum; };

class NoteStream {
public:
    static constexpr int MAX_SOUNDING = 256;
    explicit NoteStream(const Vocab& v = Vocab{});
    void reset();                                   // time 0, nothing sounding
    int push(int tok, NoteEvent* out);              // out[0..1]: the note-ons (and offs of cut notes) this token makes
    int pop_offs(int64_t until_step, NoteEvent* out, int cap);   // note-offs due at or before `until_step`, in time order
    int all_off(NoteEvent* out, int cap);           // every sounding note's off, at the current time (transport stop)
    int64_t step() const { return t_; }             // the time the stream has reached
    int64_t bar_start() const { return bar_; }      // beat time: where the current bar began (ticks), its length, its METER
    int64_t bar_length() const { return bar_len_; }
    int meter() const { return meter_; }
    int sounding() const { return n_; }
private:
    struct Voice { int64_t end, start; int key; };     // end: INT64_MAX while a performance-mode note waits for its NOTE_OFF
    int start_note(int64_t end, int pitch, int program, bool drum, NoteEvent* out);
    void start_piece();
    NoteEvent off_of(const Voice& v, int64_t at) const;
    Vocab v_;
    int64_t t_ = 0, hit_ = 5;
    int vel_ = 64, prog_ = 0, pending_ = -1;        // pending_: a NOTE_ON waiting for its DURATION (duration mode)
    int64_t bar_ = 0, bar_len_ = 48;                // beat time: the bar, as decode_beat counts it
    int bars_ = 0, meter_ = -1, tempo_ = -1;
    Voice voices_[MAX_SOUNDING];
    int n_ = 0;
};

// A played phrase as tokens: what the Python tokenizer gives for these notes (duration mode; a multi-track vocabulary
// plays them as program 0): <BOS>, then the events from the first onset on, no <EOS>. Times in time steps (fractions
// allowed), velocities 1-127. `out` is cleared and filled; with capacity reserved, nothing is allocated.
// An Error for a performance-mode vocabulary.
struct PlayedNote { double start, end; int pitch, velocity; };
// Beat time: times in ticks, bars of METER `meter` (an index: -1 is 4/4) from tick 0, at TEMPO `tempo` (-1: 120 bpm); the
// stream opens with the first note's BAR, its METER and TEMPO (a band's header first: program 0 alone).
void encode_notes(PlayedNote* notes, size_t n, const Vocab& v, std::vector<int>& out, int meter = -1, int tempo = -1);   // sorts `notes` in place

// ---------------------------------------------------------------------------------------------- a player in a host
// What a MIDI plugin does with a model, whatever its format (the LV2 plugin in lv2/; VST3, CLAP and a JACK app through
// DPF): the model on the audio thread through any StepModel (the native GRU or transformer: no allocation, no lock), a
// token at a time, just far enough ahead to know every note that starts in the current block, each note at its frame.
// Time: a beat-time model counts ticks of a quarter note: each note lands on its tick of the host's beat, at any tempo,
// a piece starts on the host's next bar line and its bars are the host's (its METER held to the host's time signature
// where the vocabulary has it, its TEMPO giving way to the host's). An ms model's time steps are read as beats at 120
// bpm, so the music follows the host's tempo, and a piece starts on a beat when the transport starts.
// Modes: 0 generates continuously; 1 listens to the MIDI input and, a beat after the player stops, continues the phrase
// (encoded as the tokenizer would); 2 accompanies the player live (a beat-time model trained with conditioning): each
// note played goes into the stream as AHEAD_0 CTRL_.. at the first tick it can still be heard at, a time shift the
// model samples waits for its time so a note that comes first takes its place, and the model's notes at a tick wait a
// listen window for the player's (a note a little behind the beat is heard on its own tick).
struct PlayerSettings {                       // a host's parameters, read at the start of each block
    float temperature = 1.0f, top_p = 0.95f;
    float density = 1.0f;                     // a bias on the NOTE_ON and DRUM logits: log(density)
    int mode = 0;                             // 0 generate, 1 continue the player, 2 accompany the player
    float listen_ms = 20.0f;                  // mode 2: how long the model's notes at a tick wait for the player's (0-50)
    int band = 0;                             // a band model's instruments: an index of Player::bands() (from the next piece on)
    float shape[6] = {0, 0, 0, 127, 0, 0};    // a musician's controls: scale root, scale (0: none, else 1 + an index of
                                              // scale_names()), lowest and highest pitch, polyphony and onsets a beat (0: no cap)
};
struct HostTime {                             // what a host says of its transport; NaN where it says nothing
    double bpm = NAN, speed = NAN;            // beats (of beat_unit) a minute; speed 0: stopped, 1: rolling
    double beat = NAN;                        // the song position in beats, or...
    double bar = NAN, bar_beat = NAN;         // ...its bar (from 0) and the beat in it
    double beats_per_bar = NAN, beat_unit = NAN;
};
class Player {
public:
    static constexpr int MAX_PHRASE = 256;    // mode 1: the player's notes kept (the latest)
    static constexpr int MAX_GIVEN = 256;     // mode 2: the player's notes waiting to be heard
    // Where MIDI goes: `frame` inside the current block, a 3-byte message. Called from play/midi_in/position only.
    using MidiOut = void (*)(void* user, uint32_t frame, const uint8_t msg[3]);
    Player(std::unique_ptr<StepModel> model, double sample_rate, uint64_t seed = 0x5eed);   // allocates; nothing after does
    Player(const Player&) = delete;
    Player& operator=(const Player&) = delete;
    static const char* const* bands(int* n);  // the instruments a band model may be asked for ("" all, "bass,drums", ...)
    const StepModel& model() const;
    bool accompanies() const;                 // the model can play mode 2 (beat time, conditioning)
    void activate();                          // a fresh start, as when made: the first block after this starts a piece (or
                                              // listens) with the draws of the seed again, the programs' MIDI channels
                                              // assigned again as they first play
    // One block: begin, then play() up to each event's frame, the event (midi_in, position), and play() to the end.
    void begin(const PlayerSettings& s, MidiOut out, void* user);
    void play(uint32_t f0, uint32_t f1);      // frames [f0, f1) of the block: the host's beat moves on, due notes go out
    void midi_in(uint32_t frame, const uint8_t* msg, uint32_t size);
    void position(uint32_t frame, const HostTime& t);   // a jump, a restart or another beat unit starts a new piece
    // What a host may show: notes generated too late for their frame, the player's notes heard (-1: this model cannot
    // accompany), the longest wait in ticks from a played note to the tick it was heard at.
    uint32_t late() const;
    int heard() const;
    double reaction() const;
    ~Player();
private:
    struct Impl;
    std::unique_ptr<Impl> p_;
};

// ---------------------------------------------------------------------------------------------- MIDI
std::vector<Note> decode_notes(const std::vector<int>& ids, const Vocab& v = Vocab{});   // lenient, like the Python decoder
// Beat time (the Python decode_beat): the notes in ticks, and where the tempo and the meter change (each first at tick 0).
struct TempoChange { int64_t tick; double bpm; };
struct MeterChange { int64_t tick; int numerator, denominator; };
std::vector<Note> decode_beat(const std::vector<int>& ids, const Vocab& v, std::vector<TempoChange>* tempos = nullptr,
                              std::vector<MeterChange>* meters = nullptr);
// `bytes` written to `path` through a temporary file and a rename, so a failure never leaves half a file.
void write_file_atomic(const std::string& path, const std::string& bytes);
// A format-0 standard MIDI file (480 ticks per quarter), written atomically. Multi-track streams: one channel per
// instrument with its program change, drums on channel 10 (pitched instruments beyond the 15 other channels share the last).
// Beat time: notes on their ticks, the meters the piece has, and `tempo_bpm`, or with 0 the piece's own TEMPO tokens.
// `with`: notes to write beside the stream's (beat time: in ticks; a given part), on channels of their own after the stream's.
void write_midi(const std::vector<int>& ids, const std::string& path, double tempo_bpm = 120.0, const Vocab& v = Vocab{}, int program = 0,
                const std::vector<Note>* with = nullptr);

}  // namespace muse
