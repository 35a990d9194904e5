// The LV2 bundle (DPF's build of the plugin) in a real host library: lilv (what Ardour, Carla and Zrythm use) loads it from LV2_PATH,
// instantiates it at 48 kHz and runs thousands of 256-frame blocks, sending the host's time position and a player's
// MIDI, and checks what comes out:
//   - legal MIDI: every note-on ends with its note-off, no voice started twice, events in order inside each block;
//   - on time: each note-on falls on the model's grid (a 25th of a beat from a whole beat), at 120 and at 90 bpm;
//   - the transport: stopping it silences every note in that block, and nothing plays while stopped;
//   - continue mode: silent while the player plays, an answer a beat or so after the phrase ends;
//   - note density: more notes at density 2 than at 0.5, from the same seed;
//   - a musician's controls: D dorian between C4 and C5, two voices, two onsets a beat, then moved mid-piece to
//     G major pentatonic between C3 and C4, one voice: every note-on keeps to the controls of its time;
//   - real time: no allocation inside run() (malloc itself is counted in this process), no late note, and the time
//     each run() takes against the block's 5.3 ms (reported; the p99 must fit).
// With a beat-time model (`lv2_host FIXTURES_DIR beat`): at 97 bpm in 3/4, then from the middle of a bar at 143 bpm in
// 4/4 and at 110 bpm in 6/8 (an eighth-note beat), every note-on within one frame of its tick of the host's beat (12 a
// quarter), each piece starting on the host's next bar line, legal MIDI and no allocation.
// With a GRU trained with conditioning (`lv2_host FIXTURES_DIR accompany`), mode 2: the player plays a chorale's soprano
// (BWV 269 in 3/4 at 100 bpm, each note from 10 ms early to 18 ms late, as a person plays) and the model plays along,
// with the default listen window (20 ms) and none: every note heard by the model, each by the next tick of its grid
// (the plugin's own report), the model's notes on their ticks (plus the window) and sounding while the player plays
// (not after), legal MIDI, no allocation, no late note; the consonance of the model's notes with the player's is
// reported against the same model deaf to the player (mode 0); a model without conditioning in mode 2 stays silent and
// says so (heard -1).
// `lv2_host FIXTURES_DIR accompany MELODY.mid GAIN` plays that melody instead and asserts that hearing the player makes
// the model's notes more consonant with it than deafness does, by GAIN (a trained model: the zoo's Bach GRU).
// With a band GRU trained with conditioning (`lv2_host FIXTURES_DIR accompany_band`): the same melody, the Instruments
// port at bass and drums: every note heard, and the model's notes only on the bass (its program changes) and channel 10.
// Usage: lv2_host FIXTURES_DIR [beat|accompany [MELODY.mid GAIN]|accompany_band]   (LV2_PATH: the bundle's parent; MUSE_MODEL: the model)
#include "muse/muse.hpp"

#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/midi/midi.h>
#include <lv2/time/time.h>
#include <lv2/urid/urid.h>
#include <lv2/options/options.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/parameters/parameters.h>
#include <lv2/worker/worker.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

// ------------------------------------------------------------------------------------------ allocation counter
// malloc and its kin, interposed for the whole process (the plugin's .so resolves them here: linked with -rdynamic)
extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}
static thread_local bool g_counting = false;
static size_t g_allocs = 0;
extern "C" {
void* malloc(size_t n) { if (g_counting) ++g_allocs; return __libc_malloc(n); }
void* calloc(size_t a, size_t b) { if (g_counting) ++g_allocs; return __libc_calloc(a, b); }
void* realloc(void* p, size_t n) { if (g_counting) ++g_allocs; return __libc_realloc(p, n); }
void* aligned_alloc(size_t a, size_t n) { if (g_counting) ++g_allocs; return __libc_memalign(a, n); }
void* memalign(size_t a, size_t n) { if (g_counting) ++g_allocs; return __libc_memalign(a, n); }
int posix_memalign(void** p, size_t a, size_t n) { if (g_counting) ++g_allocs; *p = __libc_memalign(a, n); return *p ? 0 : 12; }
void free(void* p) { __libc_free(p); }
}

