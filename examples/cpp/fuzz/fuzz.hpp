// Shared by the fuzz harnesses (`make fuzz`: libFuzzer under AddressSanitizer and UndefinedBehaviorSanitizer) and their
// replay (ctest `fuzz_replay_*`: every seed and every crash ever found, through the same function, in the normal build).
// Each harness defines LLVMFuzzerTestOneInput: one input in, nothing thrown out but muse::Error (the library's own
// message for a file it refuses), no crash, no leak, no read past a buffer, no undefined behaviour.
#pragma once
#include <cstdint>
#include <cstdio>
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
}  // namespace fuzz
