// A model file as the native step reads it (the protobuf reader, metadata, vocabulary, weights): the GRU and the
// transformer each try the same bytes, then step a few tokens. Structure-aware: the mutator keeps the protobuf framing
// valid (protobuf_mutator.hpp), so mutations reach the tensors and the metadata instead of a broken length prefix.
#include "fuzz.hpp"

#ifdef MUSE_LIBFUZZER
#include "protobuf_mutator.hpp"
extern "C" size_t LLVMFuzzerCustomMutator(uint8_t* data, size_t size, size_t max_size, unsigned int seed) {
    return fuzz::pb::mutate(data, size, max_size, seed);
}
#endif

template <class Model> void try_model(const std::string& path) {
    try {
        Model m(path);
        const int V = m.vocab().size();
        const float* z = m.step(muse::BOS);
        for (int k = 1; k < 8 && z; ++k) z = m.step((muse::BOS + k) % V);
    } catch (const muse::Error&) {}
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string& path = fuzz::to_file("model", data, size);
    try_model<muse::NativeGru>(path);
    try_model<muse::NativeTransformer>(path);
    return 0;
}