namespace {
constexpr double RATE = 48000.0;
constexpr uint32_t BLOCK = 256;
constexpr const char* URI = "https://github.com/nomad-muse/nomad-muse-trainer#generator";
int g_failures = 0;
#define CHECK(cond, msg) do { if (!(cond)) { std::cerr << "FAIL " << __LINE__ << ": " << msg << "\n"; ++g_failures; } else std::cout << "ok   " << msg << "\n"; } while (0)

// urid:map for the plugin
std::map<std::string, LV2_URID> g_urids;
std::vector<std::string> g_names;
LV2_URID map_uri(LV2_URID_Map_Handle, const char* uri) {
    auto it = g_urids.find(uri);
    if (it != g_urids.end()) return it->second;
    g_names.push_back(uri);
    return g_urids[uri] = (LV2_URID)g_names.size();
}
LV2_URID_Map g_map = {nullptr, map_uri};
LV2_Feature g_map_feature = {LV2_URID__map, &g_map};
// options (block length, sample rate) and a worker, which DPF's LV2 requires: the worker runs its job at once, as a host
// with no separate worker thread may (the plugin schedules work only for state changes from a UI it does not have)
int32_t g_block_len = 256;
float g_rate_opt = 48000.0f;
LV2_Options_Option g_options[4];
LV2_Feature g_options_feature = {LV2_OPTIONS__options, g_options};
const LV2_Worker_Interface* g_worker = nullptr;
LV2_Handle g_worker_handle = nullptr;
LV2_Worker_Status respond(LV2_Worker_Respond_Handle, uint32_t size, const void* data) {
    return g_worker && g_worker->work_response ? g_worker->work_response(g_worker_handle, size, data) : LV2_WORKER_ERR_UNKNOWN;
}
LV2_Worker_Status schedule(LV2_Worker_Schedule_Handle, uint32_t size, const void* data) {
    return g_worker ? g_worker->work(g_worker_handle, respond, nullptr, size, data) : LV2_WORKER_ERR_UNKNOWN;
}
LV2_Worker_Schedule g_schedule = {nullptr, schedule};
LV2_Feature g_worker_feature = {LV2_WORKER__schedule, &g_schedule};
const LV2_Feature* g_features[] = {&g_map_feature, &g_options_feature, &g_worker_feature, nullptr};
void init_options() {
    const LV2_URID i = map_uri(nullptr, LV2_ATOM__Int), f = map_uri(nullptr, LV2_ATOM__Float);
    g_options[0] = {LV2_OPTIONS_INSTANCE, 0, map_uri(nullptr, LV2_BUF_SIZE__maxBlockLength), sizeof(int32_t), i, &g_block_len};
    g_options[1] = {LV2_OPTIONS_INSTANCE, 0, map_uri(nullptr, LV2_BUF_SIZE__nominalBlockLength), sizeof(int32_t), i, &g_block_len};
    g_options[2] = {LV2_OPTIONS_INSTANCE, 0, map_uri(nullptr, LV2_PARAMETERS__sampleRate), sizeof(float), f, &g_rate_opt};
    g_options[3] = {LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, nullptr};
}

struct Midi { int64_t frame; uint8_t status, a, b; };

// One plugin instance with its buffers; `block()` runs one block with the given input events.
struct Host {
    LilvWorld* world;
    const LilvPlugin* plugin;
    LilvInstance* inst = nullptr;
    alignas(16) uint8_t in[16384];
    alignas(16) uint8_t out[65536];
    float audio[2][4096] = {};
    float temperature = 1.0f, top_p = 0.95f, density = 1.0f, mode = 0.0f, late = 0.0f;
    float scale_root = 0.0f, scale = 0.0f, lowest = 0.0f, highest = 127.0f, polyphony = 0.0f, onsets = 0.0f;
    float heard = 0.0f, reaction = 0.0f, listen = 20.0f, instruments = 0.0f;
    LV2_Atom_Forge forge;
    LV2_Atom_Forge_Frame seq;
    int64_t frame = 0;                           // frames run so far
    std::vector<double> run_us;
    size_t allocs_in_run = 0;
    std::vector<Midi> midi;                      // everything the plugin sent, with absolute frames
    bool order_ok = true;

    Host(LilvWorld* w, const LilvPlugin* p) : world(w), plugin(p) {
        inst = lilv_plugin_instantiate(plugin, RATE, g_features);
        if (!inst) return;
        auto find = [&](const char* sym) { LilvNode* n = lilv_new_string(world, sym); const LilvPort* pt = lilv_plugin_get_port_by_symbol(plugin, n); lilv_node_free(n); return pt; };
        auto port = [&](const char* sym) { return lilv_port_get_index(plugin, find(sym)); };
        g_worker = static_cast<const LV2_Worker_Interface*>(lilv_instance_get_extension_data(inst, LV2_WORKER__interface));
        g_worker_handle = lilv_instance_get_handle(inst);
        lilv_instance_connect_port(inst, port("lv2_events_in"), in);
        lilv_instance_connect_port(inst, port("lv2_events_out"), out);
        lilv_instance_connect_port(inst, port("lv2_audio_out_1"), audio[0]);   // a silent stereo output (DPF's instrument)
        lilv_instance_connect_port(inst, port("lv2_audio_out_2"), audio[1]);
        lilv_instance_connect_port(inst, port("temperature"), &temperature);
        lilv_instance_connect_port(inst, port("top_p"), &top_p);
        lilv_instance_connect_port(inst, port("density"), &density);
        lilv_instance_connect_port(inst, port("mode"), &mode);
        lilv_instance_connect_port(inst, port("late"), &late);
        lilv_instance_connect_port(inst, port("scale_root"), &scale_root);
        lilv_instance_connect_port(inst, port("scale"), &scale);
        lilv_instance_connect_port(inst, port("lowest"), &lowest);
        lilv_instance_connect_port(inst, port("highest"), &highest);
        lilv_instance_connect_port(inst, port("polyphony"), &polyphony);
        lilv_instance_connect_port(inst, port("onsets"), &onsets);
        lilv_instance_connect_port(inst, port("heard"), &heard);
        lilv_instance_connect_port(inst, port("reaction"), &reaction);
        lilv_instance_connect_port(inst, port("listen"), &listen);
        lilv_instance_connect_port(inst, port("instruments"), &instruments);
        lv2_atom_forge_init(&forge, &g_map);
        lilv_instance_activate(inst);
        begin();
    }
    ~Host() { if (inst) { lilv_instance_deactivate(inst); lilv_instance_free(inst); } }

