// Internal helpers shared by the library's sources (not part of the public header).
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "muse/muse.hpp"
#include "muse/formats.hpp"   // the file-format contract, generated from nbs/00d_formats.ipynb

// A loop of arithmetic whose only branches are its bounds (a model's tables built at load): no coverage tracing in the
// fuzz build, where clang's comparison hooks in it made each fuzz_plugin input 5x slower (20 inputs: 10.5 s, 2.1 s without)
#if defined(__clang__)
#define MUSE_NO_COVERAGE __attribute__((no_sanitize("coverage")))
#else
#define MUSE_NO_COVERAGE
#endif

namespace muse {
namespace detail {

// The bytes of `path`; an Error saying `what` was not found if it cannot be read.
std::vector<uint8_t> read_file(const std::string& path, const char* what, uint64_t most);   // an Error past `most` bytes (a limits:: bound), checked before reading

// The JSON values read from model metadata, parsed by nlohmann::json (vocab.cpp): a top-level number of an object
// (`dflt` if absent or `text` is empty), and the items of a list (names as they are, whole numbers as text). An Error
// naming `where` when the text is not that JSON.
std::vector<std::string> json_list(const std::string& text, const std::string& where);
double json_number(const std::string& text, const std::string& key, double dflt, const std::string& where);

// What every model file says of itself (its metadata, read through `meta`): checked against `expect_sha` when given.
struct ModelInfo { std::string sha, kind; Vocab vocab; SamplingParams defaults; };
ModelInfo model_info(const std::function<std::string(const std::string&)>& meta, const std::string& path, const std::string& expect_sha);

// An ONNX file read with a minimal protobuf reader: the metadata and the main graph's initializers, which is all the
// native step needs (no onnxruntime, no protobuf library). Tensors stored inline (raw_data, float_data, int32_data).
struct OnnxTensor {
    enum Type { FLOAT = 1, UINT8 = 2, INT8 = 3, INT32 = 6, INT64 = 7 };
    int type = 0;
    std::vector<int64_t> dims;
    std::string raw;                                // little-endian elements, as raw_data holds them
    size_t count() const {                     // its elements; SIZE_MAX (which no file's bytes match) for a negative dimension or a product past 2^48
        size_t n = 1;
        for (int64_t d : dims) { if (d < 0 || (d && n > (size_t(1) << 48) / (size_t)d)) return SIZE_MAX; n *= (size_t)d; }
        return n;
    }
};
struct OnnxFile {
    std::map<std::string, std::string> metadata;
    std::map<std::string, OnnxTensor> initializers;
};
OnnxFile read_onnx(const std::string& path);         // an Error naming `path` if it is missing or not an ONNX model

}  // namespace detail
}  // namespace muse
