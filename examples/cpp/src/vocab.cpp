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

namespace muse {

namespace detail {
std::vector<uint8_t> read_file(const std::string& path, const char* what) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw Error(std::string(what) + " not found: " + path);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}
}  // namespace detail

std::string read_vocab_sha256(const std::string& path) {
    auto bytes = detail::read_file(path, "vocab");
    std::string s(bytes.begin(), bytes.end());
    auto k = s.rfind("\"sha256\"");
    if (k == std::string::npos) throw Error(path + ": no \"sha256\" in this vocab.json (write it with muse_prep)");
    auto q = s.find('"', s.find(':', k) + 1);
    auto e = q == std::string::npos ? q : s.find('"', q + 1);
    std::string sha = e == std::string::npos ? "" : s.substr(q + 1, e - q - 1);
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
int Vocab::default_velocity_bin() const { return std::min(std::max((72 - 1) * n_velocities / 128 + 1, 1), n_velocities); }

namespace {
// The value after `"key":` in `s` from `from` on: the text of a number, a string's contents, or an array's inside.
std::string json_value(const std::string& s, size_t from, const std::string& key, const std::string& where) {
    size_t k = s.find("\"" + key + "\"", from);
    if (k == std::string::npos) throw Error(where + ": no \"" + key + "\" in its vocabulary settings");
    size_t i = s.find(':', k) + 1;
    while (i < s.size() && std::isspace((unsigned char)s[i])) ++i;
    if (i >= s.size()) throw Error(where + ": \"" + key + "\" has no value");
    if (s[i] == '"') { size_t e = s.find('"', i + 1); return s.substr(i + 1, e - i - 1); }
    size_t e = s[i] == '[' ? s.find(']', i) : s.find_first_of(",}", i);
    if (e == std::string::npos) throw Error(where + ": \"" + key + "\" is not closed");
    return s.substr(s[i] == '[' ? i + 1 : i, e - (s[i] == '[' ? i + 1 : i));
}
std::vector<double> json_numbers(const std::string& list) {
    std::vector<double> out;
    std::istringstream in(list);
    std::string x;
    while (std::getline(in, x, ',')) if (x.find_first_not_of(" \n\t") != std::string::npos) out.push_back(std::stod(x));
    return out;
}
}  // namespace

Vocab Vocab::parse(const std::string& s, const std::string& where) {
    size_t at = s.find("\"settings\"");
    if (at == std::string::npos) throw Error(where + ": no \"settings\" (not a vocab.json from muse_prep)");
    Vocab v;
    try {
        v.performance = json_value(s, at, "mode", where) == "performance";
        v.time_shift_ms = std::stoi(json_value(s, at, "time_shift_ms", where));
        v.n_shifts = std::stoi(json_value(s, at, "max_shift_steps", where));
        v.n_velocities = (int)json_numbers(json_value(s, at, "velocity_values", where)).size();
        v.multi = s.find("\"tracks\"", at) != std::string::npos && json_value(s, at, "tracks", where) == "multi";   // absent: single
        v.duration_steps.clear();
        for (double d : json_numbers(json_value(s, at, "duration_steps", where))) v.duration_steps.push_back((int)d);
        v.header = s.find("\"band_header\"", at) != std::string::npos && json_value(s, at, "band_header", where) == "true";
        if (s.find("\"time_unit\"", at) != std::string::npos) {
            const std::string unit = json_value(s, at, "time_unit", where);
            if (unit != "ms" && unit != "beat") throw Error(where + ": time_unit " + unit + " is not one this library reads (ms, beat)");
            v.beat = unit == "beat";
        }
        if (v.beat) {
            v.resolution = std::stoi(json_value(s, at, "beat_resolution", where));
            auto tempos = json_numbers(json_value(s, at, "tempos", where));
            size_t k = s.find("\"meters\"", at), a = k == std::string::npos ? k : s.find('[', k), e = a;
            for (int depth = 0; e != std::string::npos && e < s.size(); ++e) {   // the list of pairs, to its closing bracket
                if (s[e] == '[') ++depth;
                else if (s[e] == ']' && --depth == 0) break;
            }
            if (a == std::string::npos || e >= s.size()) throw Error(where + ": no \"meters\" list in its beat-time settings");
            std::string list = s.substr(a + 1, e - a - 1);
            for (char& c : list) if (c == '[' || c == ']') c = ' ';
            auto meters = json_numbers(list);
            if (tempos.size() != N_TEMPOS || meters.size() != 2 * N_METERS) throw Error(where + ": its meters or tempos are not the ones this library knows");
            for (int i = 0; i < N_TEMPOS; ++i) v.tempos[i] = (int)tempos[i];
            for (int i = 0; i < N_METERS; ++i) v.meters[i] = {(int)meters[2 * i], (int)meters[2 * i + 1]};
            if (v.meters != default_meters() || v.tempos != default_tempos()) throw Error(where + ": its meters or tempos are not the ones this library knows");
            if (v.resolution < 2 || v.resolution > 96 || v.resolution % 2) throw Error(where + ": beat_resolution " + std::to_string(v.resolution) + " is not an even number from 2 to 96");
        }
    } catch (const std::logic_error&) { throw Error(where + ": its vocabulary settings are not numbers where numbers belong"); }
    v.n_durations = (int)v.duration_steps.size();
    if (v.time_shift_ms <= 0 || v.n_shifts <= 0 || v.n_velocities <= 0 || v.n_durations <= 0 || v.size() > MAX_VOCAB || (v.header && !v.multi))
        throw Error(where + ": its vocabulary layout is not one this library holds (" + std::to_string(v.size()) + " ids, at most " + std::to_string(MAX_VOCAB) + ")");
    return v;
}

Vocab Vocab::read(const std::string& path) {
    auto bytes = detail::read_file(path, "vocab");
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
    return "DRUM_" + std::to_string(id - v.drum() + DRUM_LOW);
}

}  // namespace muse