    void begin() {                                // an empty input sequence for the next block
        lv2_atom_forge_set_buffer(&forge, in, sizeof(in));
        lv2_atom_forge_sequence_head(&forge, &seq, 0);
    }
    void position(uint32_t at, double beat, double bpm, double speed, int per_bar = 4, int unit = 4, double bar_start = 0.0) {
        lv2_atom_forge_frame_time(&forge, at);
        LV2_Atom_Forge_Frame obj;
        const double in_bars = (beat - bar_start) / per_bar;              // bars counted from a bar line at `bar_start`
        lv2_atom_forge_object(&forge, &obj, 0, map_uri(nullptr, LV2_TIME__Position));
        lv2_atom_forge_key(&forge, map_uri(nullptr, LV2_TIME__bar)); lv2_atom_forge_long(&forge, (int64_t)std::floor(in_bars));
        lv2_atom_forge_key(&forge, map_uri(nullptr, LV2_TIME__barBeat)); lv2_atom_forge_float(&forge, (float)(beat - bar_start - per_bar * std::floor(in_bars)));
        lv2_atom_forge_key(&forge, map_uri(nullptr, LV2_TIME__beatsPerBar)); lv2_atom_forge_float(&forge, (float)per_bar);
        lv2_atom_forge_key(&forge, map_uri(nullptr, LV2_TIME__beatUnit)); lv2_atom_forge_int(&forge, unit);
        lv2_atom_forge_key(&forge, map_uri(nullptr, LV2_TIME__beatsPerMinute)); lv2_atom_forge_float(&forge, (float)bpm);
        lv2_atom_forge_key(&forge, map_uri(nullptr, LV2_TIME__speed)); lv2_atom_forge_float(&forge, (float)speed);
        lv2_atom_forge_pop(&forge, &obj);
    }
    void note(uint32_t at, bool on, int pitch, int vel) {
        uint8_t msg[3] = {(uint8_t)(on ? 0x90 : 0x80), (uint8_t)pitch, (uint8_t)(on ? vel : 0)};
        lv2_atom_forge_frame_time(&forge, at);
        lv2_atom_forge_atom(&forge, 3, map_uri(nullptr, LV2_MIDI__MidiEvent));
        lv2_atom_forge_write(&forge, msg, 3);
    }
    void cc(uint32_t at, int number, int value) {
        uint8_t msg[3] = {0xB0, (uint8_t)number, (uint8_t)value};
        lv2_atom_forge_frame_time(&forge, at);
        lv2_atom_forge_atom(&forge, 3, map_uri(nullptr, LV2_MIDI__MidiEvent));
        lv2_atom_forge_write(&forge, msg, 3);
    }
    void block() {
        lv2_atom_forge_pop(&forge, &seq);
        auto* o = reinterpret_cast<LV2_Atom_Sequence*>(out);
        o->atom.type = 0; o->atom.size = sizeof(out) - sizeof(LV2_Atom);      // the capacity, as hosts do
        g_allocs = 0; g_counting = true;
        auto t0 = std::chrono::steady_clock::now();
        lilv_instance_run(inst, BLOCK);
        auto t1 = std::chrono::steady_clock::now();
        g_counting = false;
        allocs_in_run += g_allocs;
        run_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count());
        int64_t prev = -1;
        LV2_ATOM_SEQUENCE_FOREACH(o, e) {
            if (e->body.type != map_uri(nullptr, LV2_MIDI__MidiEvent)) continue;
            const uint8_t* m = reinterpret_cast<const uint8_t*>(e + 1);
            if (e->time.frames < prev || e->time.frames < 0 || e->time.frames >= BLOCK) order_ok = false;
            prev = e->time.frames;
            midi.push_back({frame + e->time.frames, m[0], m[1], e->body.size > 2 ? m[2] : (uint8_t)0});
        }
        frame += BLOCK;
        begin();
    }
};

// What the player sends: a note, or a controller change (`cc`: pitch is the controller, vel its value).
struct In { int64_t frame; bool on; int pitch, vel; bool cc = false; };

// Play `ins` (sorted by frame) into the host, block by block, until frame `until`.
void play_in(Host& h, const std::vector<In>& ins, int64_t until) {
    size_t k = 0;
    while (h.frame < until) {
        for (; k < ins.size() && ins[k].frame < h.frame + BLOCK; ++k) {
            const uint32_t at = (uint32_t)std::max<int64_t>(0, ins[k].frame - h.frame);
            if (ins[k].cc) h.cc(at, ins[k].pitch, ins[k].vel); else h.note(at, ins[k].on, ins[k].pitch, ins[k].vel);
        }
        h.block();
    }
}

// The plugin's note-ons from h.midi[from] on: how many by frame `quiet_until`, and the first and the count after it.
struct Answer { size_t during = 0, notes = 0; int64_t first = -1; };
Answer answer_after(const Host& h, size_t from, int64_t quiet_until) {
    Answer a;
    for (size_t i = from; i < h.midi.size(); ++i) {
        const Midi& m = h.midi[i];
        if ((m.status & 0xF0) != 0x90 || m.b == 0) continue;
        if (m.frame <= quiet_until) ++a.during;
        else { if (a.first < 0) a.first = m.frame; ++a.notes; }
    }
    return a;
}

// Legal MIDI from `a` to `b` (indices into h.midi): returns the voices still sounding at the end.
int legal(const Host& h, size_t a, size_t b, std::string& why) {
    std::set<int> sounding;
    for (size_t i = a; i < b; ++i) {
        const Midi& m = h.midi[i];
        const int kind = m.status & 0xF0, voice = (m.status & 0x0F) * 128 + m.a;
        if (kind == 0x90 && m.b > 0) {
            if (sounding.count(voice)) { why = "a voice started twice at frame " + std::to_string(m.frame); return -1; }
            sounding.insert(voice);
        } else if (kind == 0x80 || (kind == 0x90 && m.b == 0)) {
            if (!sounding.count(voice)) { why = "a note-off without its note-on at frame " + std::to_string(m.frame); return -1; }
            sounding.erase(voice);
        }
    }
    return (int)sounding.size();
}

void scenario(LilvWorld* world, const LilvPlugin* plugin, const std::string& fix);
void beat_scenario(LilvWorld* world, const LilvPlugin* plugin);
void accompany_scenario(LilvWorld* world, const LilvPlugin* plugin, const std::string& fix, const std::string& melody, double gain);
void band_scenario(LilvWorld* world, const LilvPlugin* plugin, const std::string& fix);

