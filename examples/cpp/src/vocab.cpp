// The vocabulary: vocab.json, its fingerprint and the names of the ids.
#include "detail.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>

#include <nlohmann/json.hpp>   // Debian's nlohmann-json3-dev (or PyPI's nlohmann-json): the JSON of vocab.json and model metadata

namespace muse {
using json = nlohmann::json;

namespace detail {
std::vector<uint8_t> read_file(const std::string& path, const char* what, uint64_t most) {
    std::ifstream f(path, std::ios::binary | std::ios::ate);
    if (!f) throw Error(std::string(what) + " not found: " + path);
    const std::streamoff size = f.tellg();
    if (size < 0) throw Error(path + ": cannot be read as a file");
    if ((uint64_t)size > most) throw Error(path + ": " + std::to_string(size) + " bytes, more than the " + std::to_string(most) + " a " + what + " may have here");
    f.seekg(0);
    std::vector<uint8_t> out((size_t)size);
    if (size && !f.read(reinterpret_cast<char*>(out.data()), size)) throw Error(path + ": could not be read whole");
    return out;
}

json parse_json(const std::string& text, const std::string& where, const char* what) {
    try { return json::parse(text); }
    catch (const json::exception& e) { throw Error(where + ": not " + what + " (" + e.what() + ")"); }
}

double json_number(const std::string& text, const std::string& key, double dflt, const std::string& where) {
    if (text.empty()) return dflt;
    const json j = parse_json(text, where, "JSON");
    if (!j.is_object()) throw Error(where + ": not a JSON object");
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) return dflt;
    if (!it->is_number()) throw Error(where + ": " + key + " is not a number");
    return it->get<double>();
}

std::vector<std::string> json_list(const std::string& text, const std::string& where) {
    std::vector<std::string> out;
    if (text.empty()) return out;
    const json j = parse_json(text, where, "JSON");
    if (!j.is_array()) throw Error(where + ": not a JSON list");
    for (const json& x : j) {
        if (x.is_string()) out.push_back(x.get<std::string>());
        else if (x.is_number_integer()) out.push_back(std::to_string(x.get<int64_t>()));
        else throw Error(where + ": an item of its list is neither a name nor a whole number");
    }
    return out;
}
}  // namespace detail

std::string read_vocab_sha256(const std::string& path) {
    auto bytes = detail::read_file(path, "vocab", limits::VOCAB_BYTES);
    const json j = detail::parse_json(std::string(bytes.begin(), bytes.end()), path, "a vocab.json");
    const auto it = j.is_object() ? j.find("sha256") : j.end();
    if (it == j.end() || !it->is_string()) throw Error(path + ": no \"sha256\" in this vocab.json (write it with muse_prep)");
    const std::string sha = it->get<std::string>();
    bool hex = sha.size() == 64 && std::all_of(sha.begin(), sha.end(), [](char c) { return std::isxdigit((unsigned char)c); });
    if (!hex) throw Error(path + ": its sha256 is not 64 hex characters");
    return sha;
}

// ------------------------------------------------------------------------------------------------ the vocabulary
std::array<std::array<int, 2>, N_METERS> default_meters() {
    std::array<std::array<int, 2>, N_METERS> m{};
    for (int n = 1; n <= 12; ++n) { m[n - 1] = {n, 4}; m[11 + n] = {n, 8}; }
    m[24] = {2, 2}; m[25] = {3, 2}; m[26] = {4, 2};
    return m;
}
std::array<int, N_TEMPOS> default_tempos() {
    std::array<int, N_TEMPOS> t{};
    for (int i = 0; i < N_TEMPOS; ++i) t[i] = (int)std::lround(120.0 * std::pow(2.0, (i - 19) / 12.0));
    return t;
}

int Vocab::velocity_value(int bin) const { return (int)std::lround((bin - 0.5) * 128.0 / n_velocities); }
int Vocab::velocity_bin(int velocity) const { return std::min(std::max((velocity - 1) * n_velocities / 128 + 1, 1), n_velocities); }

