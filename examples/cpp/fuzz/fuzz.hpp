// Shared by the fuzz harnesses (`make fuzz`: libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer) and their
// replay (ctest `fuzz_replay_*`: every seed and every crash ever found, through the same function, in the normal build).
// Each harness defines LLVMFuzzerTestOneInput: one input in, nothing thrown out but muse::Error (the library's own
// message for a file it refuses), no crash, no leak, no read past a buffer, no undefined behaviour.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <unistd.h>

#include "muse/muse.hpp"

namespace fuzz {
// The readers take paths, as a host gives them: the input goes through a file of its own in /dev/shm (or /tmp), removed
// when the process ends (replays left one per harness and run behind before)
struct Removed { std::string path; ~Removed() { std::remove(path.c_str()); } };
inline const std::string& scratch(const char* name) {
    static const std::string dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    static const Removed file{dir + "/muse_fuzz_" + name + "_" + std::to_string(getpid())};
    return file.path;
}
inline const std::string& to_file(const char* name, const uint8_t* data, size_t size) {
    const std::string& p = scratch(name);
    FILE* f = std::fopen(p.c_str(), "wb");
    if (f) { if (size) std::fwrite(data, 1, size, f); std::fclose(f); }
    return p;
}
// What a host can take from a plugin, checked as it sends it (the player and plugin harnesses): the notes sounding per
// channel and key, a trap on a second note-on on a sounding key or a note-off for a silent one, and on raw MIDI that
// is not a note or a program change with 7-bit data
struct Sounding {
    int on[16][128];
    Sounding() { reset(); }
    void reset() { std::memset(on, 0, sizeof(on)); }              // (a host silences its synth on deactivation)
    void note_on(int ch, int key) { if (on[ch][key]++) __builtin_trap(); }
    void note_off(int ch, int key) { if (!on[ch][key]--) __builtin_trap(); }
    void midi(const uint8_t m[3]) {
        const int kind = m[0] & 0xF0, ch = m[0] & 0x0F;
        if (m[1] > 127 || m[2] > 127) __builtin_trap();                  // data bytes are 7-bit
        if (kind == 0x90 && m[2] > 0) note_on(ch, m[1]);
        else if (kind == 0x80 || kind == 0x90) note_off(ch, m[1]);
        else if (kind != 0xC0) __builtin_trap();                         // notes and program changes only
    }
};

// A plugin harness's input: a saved state up to DPF's terminator (0xFE, included; none: all of it), then its events
inline size_t state_size(const uint8_t* data, size_t size) {
    const uint8_t* end = size ? static_cast<const uint8_t*>(std::memchr(data, 0xFE, size)) : nullptr;
    return end ? (size_t)(end - data) + 1 : size;
}
}  // namespace fuzz
