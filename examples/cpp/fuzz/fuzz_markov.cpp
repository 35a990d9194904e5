// baseline.bin as the library reads it (MarkovModel: size, magic, version, CRC, tables), then a few predictions.
// Structure-aware: the file ends with a CRC32 of everything before it, which a random mutation breaks at once, so the
// mutator below rewrites it after each mutation and the fuzzer reaches the header's sizes and the tables behind them.
#include "fuzz.hpp"

#include <cstring>
#include <vector>

namespace {
uint32_t crc32(const uint8_t* p, size_t n) {                  // zlib's CRC32, as the .bin's writer computes it
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) {
        c ^= p[i];
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return ~c;
}
}  // namespace

#ifdef MUSE_LIBFUZZER
extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int) {
    size = LLVMFuzzerMutate(data, size, max_size);
    if (size >= 8) { const uint32_t c = crc32(data, size - 4); std::memcpy(data + size - 4, &c, 4); }
    return size;
}
#endif

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        muse::MarkovModel m(fuzz::to_file("markov", data, size));
        muse::MarkovStream s(m, 48.0, 0.0);                     // with the rhythm weights
        const int V = m.vocab().size();
        const double* p = s.step(muse::BOS);
        for (int k = 0; k < 64 && p; ++k) {                    // walk its most likely legal-looking ids
            int best = 0;
            for (int i = 1; i < V; ++i) if (p[i] > p[best]) best = i;
            p = s.step(best);
        }
    } catch (const muse::Error&) {}
    return 0;
}