int Vocab::duration_bin(double steps, double max_steps) const {
    int b = 1;
    while (b < n_durations && steps > (duration_steps[b - 1] + duration_steps[b]) / 2.0) ++b;
    int fit = 0;
    while (fit < n_durations && duration_steps[fit] <= max_steps) ++fit;
    return std::min(b, std::max(fit, 1));
}

int Vocab::tempo_bin(double bpm) const {
    const double q = std::log(bpm);
    int best = 0;
    for (int i = 1; i < N_TEMPOS; ++i) if (std::fabs(std::log((double)tempos[i]) - q) < std::fabs(std::log((double)tempos[best]) - q)) best = i;
    return best;
}

int Vocab::default_velocity_bin() const { return std::min(std::max((72 - 1) * n_velocities / 128 + 1, 1), n_velocities); }

Vocab Vocab::parse(const std::string& text, const std::string& where) {
    const json j = detail::parse_json(text, where, "a vocab.json");
    const auto found = j.is_object() ? j.find("settings") : j.end();
    if (found == j.end() || !found->is_object()) throw Error(where + ": no \"settings\" (not a vocab.json from muse_prep)");
    const json& st = *found;
    const auto need = [&](const char* key) -> const json& {
        const auto it = st.find(key);
        if (it == st.end()) throw Error(where + ": no \"" + key + "\" in its vocabulary settings");
        return *it;
    };
    const auto whole = [&](const json& x, const char* key) {            // a whole number that fits the layout's fields
        if (!x.is_number_integer() || x.get<int64_t>() < -limits::VOCAB_NUMBER || x.get<int64_t>() > limits::VOCAB_NUMBER)
            throw Error(where + ": " + key + " is not a whole number of this library's range (its vocabulary settings are not numbers where numbers belong)");
        return (int)x.get<int64_t>();
    };
    const auto list = [&](const char* key, size_t most) {               // a list of whole numbers, of at most `most` items
        const json& x = need(key);
        if (!x.is_array() || x.size() > most) throw Error(where + ": " + key + " is not a list of at most " + std::to_string(most) + " numbers");
        std::vector<int> out;
        for (const json& e : x) out.push_back(whole(e, key));
        return out;
    };
    const auto text_of = [&](const char* key, const char* absent) {     // a string setting (`absent` when it is not there)
        const auto it = st.find(key);
        if (it == st.end()) return std::string(absent);
        if (!it->is_string()) throw Error(where + ": " + key + " is not a string");
        return it->get<std::string>();
    };
    Vocab v;
    const std::string mode = text_of("mode", "");
    if (mode != "duration" && mode != "performance") throw Error(where + ": mode '" + mode + "' is not one this library reads (duration, performance)");
    v.performance = mode == "performance";
    v.time_shift_ms = whole(need("time_shift_ms"), "time_shift_ms");
    v.n_shifts = whole(need("max_shift_steps"), "max_shift_steps");
    v.n_velocities = (int)list("velocity_values", MAX_VOCAB).size();
    v.multi = text_of("tracks", "single") == "multi";
    v.duration_steps = list("duration_steps", MAX_VOCAB);
    const auto cond = st.find("conditioning");                          // given parts as controls (AHEAD, CTRL ids after the layout)
    if (cond != st.end() && !cond->is_boolean()) throw Error(where + ": conditioning is not true or false");
    v.conditioning = cond != st.end() && cond->get<bool>();
    const auto hb = st.find("band_header");
    v.header = hb != st.end() && hb->is_boolean() && hb->get<bool>();
    const std::string unit = text_of("time_unit", "ms");
    if (unit != "ms" && unit != "beat") throw Error(where + ": time_unit " + unit + " is not one this library reads (ms, beat)");
    v.beat = unit == "beat";
    if (v.beat) {
        v.resolution = whole(need("beat_resolution"), "beat_resolution");
        const auto tempos = list("tempos", N_TEMPOS + 1);
        const json& meters = need("meters");
        bool pairs = meters.is_array() && meters.size() == N_METERS;
        for (size_t i = 0; pairs && i < meters.size(); ++i) pairs = meters[i].is_array() && meters[i].size() == 2;
        if (!pairs || tempos.size() != N_TEMPOS) throw Error(where + ": its meters or tempos are not the ones this library knows");
        for (int i = 0; i < N_TEMPOS; ++i) v.tempos[i] = tempos[i];
        for (int i = 0; i < N_METERS; ++i) v.meters[i] = {whole(meters[i][0], "meters"), whole(meters[i][1], "meters")};
        if (v.meters != default_meters() || v.tempos != default_tempos()) throw Error(where + ": its meters or tempos are not the ones this library knows");
        if (v.resolution < 2 || v.resolution > 96 || v.resolution % 2) throw Error(where + ": beat_resolution " + std::to_string(v.resolution) + " is not an even number from 2 to 96");
    }
    if (v.conditioning) {                                               // controls are placed on the beat grid: 4 beats ahead at most
        if (!v.beat) throw Error(where + ": conditioning needs time_unit beat (controls are placed on its grid of ticks)");
        v.max_ahead = 4 * v.resolution;
        const auto ma = st.find("max_ahead_ticks");
        if (ma != st.end() && whole(*ma, "max_ahead_ticks") != v.max_ahead)
            throw Error(where + ": max_ahead_ticks " + std::to_string(whole(*ma, "max_ahead_ticks")) + " is not the 4 beats (" + std::to_string(v.max_ahead) + " ticks) this library knows");
    }
    v.n_durations = (int)v.duration_steps.size();
    const bool steps_ok = std::all_of(v.duration_steps.begin(), v.duration_steps.end(), [](int d) { return d > 0; });
    if (v.time_shift_ms <= 0 || v.n_shifts <= 0 || v.n_velocities <= 0 || v.n_durations <= 0 || !steps_ok || v.size() > MAX_VOCAB || (v.header && !v.multi))
        throw Error(where + ": its vocabulary layout is not one this library holds (" + std::to_string(v.size()) + " ids, at most " + std::to_string(MAX_VOCAB) + ")");
    return v;
}

