// Nomad Muse through DPF (Debian's dpf-source): one source for VST3, CLAP, LV2 and a JACK app. It
// only maps the format's parameters, transport and MIDI onto muse::Player (src/player.cpp), which does the music.
//
// The model: the state "model" names a file (an .onnx muse_export wrote: a GRU or a transformer, INT8 or fp32 weights), or
// a zoo name (bach, band, ...) looked up in $MUSE_ZOO or in zoo/ beside the plugin's binary; empty: $MUSE_MODEL, else
// model.onnx beside the binary. It is opened on the host's main thread (setState, activate), never in the constructor:
// DPF's VST3 and CLAP entry points make throwaway instances to read the metadata. A file that cannot be read leaves the
// plugin silent, and the state "status" says why ("error: ..."); the host never sees an exception.
// Real time: run() takes the player with try_lock (never waits; a block that meets a model being swapped stays silent),
// and the player allocates nothing.
#include "DistrhoPlugin.hpp"
#include "DistrhoPluginUtils.hpp"

#include "muse/muse.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

START_NAMESPACE_DISTRHO

namespace {
enum Param : uint32_t { TEMPERATURE, TOP_P, DENSITY, MODE, LISTEN, INSTRUMENTS, SCALE_ROOT, SCALE, LOWEST, HIGHEST, POLYPHONY, ONSETS,
                        LATE, HEARD, REACTION, N_PARAMS };
enum StateKey : uint32_t { STATE_MODEL, STATE_STATUS, N_STATES };
const float DEFAULTS[N_PARAMS] = {1.0f, 0.95f, 1.0f, 0, 20.0f, 0, 0, 0, 0, 127, 0, 0, 0, 0, 0};

// Each parameter's range: what the host is told, and what a value from the host (an automation, a saved state) is
// clamped to (DPF passes a state's text through atof unchecked: "nan" or "-inf" reached the shell, and DPF's own state
// save then cast round(-inf) to int, undefined behaviour fuzz_plugin found)
struct Range { float lo, hi; };
Range range_of(uint32_t i) {
    int bands = 0;
    switch (i) {
        case TEMPERATURE: return {0.1f, 2.0f};
        case TOP_P: return {0.1f, 1.0f};
        case DENSITY: return {0.25f, 4.0f};
        case MODE: return {0, 2};
        case LISTEN: return {0, 50};
        case INSTRUMENTS: muse::Player::bands(&bands); return {0, (float)(bands - 1)};
        case SCALE_ROOT: return {0, 11};
        case SCALE: return {0, (float)muse::scale_names().size()};
        case LOWEST: case HIGHEST: return {0, 127};
        case POLYPHONY: case ONSETS: return {0, 16};
        case LATE: return {0, 1e6f};
        case HEARD: return {-1, 1e6f};
        case REACTION: return {0, 1000};
        default: return {0, 0};
    }
}

std::string folder_of(const char* file) {
    const std::string f = file ? file : "";
    const size_t k = f.find_last_of('/');
    return k == std::string::npos ? "." : f.substr(0, k);
}
}  // namespace

class NomadMuse : public Plugin {
public:
    NomadMuse() : Plugin(N_PARAMS, 0, N_STATES) { std::memcpy(params_, DEFAULTS, sizeof(params_)); }

protected:
    const char* getLabel() const override { return "nomad_muse"; }
    const char* getDescription() const override {
        return "Generates MIDI from a tiny GRU or transformer trained with Nomad Muse Trainer, in time with the host's tempo, bars and "
               "transport: it plays on its own, continues what you play, or accompanies you as you play (a model trained with conditioning).";
    }
    const char* getMaker() const override { return "Nomad Muse"; }
    const char* getHomePage() const override { return "https://github.com/nomad-muse/nomad-muse-trainer"; }
    const char* getLicense() const override { return "Apache-2.0"; }
    uint32_t getVersion() const override { return d_version(0, 1, 0); }
    int64_t getUniqueId() const override { return d_cconst('N', 'M', 'u', 's'); }

    void initAudioPort(bool input, uint32_t index, AudioPort& port) override {
        port.groupId = kPortGroupStereo;                  // silent: the plugin's music is its MIDI
        Plugin::initAudioPort(input, index, port);
    }