std::vector<std::vector<int>> read_seqs(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    uint32_t n = 0; f.read((char*)&n, 4);
    std::vector<std::vector<int>> out(n);
    for (auto& s : out) { uint32_t len; f.read((char*)&len, 4); s.resize(len); f.read((char*)s.data(), 4 * len); }
    return out;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) { std::cerr << "usage: lv2_host FIXTURES_DIR\n"; return 2; }
    const std::string fix = argv[1];
    init_options();
    LilvWorld* world = lilv_world_new();
    lilv_world_load_all(world);
    LilvNode* uri = lilv_new_uri(world, URI);
    const LilvPlugin* plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(world), uri);
    if (!plugin) { std::cerr << "FAIL: " << URI << " not found on LV2_PATH=" << (std::getenv("LV2_PATH") ? std::getenv("LV2_PATH") : "") << "\n"; return 1; }
    LilvNode* name = lilv_plugin_get_name(plugin);
    const uint32_t n_ports = lilv_plugin_get_num_ports(plugin);
    CHECK(n_ports == 19, "lilv reads the bundle: '" << lilv_node_as_string(name) << "', " << n_ports << " ports (MIDI in and out, two silent audio outputs, 15 controls)");
    lilv_node_free(name);
    LilvNode* rt = lilv_new_uri(world, LV2_CORE__hardRTCapable);
    CHECK(lilv_plugin_has_feature(plugin, rt), "it declares lv2:hardRTCapable");
    lilv_node_free(rt);

    if (argc > 2 && std::string(argv[2]) == "beat") beat_scenario(world, plugin);
    else if (argc > 2 && std::string(argv[2]) == "accompany_band") band_scenario(world, plugin, fix);
    else if (argc > 2 && std::string(argv[2]) == "accompany")
        accompany_scenario(world, plugin, fix, argc > 3 ? argv[3] : fix + "/soprano_bwv269.mid", argc > 4 ? std::atof(argv[4]) : -1.0);
    else scenario(world, plugin, fix);
    lilv_node_free(uri);
    lilv_world_free(world);
    std::cout << (g_failures ? "FAILED" : "all passed") << "\n";
    return g_failures ? 1 : 0;
}

