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
    } catch (const std::logic_error&) { throw Error(where + ": its vocabulary settings are not numbers where numbers belong"); }
    v.n_durations = (int)v.duration_steps.size();
    if (v.time_shift_ms <= 0 || v.n_shifts <= 0 || v.n_velocities <= 0 || v.n_durations <= 0 || v.size() > MAX_VOCAB)
        throw Error(where + ": its vocabulary layout is not one this library holds (" + std::to_string(v.size()) + " ids, at most 512)");
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
    if (id < v.program()) return "DURATION_" + std::to_string(id - v.duration() + 1);
    if (id < v.drum()) return "PROGRAM_" + std::to_string(id - v.program());
    return "DRUM_" + std::to_string(id - v.drum() + DRUM_LOW);
}

}  // namespace muse