    void initParameter(uint32_t i, Parameter& p) override {
        p.hints = kParameterIsAutomatable;
        p.ranges.def = DEFAULTS[i];
        const Range r = range_of(i);
        auto set = [&p, r](const char* name, const char* symbol, const char* unit = "") {
            p.name = name; p.symbol = symbol; p.ranges.min = r.lo; p.ranges.max = r.hi; p.unit = unit;
        };
        auto choices = [&p](std::initializer_list<const char*> labels) {
            auto* v = new ParameterEnumerationValue[labels.size()];
            int k = 0;
            for (const char* l : labels) { v[k].value = (float)k; v[k].label = l; ++k; }
            p.enumValues.count = (uint8_t)labels.size(); p.enumValues.restrictedMode = true; p.enumValues.values = v;
            p.hints |= kParameterIsInteger;
        };
        switch (i) {
            case TEMPERATURE: set("Temperature", "temperature"); break;
            case TOP_P: set("Top-p", "top_p"); break;
            case DENSITY: set("Note density", "density"); p.hints |= kParameterIsLogarithmic; break;
            case MODE: set("Mode", "mode"); choices({"Generate", "Continue the player", "Accompany the player"}); break;
            case LISTEN: set("Listen window", "listen", "ms"); break;
            case INSTRUMENTS: {
                int n = 0; const char* const* b = muse::Player::bands(&n);
                set("Instruments", "instruments");
                auto* v = new ParameterEnumerationValue[n];
                for (int k = 0; k < n; ++k) { v[k].value = (float)k; v[k].label = *b[k] ? b[k] : "all"; }
                p.enumValues.count = (uint8_t)n; p.enumValues.restrictedMode = true; p.enumValues.values = v;
                p.hints |= kParameterIsInteger;
                break;
            }
            case SCALE_ROOT: set("Scale root", "scale_root"); choices({"C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"}); break;
            case SCALE: {
                const auto& names = muse::scale_names();
                set("Scale", "scale");
                auto* v = new ParameterEnumerationValue[names.size() + 1];
                v[0].value = 0; v[0].label = "none";
                for (size_t k = 0; k < names.size(); ++k) { v[k + 1].value = (float)(k + 1); v[k + 1].label = names[k].c_str(); }
                p.enumValues.count = (uint8_t)(names.size() + 1); p.enumValues.restrictedMode = true; p.enumValues.values = v;
                p.hints |= kParameterIsInteger;
                break;
            }
            case LOWEST: set("Lowest note", "lowest"); p.hints |= kParameterIsInteger; break;
            case HIGHEST: set("Highest note", "highest"); p.hints |= kParameterIsInteger; break;
            case POLYPHONY: set("Polyphony", "polyphony"); p.hints |= kParameterIsInteger; break;
            case ONSETS: set("Onsets a beat", "onsets"); p.hints |= kParameterIsInteger; break;
            case LATE: set("Late notes", "late"); p.hints = kParameterIsOutput | kParameterIsInteger; break;
            case HEARD: set("Notes heard", "heard"); p.hints = kParameterIsOutput | kParameterIsInteger; break;
            case REACTION: set("Reaction", "reaction", "ticks"); p.hints = kParameterIsOutput; break;
        }
    }

    void initState(uint32_t i, State& s) override {
        if (i == STATE_MODEL) {
            s.key = "model"; s.label = "Model"; s.defaultValue = "";
            s.hints = kStateIsHostWritable;
            s.description = "An .onnx file muse_export wrote, or a zoo name (bach, band, ...); empty: $MUSE_MODEL or model.onnx beside the plugin";
        } else {
            s.key = "status"; s.label = "Status"; s.defaultValue = "";
            s.hints = kStateIsHostReadable;
            s.description = "The model playing, or why none is (error: ...)";
        }
    }

    float getParameterValue(uint32_t i) const override { return i < N_PARAMS ? params_[i] : 0.0f; }
    void setParameterValue(uint32_t i, float v) override {   // inside the parameter's range; NaN: its default
        if (i >= LATE) return;
        const Range r = range_of(i);
        params_[i] = std::isnan(v) ? DEFAULTS[i] : std::min(r.hi, std::max(r.lo, v));
    }

    String getState(const char* key) const override {
        if (!std::strcmp(key, "model")) return String(model_.c_str());
        if (!std::strcmp(key, "status")) return String(status_.c_str());
        return String();
    }
    void setState(const char* key, const char* value) override {
        if (!std::strcmp(key, "model")) load(value ? value : "");
    }

    void activate() override {                          // (the host's main thread, not processing)
        if (!tried_) load(model_);
        else if (player_) player_->activate();          // a fresh start: the same transport plays the same notes
        said_ = false;
    }