namespace {
// A beat-time model on the host's grid: three segments of 12 s, each from a transport position the host sends once
void beat_scenario(LilvWorld* world, const LilvPlugin* plugin) {
    Host h(world, plugin);
    if (!h.inst) { std::cerr << "FAIL: the plugin did not instantiate (MUSE_MODEL=" << (std::getenv("MUSE_MODEL") ? std::getenv("MUSE_MODEL") : "") << ")\n"; ++g_failures; return; }
    struct Segment { double bpm; int per_bar, unit; double start_beat, bar_start; };      // bar_start: a host bar line
    const Segment segs[] = {{97.0, 3, 4, 0.0, 0.0}, {143.0, 4, 4, 1001.5, 1000.0}, {110.0, 6, 8, 3002.0, 3000.0}};
    const int BLOCKS = 2250;                                              // 12 s at 48 kHz in 256-frame blocks
    const int R = 12;                                                     // the model's ticks a quarter note
    for (const Segment& sg : segs) {
        const size_t from = h.midi.size();
        const int64_t f0 = h.frame;
        h.position(0, sg.start_beat, sg.bpm, 1, sg.per_bar, sg.unit, sg.bar_start);
        for (int i = 0; i < BLOCKS; ++i) h.block();
        const double frames_per_beat = RATE * 60.0 / sg.bpm, ticks_per_beat = R * 4.0 / sg.unit;
        const double next_bar = sg.bar_start + std::ceil((sg.start_beat - sg.bar_start) / sg.per_bar - 1e-9) * sg.per_bar;
        size_t ons = 0, off_tick = 0, on_downbeat = 0;
        double worst = 0, first = -1;
        for (size_t i = from; i < h.midi.size(); ++i) {
            const Midi& m = h.midi[i];
            if ((m.status & 0xF0) != 0x90 || m.b == 0) continue;
            const double b = sg.start_beat + (m.frame - f0) / frames_per_beat;   // the host beat of this frame
            const double tick = b * ticks_per_beat;
            const double err = std::fabs(tick - std::round(tick)) * frames_per_beat / ticks_per_beat;   // in frames
            worst = std::max(worst, err);
            if (err > 1.0 && ++off_tick <= 5) std::cerr << "  off its tick: note-on at frame " << m.frame << ", beat " << b << ", tick " << tick << "\n";
            if (first < 0) first = b;
            const double in_bar = std::fmod(b - sg.bar_start, (double)sg.per_bar);
            on_downbeat += std::min(in_bar, sg.per_bar - in_bar) * frames_per_beat <= 1.0;
            ++ons;
        }
        std::ostringstream what;
        what << sg.bpm << " bpm in " << sg.per_bar << "/" << sg.unit;
        CHECK(ons > 20, what.str() << ": " << ons << " notes in 12 s");
        CHECK(off_tick == 0, what.str() << ": every note-on within one frame of its tick of the host's beat (worst " << worst << " frames)");
        CHECK(first >= next_bar - 1.0 / frames_per_beat, what.str() << ": the piece starts on the host's bar line, to the frame (transport at beat " << sg.start_beat
              << ", next bar line " << next_bar << ", first note-on at beat " << first << "); " << on_downbeat << " note-ons on downbeats");
    }
    h.position(0, 9999.0, 110.0, 0, 6, 8, 3000.0);                        // stop
    for (int i = 0; i < 50; ++i) h.block();
    std::string why;
    const int left = legal(h, 0, h.midi.size(), why);
    CHECK(h.order_ok && left == 0, "legal MIDI over the three segments and the stop: " << (left < 0 ? why : std::to_string(left) + " notes left sounding"));
    CHECK(h.allocs_in_run == 0 && h.late == 0, "no allocation in run() (" << h.allocs_in_run << "), no late note (" << h.late << ")");
}

// Accompany mode: a chorale's soprano played into a GRU trained with conditioning, which plays along.
void accompany_scenario(LilvWorld* world, const LilvPlugin* plugin, const std::string& fix, const std::string& melody, double gain) {
    muse::Vocab grid;                                                     // the melody on a grid of 12 ticks a quarter, as the models count
    grid.beat = true; grid.resolution = 12;
    muse::GivenPart part;
    try { part = muse::given_part(muse::read_midi(melody), grid); }
    catch (const muse::Error& e) { std::cerr << "FAIL: " << e.what() << "\n"; ++g_failures; return; }
    const uint32_t rows = (uint32_t)part.sounding.size();
    std::vector<int64_t> mel;                                             // onset, end (ticks), pitch
    for (const auto& n : part.sounding) { mel.push_back(n.start); mel.push_back(n.end); mel.push_back(n.pitch); }
    std::map<int, int> count;                                             // its meter: the most bars have it
    for (int m : part.grid.meters) ++count[m];
    const int meter = std::max_element(count.begin(), count.end(), [](auto& a, auto& b) { return a.second < b.second; })->first;
    const int per_bar = grid.meters[meter][0];
    if (grid.meters[meter][1] != 4 || rows < 20) { std::cerr << "FAIL: " << melody << " is not a melody of quarter-note beats this test plays\n"; ++g_failures; return; }
    const std::string name = melody.substr(melody.rfind('/') + 1);
    const double bpm = 100.0, fpb = RATE * 60.0 / bpm, R = 12.0;          // frames a beat; the model's ticks a quarter
    const double start = 2.0 * per_bar - (part.grid.lines.size() > 1 ? part.grid.lines[1] : 0) / R;   // its first whole bar on the host's third
    // as a person plays: each note from 10 ms early to 18 ms late (a fixed pseudo-random draw), released just before the next
    std::vector<int64_t> on_f(rows), off_f(rows);
    uint32_t seed = 12345;
    for (uint32_t i = 0; i < rows; ++i) {
        seed = seed * 1664525u + 1013904223u;
        const double ms = -10.0 + 28.0 * (seed >> 8) / 16777216.0;
        on_f[i] = (int64_t)std::llround((start + mel[3 * i] / R) * fpb + ms * RATE / 1000.0);
        off_f[i] = (int64_t)std::llround((start + mel[3 * i + 1] / R - 0.02) * fpb);
    }
    std::vector<In> ins;
    for (uint32_t i = 0; i < rows; ++i) { ins.push_back({on_f[i], true, (int)mel[3 * i + 2], 90}); ins.push_back({off_f[i], false, (int)mel[3 * i + 2], 0}); }
    std::stable_sort(ins.begin(), ins.end(), [](const In& a, const In& b) { return a.frame < b.frame; });
    const int64_t first = ins.front().frame, last = ins.back().frame;
    // what a listener hears: the share of the model's notes consonant with every note of the player's sounding at their
    // onset (eval.consonance's intervals: unisons, thirds, fourths, fifths, sixths)
    auto consonant = [&](const Host& x) {
        static const std::set<int> ok = {0, 3, 4, 5, 7, 8, 9};
        size_t n = 0, good = 0;
        for (const Midi& m : x.midi) {
            if ((m.status & 0xF0) != 0x90 || m.b == 0 || m.frame > last) continue;
            bool any = false, all = true;
            for (uint32_t i = 0; i < rows; ++i)
                if (on_f[i] <= m.frame && m.frame < off_f[i]) { any = true; all = all && ok.count((((int)mel[3 * i + 2] - m.a) % 12 + 12) % 12); }
            n += any; good += any && all;
        }
        return n ? (double)good / n : 0.0;
    };
    double cons[2] = {0, 0};
    for (const float window : {20.0f, 0.0f}) {                            // the default listen window, and none
        Host h(world, plugin);
        if (!h.inst) { std::cerr << "FAIL: the plugin did not instantiate (MUSE_MODEL=" << (std::getenv("MUSE_MODEL") ? std::getenv("MUSE_MODEL") : "") << ")\n"; ++g_failures; return; }
        h.mode = 2.0f;
        h.listen = window;
        h.position(0, 0.0, bpm, 1, per_bar, 4, 0.0);
        play_in(h, ins, last + (int64_t)RATE);
        const double shift = window / 1000.0 * RATE;                      // the model's notes sound this many frames after their tick
        size_t during = 0, after = 0, off_tick = 0;
        for (const Midi& m : h.midi) {
            if ((m.status & 0xF0) != 0x90 || m.b == 0) continue;
            const double tick = (m.frame - shift) / fpb * R;
            if (std::fabs(tick - std::round(tick)) * fpb / R > 1.0) ++off_tick;
            (m.frame <= last ? during : after)++;
        }
        std::string why;
        const int left = legal(h, 0, h.midi.size(), why);
        const std::string w = "listen " + std::to_string((int)window) + " ms: ";
        CHECK(h.heard == (float)rows, w << "every note the player plays is heard by the model: " << h.heard << " of " << rows << " (" << name << " at 100 bpm, " << per_bar << "/4)");
        CHECK(h.reaction <= 1.0f + 1e-3f, w << "each by the next tick of its grid at the latest: the longest wait " << h.reaction << " ticks (a tick is " << 60000.0 / bpm / R << " ms)");
        CHECK(during > rows / 2, w << "the model plays along while the player plays: " << during << " notes during the melody's " << (last - first) / fpb << " beats, " << after << " in the second after");
        CHECK(off_tick == 0, w << "every note of the model's on its tick of the host's beat (plus the window), to the frame (" << off_tick << " off it)");
        CHECK(h.order_ok && left >= 0, w << "legal MIDI in accompany mode" << (left < 0 ? ": " + why : ""));
        CHECK(h.allocs_in_run == 0 && h.late == 0, w << "no allocation in run() (" << h.allocs_in_run << "), no late note (" << h.late << ")");
        cons[window > 0 ? 0 : 1] = consonant(h);
    }
    Host deaf(world, plugin);                                             // the same model in mode 0: deaf to the player
    deaf.position(0, 0.0, bpm, 1, per_bar, 4, 0.0);
    play_in(deaf, ins, last + (int64_t)RATE);
    const double deaf_c = consonant(deaf);
    std::cout << "     consonant with the player's sounding notes: " << cons[0] << " (listen 20 ms), " << cons[1] << " (listen 0), "
              << deaf_c << " deaf to them (generate)\n";
    if (gain >= 0) CHECK(cons[0] >= deaf_c + gain, "hearing the player, the model's notes are consonant with them more often than deaf: "
                         << cons[0] << " against " << deaf_c << " (at least " << gain << " more)");
    // the same melody into a model that never learnt to listen: silent, and it says so
    const char* was = std::getenv("MUSE_MODEL");
    const std::string keep = was ? was : "";
    setenv("MUSE_MODEL", (fix + "/gru_beat_w8.onnx").c_str(), 1);
    {
        Host p(world, plugin);
        p.mode = 2.0f;
        p.position(0, 0.0, bpm, 1, per_bar, 4, 0.0);
        play_in(p, ins, last);
        size_t ons = 0;
        for (const Midi& m : p.midi) ons += (m.status & 0xF0) == 0x90 && m.b > 0;
        CHECK(p.inst && p.heard == -1.0f && ons == 0, "a model trained without conditioning in accompany mode: silent (" << ons << " notes), heard " << p.heard);
    }
    setenv("MUSE_MODEL", keep.c_str(), 1);
}

// A band model in accompany mode, asked for bass and drums only: a melody on channel 1 heard, the answer on those alone.
void band_scenario(LilvWorld* world, const LilvPlugin* plugin, const std::string& fix) {
    muse::Vocab grid;
    grid.beat = true; grid.resolution = 12;
    const muse::GivenPart part = muse::given_part(muse::read_midi(fix + "/soprano_bwv269.mid"), grid);
    const double bpm = 110.0, fpb = RATE * 60.0 / bpm;
    std::vector<In> ins;
    for (const auto& n : part.sounding) {                                 // from bar 2 (3/4), on the beat
        ins.push_back({(int64_t)std::llround((3.0 + n.start / 12.0) * fpb), true, n.pitch, 90});
        ins.push_back({(int64_t)std::llround((3.0 + n.end / 12.0 - 0.02) * fpb), false, n.pitch, 0});
    }
    std::stable_sort(ins.begin(), ins.end(), [](const In& a, const In& b) { return a.frame < b.frame; });
    Host h(world, plugin);
    if (!h.inst) { std::cerr << "FAIL: the plugin did not instantiate\n"; ++g_failures; return; }
    h.mode = 2.0f; h.instruments = 1.0f;                                  // bass and drums
    h.position(0, 0.0, bpm, 1, 3, 4, 0.0);
    play_in(h, ins, ins.back().frame + (int64_t)RATE);
    int program[16];
    std::fill(program, program + 16, -1);
    size_t ons = 0, drums = 0, bass = 0, other = 0;
    for (const Midi& m : h.midi) {
        const int ch = m.status & 0x0F;
        if ((m.status & 0xF0) == 0xC0) { program[ch] = m.a; continue; }
        if ((m.status & 0xF0) != 0x90 || m.b == 0) continue;
        ++ons;
        if (ch == 9) ++drums; else if (program[ch] >= 32 && program[ch] < 40) ++bass; else ++other;
    }
    std::string why;
    const int left = legal(h, 0, h.midi.size(), why);
    CHECK(h.heard == (float)part.sounding.size(), "a band model hears every note of the melody: " << h.heard << " of " << part.sounding.size());
    CHECK(ons > 10 && other == 0, "Instruments at bass and drums: " << ons << " notes, " << bass << " on the bass, " << drums << " on the drums, " << other << " on anything else");
    CHECK(h.order_ok && left >= 0 && h.allocs_in_run == 0 && h.late == 0, "legal MIDI, no allocation in run() (" << h.allocs_in_run << "), no late note (" << h.late << ")" << (left < 0 ? ": " + why : ""));
}

void scenario(LilvWorld* world, const LilvPlugin* plugin, const std::string& fix) {
    // the allocation counter sees what the plugin allocates (its instantiate loads the model)
    g_allocs = 0; g_counting = true;
    LilvInstance* probe = lilv_plugin_instantiate(plugin, RATE, g_features);
    g_counting = false;
    CHECK(probe && g_allocs > 10, "the malloc counter sees the plugin's own allocations (" << g_allocs << " while it loads its model)");
    if (probe) lilv_instance_free(probe);

    // ---- 1. generate at 120 bpm (12 s), then 90 bpm (12 s), then stop; ---------------------------------------------
    Host h(world, plugin);
    if (!h.inst) { std::cerr << "FAIL: the plugin did not instantiate (MUSE_MODEL=" << (std::getenv("MUSE_MODEL") ? std::getenv("MUSE_MODEL") : "") << ")\n"; ++g_failures; return; }
    const int B120 = 2250, B90 = 2250, BSTOP = 200;
    h.position(0, 0.0, 120, 1);
    for (int i = 0; i < B120; ++i) h.block();
    const int64_t tempo_frame = h.frame;
    const double tempo_beat = tempo_frame * 2.0 / RATE;                  // 120 bpm: 2 beats a second
    h.position(0, tempo_beat, 90, 1);
    const size_t n120 = h.midi.size();
    for (int i = 0; i < B90; ++i) h.block();
    const size_t n90 = h.midi.size();
    const int64_t stop_frame = h.frame;
    const double stop_beat = tempo_beat + (stop_frame - tempo_frame) * 1.5 / RATE;
    h.position(100, stop_beat + 100 * 1.5 / RATE, 90, 0);
    for (int i = 0; i < BSTOP; ++i) h.block();
    std::string why;
    const int left = legal(h, 0, h.midi.size(), why);
    CHECK(h.order_ok, "events inside each block are in frame order, within the block");
    CHECK(left == 0, "legal MIDI over " << B120 + B90 + BSTOP << " blocks: " << (left < 0 ? why : std::to_string(left) + " notes left sounding after the stop"));
    size_t ons120 = 0, ons90 = 0, off_grid = 0, after_stop = 0, offs_at_stop = 0;
    for (size_t i = 0; i < h.midi.size(); ++i) {
        const Midi& m = h.midi[i];
        const bool on = (m.status & 0xF0) == 0x90 && m.b > 0;
        if (m.frame >= stop_frame + 100) { ++after_stop; if (m.frame == stop_frame + 100 && (m.status & 0xF0) == 0x80) ++offs_at_stop; if (!on) continue; }
        if (!on) continue;
        double beat = m.frame < tempo_frame ? m.frame * 2.0 / RATE : tempo_beat + (m.frame - tempo_frame) * 1.5 / RATE;
        const double frames_per_step = (m.frame < tempo_frame ? RATE / 2 : RATE / 1.5) / 25;
        if (std::fabs(beat * 25 - std::round(beat * 25)) * frames_per_step > 1.0) {   // more than a frame off the grid
            if (++off_grid <= 5) std::cerr << "  off the grid: note-on at frame " << m.frame << " (block frame " << m.frame % BLOCK << "), beat " << beat << ", step " << beat * 25 << "\n";
        }
        (m.frame < tempo_frame ? ons120 : ons90)++;
    }
    CHECK(ons120 > 50 && ons90 > 30, "it plays: " << ons120 << " notes in 12 s at 120 bpm, " << ons90 << " in 12 s at 90 bpm");
    CHECK(off_grid == 0, "every note-on on the grid, to the frame (" << off_grid << " off it), at both tempos");
    CHECK(after_stop == offs_at_stop, "the stop silences the sounding notes at its frame (" << offs_at_stop << " note-offs) and nothing plays after (" << after_stop - offs_at_stop << ")");
    (void)n120; (void)n90;

    // ---- 2. continue mode: the player plays a phrase from a real chorale; the plugin answers ----------------------
    const size_t before = h.midi.size();
    h.mode = 1.0f;
    double beat = 200.0;                                                   // the transport restarts at beat 200, 120 bpm
    h.position(0, beat, 120, 1);
    h.block();
    const int64_t start = h.frame;                                         // beat 200 + 256 frames
    const double start_beat = beat + BLOCK * 2.0 / RATE;
    auto piece = read_seqs(fix + "/streams_duration.seq")[1];
    auto notes = muse::decode_notes(piece, muse::Vocab{});
    std::vector<muse::Note> phrase(notes.begin(), notes.begin() + std::min<size_t>(24, notes.size()));
    std::vector<In> ins;
    for (const auto& n : phrase) {                                         // 20 ms steps at 120 bpm: 960 frames
        ins.push_back({start + 960 * n.start, true, n.pitch, n.velocity});
        ins.push_back({start + 960 * n.end - 1, false, n.pitch, 0});
    }
    std::stable_sort(ins.begin(), ins.end(), [](const In& a, const In& b) { return a.frame < b.frame; });
    const int64_t phrase_end = ins.back().frame;
    play_in(h, ins, phrase_end + (int64_t)(RATE * 6));                    // the phrase, then 6 s
    const Answer ans = answer_after(h, before, phrase_end);
    const size_t during = ans.during, answer_notes = ans.notes;
    const int64_t first_answer = ans.first;
    const double gap_beats = first_answer < 0 ? -1 : (first_answer - phrase_end) * 2.0 / RATE;
    CHECK(during == 0, "continue mode is silent while the player plays " << phrase.size() << " notes of a chorale (" << during << " notes)");
    CHECK(first_answer > 0 && gap_beats >= 1.0 && gap_beats <= 3.0, "the answer starts " << gap_beats << " beats after the phrase ends (one beat of silence, then the next beat)");
    CHECK(answer_notes >= 5, "and goes on: " << answer_notes << " notes in the 6 s after the phrase");
    const int left2 = legal(h, before, h.midi.size(), why);
    CHECK(left2 >= 0, "legal MIDI in continue mode" << (left2 < 0 ? ": " + why : ""));
    if (left2 < 0) for (size_t i = before; i < h.midi.size() && i < before + 12; ++i) std::cerr << "  " << h.midi[i].frame << " " << std::hex << (int)h.midi[i].status << std::dec << " " << (int)h.midi[i].a << " " << (int)h.midi[i].b << "\n";

    // ---- 2b. the player's sustain pedal: the phrase played detached on the pedal, lifted two beats after the last key.
    // Its notes sound until the pedal lifts, so the answer waits for the lift (one beat of silence after it), as the
    // tokenizer reads the pedal in files; before, it came a beat after the last key, over the still sounding notes.
    {
        const size_t before_p = h.midi.size();
        const int64_t s0 = h.frame + BLOCK;
        std::vector<In> pins;
        for (const auto& n : phrase) {
            pins.push_back({s0 + 960 * n.start, true, n.pitch, n.velocity});
            pins.push_back({s0 + 960 * n.start + std::max<int64_t>(1, 384 * (n.end - n.start)) - 1, false, n.pitch, 0});   // keys held 40%
        }
        std::stable_sort(pins.begin(), pins.end(), [](const In& a, const In& b) { return a.frame < b.frame; });
        const int64_t keys_up = pins.back().frame, lift = keys_up + RATE;        // 1 s: two beats at 120 bpm
        pins.insert(pins.begin(), In{h.frame, true, 64, 127, true});            // the pedal goes down before the first note
        pins.push_back(In{lift, false, 64, 0, true});                            // and lifts
        play_in(h, pins, lift + (int64_t)(RATE * 6));
        const Answer ans_p = answer_after(h, before_p, lift);
        const size_t under = ans_p.during, answered = ans_p.notes;
        const int64_t first = ans_p.first;
        const double after_lift = first < 0 ? -1 : (first - lift) * 2.0 / RATE;
        CHECK(under == 0, "with the pedal down, silent until it lifts, 2 beats after the last key (" << under << " notes over the pedalled phrase)");
        CHECK(first > 0 && after_lift >= 1.0 && after_lift <= 3.0, "the answer starts " << after_lift << " beats after the pedal lifts");
        CHECK(answered >= 5, "and goes on: " << answered << " notes");
        std::string whyp;
        CHECK(legal(h, before_p, h.midi.size(), whyp) >= 0, "legal MIDI with the pedal" << (whyp.empty() ? "" : ": " + whyp));
    }

    // ---- 2c. a long phrase over a held bass: 300 notes (more than the 256 the plugin keeps) while a C2 is held from the
    // start. Dropping the oldest note, still held, must not leave it counted as held: the answer comes after its release.
    {
        const size_t before_l = h.midi.size();
        const int64_t s0 = h.frame + BLOCK;
        std::vector<In> lin{{s0, true, 36, 80}};
        for (int i = 0; i < 300; ++i) {
            lin.push_back({s0 + 4800 * (i + 1), true, 60 + (i * 7) % 24, 70});           // eighth notes at 120 bpm
            lin.push_back({s0 + 4800 * (i + 1) + 3000, false, 60 + (i * 7) % 24, 0});
        }
        const int64_t bass_up = s0 + 4800 * 302;
        lin.push_back({bass_up, false, 36, 0});
        play_in(h, lin, bass_up + (int64_t)(RATE * 6));
        const Answer a = answer_after(h, before_l, bass_up);
        const double gap = a.first < 0 ? -1 : (a.first - bass_up) * 2.0 / RATE;
        CHECK(a.during == 0 && a.first > 0 && gap >= 1.0 && gap <= 3.0 && a.notes >= 5,
              "a 301-note phrase over a held bass: " << a.during << " notes during it, the answer " << gap << " beats after the bass lets go, " << a.notes << " notes");
    }

    // ---- 3. real time --------------------------------------------------------------------------------------------
    std::vector<double> us = h.run_us;
    std::sort(us.begin(), us.end());
    const double budget = BLOCK / RATE * 1e6;
    const double p50 = us[us.size() / 2], p99 = us[us.size() * 99 / 100], mx = us.back();
    CHECK(h.allocs_in_run == 0, "no allocation inside run() over " << us.size() << " blocks (" << h.allocs_in_run << ")");
    CHECK(h.late == 0, "no late notes (the plugin's own count: " << h.late << ")");
    CHECK(p99 < budget, "run() per 256-frame block: p50 " << p50 << " us, p99 " << p99 << " us, max " << mx << " us, against " << budget << " us of audio");

    // ---- 4. note density: the same seed, more notes at 2 than at 0.5 ----------------------------------------------
    size_t counts[2];
    const float dens[2] = {0.5f, 2.0f};
    for (int d = 0; d < 2; ++d) {
        Host hd(world, plugin);
        hd.density = dens[d];
        hd.position(0, 0.0, 120, 1);
        for (int i = 0; i < 3000; ++i) hd.block();
        counts[d] = 0;
        for (const Midi& m : hd.midi) if ((m.status & 0xF0) == 0x90 && m.b > 0) ++counts[d];
        std::string w;
        CHECK(legal(hd, 0, hd.midi.size(), w) >= 0, "legal MIDI at density " << dens[d] << (w.empty() ? "" : ": " + w));
    }
    CHECK(counts[1] > counts[0] * 1.2, "note density 2 plays more than 0.5: " << counts[1] << " vs " << counts[0] << " notes in 16 s");

    // ---- 5. a musician's controls, moved while it plays -----------------------------------------------------------
    {
        Host hc(world, plugin);
        hc.scale_root = 2; hc.scale = 2; hc.lowest = 60; hc.highest = 72; hc.polyphony = 2; hc.onsets = 2;   // D dorian, C4-C5
        hc.position(0, 0.0, 120, 1);
        for (int i = 0; i < 3000; ++i) hc.block();
        const int64_t moved = hc.frame;
        hc.scale_root = 7; hc.scale = 10; hc.lowest = 48; hc.highest = 60; hc.polyphony = 1; hc.onsets = 0;  // G pentatonic, C3-C4, one voice
        for (int i = 0; i < 3000; ++i) hc.block();
        const std::set<int> dorian = {0, 2, 4, 5, 7, 9, 11}, penta = {7, 9, 11, 2, 4};
        size_t ons[2] = {0, 0}, wrong[2] = {0, 0}, most[2] = {0, 0}, busiest = 0;
        std::set<int> sounding;
        std::map<int64_t, size_t> per_beat;                                  // onsets in each host beat (120 bpm: 24,000 frames)
        for (const Midi& m : hc.midi) {
            const int kind = m.status & 0xF0;
            if (kind == 0x80 || (kind == 0x90 && m.b == 0)) { sounding.erase(m.a); continue; }
            if (kind != 0x90) continue;
            const int part = m.frame >= moved ? 1 : 0;
            sounding.insert(m.a);
            ++ons[part];
            if (part == 0) {
                wrong[0] += m.a < 60 || m.a > 72 || !dorian.count(m.a % 12);
                busiest = std::max(busiest, ++per_beat[m.frame / 24000]);
            } else if (m.frame >= moved + BLOCK) wrong[1] += m.a < 48 || m.a > 60 || !penta.count(m.a % 12);   // from the block after the move
            if (m.frame >= moved + (int64_t)RATE || part == 0) most[part] = std::max(most[part], sounding.size());   // notes begun before the move end first
        }
        std::string w;
        CHECK(legal(hc, 0, hc.midi.size(), w) >= 0 && hc.allocs_in_run == 0, "legal MIDI with controls, no allocation in run() when they move (" << hc.allocs_in_run << ")" << (w.empty() ? "" : ": " + w));
        CHECK(ons[0] > 40 && wrong[0] == 0 && most[0] <= 2 && busiest <= 2,
              "D dorian, C4-C5, two voices, two onsets a beat: " << ons[0] << " notes, " << wrong[0] << " outside, at most " << most[0] << " sounding, " << busiest << " onsets in a beat");
        CHECK(ons[1] > 20 && wrong[1] == 0 && most[1] <= 1, "moved to G pentatonic, C3-C4, one voice: " << ons[1] << " notes, " << wrong[1] << " outside, at most " << most[1] << " sounding");
    }
}
}  // namespace
