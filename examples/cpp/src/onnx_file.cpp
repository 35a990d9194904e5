// A minimal reader of ONNX files (protobuf wire format), for the native step: metadata_props and the main graph's
// initializers. Field numbers are those of onnx/onnx.proto (ModelProto, GraphProto, TensorProto,
// StringStringEntryProto); everything else is skipped by its wire type.
// Hand-written, not libprotobuf's generated code, on purpose: the native step keeps onnxruntime and libprotobuf out of
// a plugin's binary (nothing past the C++ runtime to ship into a DAW), and it reads four messages' few fields. It is
// held to the fuzzer instead: fuzz_model (make fuzz: ASan and UBSan, a structure-aware mutator that keeps the framing
// valid, seeds that are the zoo's and the fixtures' models) and its replays in every make test; every length and count
// is checked against the bytes left and muse::limits before anything is allocated.
#include "detail.hpp"
#include "muse/muse.hpp"

#include <algorithm>
#include <cstring>
#include <fstream>
#include <sstream>

namespace muse {
namespace detail {

ModelInfo model_info(const std::function<std::string(const std::string&)>& meta, const std::string& path, const std::string& expect_sha) {
    ModelInfo m;
    m.sha = meta(format::meta::vocab_sha256);
    if (m.sha.empty()) throw Error(path + ": no vocab_sha256 in its metadata (not exported by muse_export)");
    if (!expect_sha.empty() && m.sha != expect_sha)
        throw Error(path + ": made for vocab " + m.sha.substr(0, 12) + "..., but this vocab is " + expect_sha.substr(0, 12) + "...");
    m.kind = meta(format::meta::model_type);
    const bool perf = meta(format::meta::tokenizer_mode) == "performance";
    if (!meta(format::meta::vocab_json).empty()) m.vocab = Vocab::parse(meta(format::meta::vocab_json), path + " (its vocab_json)");
    else if (!meta(format::meta::time_shift_ms).empty()) m.vocab.time_shift_ms = std::atoi(meta(format::meta::time_shift_ms).c_str());
    m.vocab.performance = perf;
    const std::string sd = meta(format::meta::sampling_defaults);
    const std::string where = path + " (its sampling_defaults)";
    m.defaults.temperature = (float)json_number(sd, "temperature", 1.0, where);
    m.defaults.top_k = (int)std::max(0.0, std::min<double>(json_number(sd, "top_k", 0, where), MAX_VOCAB));
    m.defaults.top_p = (float)json_number(sd, "top_p", 1.0, where);
    return m;
}

namespace {
struct Bad {};                                      // thrown inside the parser, turned into an Error naming the file

struct Reader {
    const uint8_t* p; const uint8_t* end;
    bool done() const { return p >= end; }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p >= end) throw Bad{};
            uint8_t b = *p++;
            v |= uint64_t(b & 0x7f) << shift;
            if (!(b & 0x80)) return v;
        }
        throw Bad{};
    }
    Reader sub() {                                  // a length-delimited field's bytes
        uint64_t n = varint();
        if (n > uint64_t(end - p)) throw Bad{};
        Reader r{p, p + n}; p += n; return r;
    }
    std::string bytes() { Reader r = sub(); return std::string((const char*)r.p, r.end - r.p); }
    void skip(int wire) {
        switch (wire) {
            case 0: varint(); break;
            case 1: if (end - p < 8) throw Bad{}; p += 8; break;
            case 2: sub(); break;
            case 5: if (end - p < 4) throw Bad{}; p += 4; break;
            default: throw Bad{};
        }
    }
};

void read_tensor(Reader r, std::string& name, OnnxTensor& t) {
    std::vector<int32_t> int32s;
    while (!r.done()) {
        uint64_t key = r.varint(); int field = int(key >> 3), wire = int(key & 7);
        if (field == 1 && wire == 0) t.dims.push_back((int64_t)r.varint());
        else if (field == 1 && wire == 2) { Reader d = r.sub(); while (!d.done()) t.dims.push_back((int64_t)d.varint()); }
        else if (field == 2 && wire == 0) t.type = (int)r.varint();
        else if (field == 8 && wire == 2) name = r.bytes();
        else if (field == 9 && wire == 2) t.raw = r.bytes();
        else if (field == 4 && wire == 2) t.raw += r.bytes();             // packed float_data: the same bytes as raw_data
        else if (field == 4 && wire == 5) { if (r.end - r.p < 4) throw Bad{}; t.raw.append((const char*)r.p, 4); r.p += 4; }
        else if (field == 5 && wire == 2) { Reader d = r.sub(); while (!d.done()) int32s.push_back((int32_t)d.varint()); }
        else if (field == 5 && wire == 0) int32s.push_back((int32_t)r.varint());
        else if (field == 14 && wire == 0) { if (r.varint() == 1) throw Bad{}; }   // data_location EXTERNAL: not ours
        else r.skip(wire);
    }
    if (t.raw.empty() && !int32s.empty()) {         // int8/uint8 values in int32_data: one byte each
        for (int32_t v : int32s) t.raw.push_back((char)(uint8_t)v);
    }
}
}  // namespace

OnnxFile read_onnx(const std::string& path) {
    const std::vector<uint8_t> data = read_file(path, "model", limits::MODEL_BYTES);
    OnnxFile out;
    try {
        Reader model{(const uint8_t*)data.data(), (const uint8_t*)data.data() + data.size()};
        bool graph = false;
        while (!model.done()) {
            uint64_t key = model.varint(); int field = int(key >> 3), wire = int(key & 7);
            if (field == 7 && wire == 2) {
                graph = true;
                Reader g = model.sub();
                while (!g.done()) {
                    uint64_t k = g.varint(); int gf = int(k >> 3), gw = int(k & 7);
                    if (gf == 5 && gw == 2) {
                        std::string name; OnnxTensor t;
                        read_tensor(g.sub(), name, t);
                        size_t width = t.type == OnnxTensor::FLOAT || t.type == OnnxTensor::INT32 ? 4 : t.type == OnnxTensor::INT64 ? 8 : 1;
                        if (t.raw.size() != t.count() * width) throw Bad{};
                        out.initializers[name] = std::move(t);
                    } else g.skip(gw);
                }
            } else if (field == 14 && wire == 2) {
                Reader e = model.sub(); std::string k, v;
                while (!e.done()) {
                    uint64_t kk = e.varint(); int ef = int(kk >> 3), ew = int(kk & 7);
                    if (ef == 1 && ew == 2) k = e.bytes(); else if (ef == 2 && ew == 2) v = e.bytes(); else e.skip(ew);
                }
                out.metadata[k] = v;
            } else model.skip(wire);
        }
        if (!graph) throw Bad{};
    } catch (const Bad&) {
        throw Error(path + ": not a loadable ONNX model (damaged, or not an ONNX file)");
    }
    return out;
}

}  // namespace detail
}  // namespace muse