    void run(const float**, float** outputs, uint32_t frames, const MidiEvent* events, uint32_t n_events) override {
        for (uint32_t c = 0; c < DISTRHO_PLUGIN_NUM_OUTPUTS; ++c) std::memset(outputs[c], 0, sizeof(float) * frames);
        std::unique_lock<std::mutex> lock(swap_, std::try_to_lock);
        if (!lock.owns_lock() || !player_) return;       // a model being swapped, or none: silence
        muse::PlayerSettings s;
        s.temperature = params_[TEMPERATURE]; s.top_p = params_[TOP_P]; s.density = params_[DENSITY];
        s.mode = (int)std::lround(params_[MODE]); s.listen_ms = params_[LISTEN]; s.band = (int)std::lround(params_[INSTRUMENTS]);
        for (int k = 0; k < 6; ++k) s.shape[k] = params_[SCALE_ROOT + k];
        player_->begin(s, &NomadMuse::midi, this);
        transport(frames);
        uint32_t done = 0;
        for (uint32_t e = 0; e < n_events; ++e) {
            const uint32_t at = std::min(std::max(events[e].frame, done), frames);
            player_->play(done, at);
            done = at;
            const uint8_t* data = events[e].size > MidiEvent::kDataSize ? events[e].dataExt : events[e].data;
            player_->midi_in(at, data, events[e].size);
        }
        player_->play(done, frames);
        params_[LATE] = (float)player_->late();
        params_[HEARD] = (float)player_->heard();
        params_[REACTION] = (float)player_->reaction();
    }

private:
    float params_[N_PARAMS];
    std::unique_ptr<muse::Player> player_;
    std::mutex swap_;
    std::string model_, status_;
    bool tried_ = false;
    // the transport the player last heard of, and where its own clock says the next block starts
    bool playing_ = false, said_ = false;
    double bpm_ = NAN, per_bar_ = NAN, unit_ = NAN;
    int64_t next_frame_ = 0, last_frame_ = -1;

    static void midi(void* self, uint32_t frame, const uint8_t msg[3]) {
        MidiEvent e;
        e.frame = frame; e.size = 3;
        std::memcpy(e.data, msg, 3);
        static_cast<NomadMuse*>(self)->writeMidiEvent(e);
    }

    // The host's transport, told to the player where it differs from what the player's own clock expects: a host says it
    // every block, and the player treats a moved song position as a jump, which starts a new piece. A jump is read from
    // the transport's frame, not its bar and beat: DPF 1.6's LV2 wrapper, advancing bar and beat between the host's
    // messages, reports the next bar one block early at each bar line (seen in lilv: bar 2, beat 3 at the end of bar 1),
    // where its frame count runs true; a frame that stays where it was (minihost's LV2 hosting never moves it) is no jump.
    void transport(uint32_t frames) {
        const TimePosition& t = getTimePosition();
        muse::HostTime h;
        h.speed = t.playing ? 1.0 : 0.0;
        if (t.bbt.valid && t.bbt.beatsPerMinute > 0 && t.bbt.beatsPerBar > 0) {
            h.bpm = t.bbt.beatsPerMinute; h.beats_per_bar = t.bbt.beatsPerBar; h.beat_unit = t.bbt.beatType;
            h.bar = t.bbt.bar - 1;
            h.bar_beat = (t.bbt.beat - 1) + (t.bbt.ticksPerBeat > 0 ? t.bbt.tick / t.bbt.ticksPerBeat : 0.0);
        }
        const int64_t at = (int64_t)t.frame;
        const bool same = said_ && t.playing == playing_ && (std::isnan(h.bpm) ? std::isnan(bpm_) : (h.bpm == bpm_ && h.beats_per_bar == per_bar_ && h.beat_unit == unit_))
                          && (std::llabs(at - next_frame_) <= 1 || at == last_frame_);
        if (!same) player_->position(0, h);
        said_ = true; playing_ = t.playing;
        bpm_ = h.bpm; per_bar_ = h.beats_per_bar; unit_ = h.beat_unit;
        if (!same) next_frame_ = at;
        last_frame_ = at;
        if (t.playing) next_frame_ += frames;
    }

    // The model a value names (see the top of this file), opened here, off the audio thread
    std::string resolve(const std::string& value) const {
        const std::string here = folder_of(getBinaryFilename());
        if (value.empty()) {
            const char* env = std::getenv("MUSE_MODEL");
            return env && *env ? env : here + "/model.onnx";
        }
        if (value.find('/') != std::string::npos || value.size() > 5 && value.compare(value.size() - 5, 5, ".onnx") == 0) return value;
        const char* zoo = std::getenv("MUSE_ZOO");
        return (zoo && *zoo ? std::string(zoo) : here + "/zoo") + "/" + value + "/model.onnx";
    }
    void load(const std::string& value) {
        tried_ = true;
        std::unique_ptr<muse::Player> next;
        std::string status;
        const std::string path = resolve(value);
        try {
            next.reset(new muse::Player(muse::open_native(path), getSampleRate()));
            next->activate();
            status = "playing " + path + " (" + next->model().model_type() + ", " + std::to_string(next->model().vocab().size()) + " ids)";
        } catch (const std::exception& e) {
            status = std::string("error: ") + e.what();
            d_stderr2("nomad_muse: %s", status.c_str());
        }
        std::lock_guard<std::mutex> lock(swap_);          // the audio thread skips a block rather than wait for this
        player_.swap(next);
        model_ = value; status_ = status; said_ = false;
    }

    DISTRHO_DECLARE_NON_COPYABLE_WITH_LEAK_DETECTOR(NomadMuse)
};

Plugin* createPlugin() { return new NomadMuse(); }

END_NAMESPACE_DISTRHO