Vocab Vocab::read(const std::string& path) {
    auto bytes = detail::read_file(path, "vocab", limits::VOCAB_BYTES);
    return parse(std::string(bytes.begin(), bytes.end()), path);
}

std::string token_name(int id, const Vocab& v) {
    if (id < 0 || id >= v.size()) return "<invalid " + std::to_string(id) + ">";
    static const char* special[] = {"<PAD>", "<BOS>", "<EOS>", "<UNK>"};
    if (id < NOTE_ON) return special[id];
    if (id < NOTE_OFF) return "NOTE_ON_" + std::to_string(id - NOTE_ON);
    if (id < TIME_SHIFT) return "NOTE_OFF_" + std::to_string(id - NOTE_OFF);
    if (id < v.velocity()) return "TIME_SHIFT_" + std::to_string(id - TIME_SHIFT + 1);
    if (id < v.duration()) return "VELOCITY_" + std::to_string(id - v.velocity() + 1);
    if (id < v.duration_end()) return "DURATION_" + std::to_string(id - v.duration() + 1);
    if (id == v.bar()) return "BAR";
    if (v.is_meter(id)) { auto& m = v.meters[id - v.meter()]; return "METER_" + std::to_string(m[0]) + "/" + std::to_string(m[1]); }
    if (v.is_tempo(id)) return "TEMPO_" + std::to_string(v.tempos[id - v.tempo()]);
    if (id == v.header_drums()) return "HEADER_DRUMS";
    if (id == v.header_end()) return "HEADER_END";
    if (id < v.drum()) return "PROGRAM_" + std::to_string(id - v.program());
    if (id < v.ahead()) return "DRUM_" + std::to_string(id - v.drum() + DRUM_LOW);
    if (id < v.ctrl()) return "AHEAD_" + std::to_string(id - v.ahead());
    if (id < v.ctrl_drum()) return "CTRL_NOTE_" + std::to_string(id - v.ctrl());
    return "CTRL_DRUM_" + std::to_string(id - v.ctrl_drum() + DRUM_LOW);
}

}  // namespace muse
