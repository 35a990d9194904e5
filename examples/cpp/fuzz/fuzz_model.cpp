// A model file as the native step reads it (the protobuf reader, metadata, vocabulary, weights): the GRU and the
// transformer each try the same bytes, then step a few tokens.
#include "fuzz.hpp"

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
