// OnnxStream: the exported model behind a streaming step, through onnxruntime's C++ API.
//
// onnxruntime is loaded at run time (dlopen) and asked for the API version of the headers we compiled with
// (ORT_API_MANUAL_INIT), so the PyPI wheel's libonnxruntime.so works as well as an official release.
//
// State handling follows the model's metadata (nbs/08_export.ipynb; the names in muse/formats.hpp), one strategy per
// protocol below (ReplaceState, AppendCache, RingCache):
//  - state_update "replace" (the GRU): next_state replaces state. Two state buffers are bound alternately
//    as input and output, so a step runs with tensors made once, over memory allocated once.
//  - state_update "append" (the transformer): next_state holds the new token's keys and values,
//    [layers, 2, batch, heads, 1, head_dim]; the host appends them to its cache, keeping the last
//    max_context - 1 tokens. The cache lives in one buffer of full capacity, laid out exactly as the
//    `state` input [layers, 2, 1, heads, cached, head_dim] for the current `cached`, with one tensor
//    view made per possible length up front; appending moves each (layer, k/v, head) block in place.
//  - a transformer's ring step twin (X_step.onnx, state_update "ring", written by muse_export): the cache is one ring
//    per layer for keys [1, heads, width, slots] (stored by dimension) and one for values [1, heads, slots, width],
//    bound once as `past_key.L`/`past_value.L` with `position`; a step writes the new token's keys and values
//    (next_state) into slot position % slots and nothing else moves. Priming (many tokens) runs the main file with
//    the rings laid out as its `state`.
#define ORT_API_MANUAL_INIT
#include <onnxruntime_cxx_api.h>
#undef ORT_API_MANUAL_INIT

#include "detail.hpp"
#include "muse/muse.hpp"

#include <dlfcn.h>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>

#ifndef MUSE_ORT_LIBRARY_DEFAULT
#define MUSE_ORT_LIBRARY_DEFAULT ""
#endif

namespace muse {

namespace {
std::string g_ort_version;
using detail::json_list;
using detail::json_number;
}  // namespace

std::string load_onnxruntime(const std::string& path_arg) {
    static std::mutex mu;
    std::lock_guard<std::mutex> lock(mu);
    if (!g_ort_version.empty()) return g_ort_version;
    std::string path = path_arg;
    if (path.empty() && std::getenv("MUSE_ORT_LIBRARY")) path = std::getenv("MUSE_ORT_LIBRARY");
    if (path.empty()) path = MUSE_ORT_LIBRARY_DEFAULT;
    if (path.empty()) throw Error("no onnxruntime library: pass --ort-library or set MUSE_ORT_LIBRARY to a libonnxruntime.so");
    void* lib = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib) throw Error("cannot load onnxruntime from " + path + ": " + dlerror());
    using GetApiBase = const OrtApiBase* (*)();
    auto get = reinterpret_cast<GetApiBase>(dlsym(lib, "OrtGetApiBase"));
    if (!get) throw Error(path + " is not an onnxruntime library (no OrtGetApiBase)");
    const OrtApiBase* base = get();
    const OrtApi* api = base->GetApi(ORT_API_VERSION);
    if (!api) throw Error("onnxruntime " + std::string(base->GetVersionString()) + " at " + path + " is older than the headers (API version " +
                          std::to_string(ORT_API_VERSION) + "); use a newer onnxruntime or older headers");
    Ort::InitApi(api);
    g_ort_version = base->GetVersionString();
    return g_ort_version;
}

// whether a ring step graph takes the inputs OnnxStream binds (a file muse_export wrote)
static bool ring_inputs(Ort::Session& s) {
    Ort::AllocatorWithDefaultOptions a;
    int found = 0;
    for (size_t i = 0; i < s.GetInputCount(); ++i) {
        const std::string n = s.GetInputNameAllocated(i, a).get();
        found += n == format::io::position || n == std::string(format::io::past_key) + "0" || n == std::string(format::io::past_value) + "0";
    }
    return found == 3;
}

struct OrtHandles;

// How a model's state is carried from one call to the next: one strategy per cache protocol (format::state), each
// owning its buffers, made once. step() runs one token (in h.ids_buf), feed() many through the main graph; both leave
// the next token's logits in h.logits_buf.
struct CacheProtocol {
    virtual ~CacheProtocol() = default;
    virtual void reset() = 0;
    virtual void step(OrtHandles& h) = 0;
    virtual void feed(OrtHandles& h, Ort::Value& ids, int64_t m) = 0;
    virtual int64_t cached() const { return 0; }
};

struct OrtHandles {
    Ort::Env env{nullptr};
    Ort::Session session{nullptr};
    Ort::Session step_session{nullptr};            // a step graph twin (the GRU's, or the transformer's ring step)
    bool step_only = false;                         // the file is a step graph: feed() steps token by token
    int64_t ring_slots = 0;                         // a ring step graph's slots (from its metadata), when there is one
    bool ring_twin = false;                         // step_session is a ring step graph
    Ort::MemoryInfo mem{nullptr};
    Ort::RunOptions run{nullptr};
    std::vector<int64_t> state_shape;               // with batch 1, and the cached axis (if any) as -1
    int cached_axis = -1;
    int64_t ids_buf[1] = {0};                       // a step's token, and the next token's logits: tensors made once
    std::vector<float> logits_buf;
    Ort::Value ids{nullptr}, logits{nullptr};
    std::unique_ptr<CacheProtocol> cache;
    const char* in_names[2] = {format::io::input_ids, format::io::state};
    const char* out_names[2] = {format::io::logits, format::io::next_state};
    // the main graph over `ids` (m tokens) from `state` (both handed back as they were): its outputs, the last
    // token's logits copied to logits_buf
    std::vector<Ort::Value> run_main(Ort::Value& ids_v, Ort::Value& state, int64_t m) {
        Ort::Value inputs[2] = {std::move(ids_v), std::move(state)};
        auto out = session.Run(run, in_names, inputs, 2, out_names, 2);
        ids_v = std::move(inputs[0]); state = std::move(inputs[1]);
        const int64_t V = (int64_t)logits_buf.size();
        std::memcpy(logits_buf.data(), out[0].GetTensorData<float>() + (m - 1) * V, sizeof(float) * V);
        return out;
    }
};

namespace {

// state_update "replace" (the GRU): next_state is the new state. Two buffers, bound alternately as state and
// next_state to the step graph once, so a step runs over memory allocated once.
struct ReplaceState : CacheProtocol {
    std::vector<float> buf[2];
    std::vector<Ort::Value> in, out;
    std::vector<Ort::IoBinding> bind;
    int cur = 0;
    ReplaceState(OrtHandles& h, int64_t elems) {
        for (int b = 0; b < 2; ++b) {
            buf[b].assign(elems, 0.0f);
            in.push_back(Ort::Value::CreateTensor<float>(h.mem, buf[b].data(), elems, h.state_shape.data(), h.state_shape.size()));
        }
        for (int b = 0; b < 2; ++b)                 // a step from buffer b writes into the other one
            out.push_back(Ort::Value::CreateTensor<float>(h.mem, buf[1 - b].data(), elems, h.state_shape.data(), h.state_shape.size()));
        for (int b = 0; b < 2; ++b) {
            bind.emplace_back(h.step_session ? h.step_session : h.session);
            bind[b].BindInput(format::io::input_ids, h.ids);
            bind[b].BindInput(format::io::state, in[b]);
            bind[b].BindOutput(format::io::logits, h.logits);
            bind[b].BindOutput(format::io::next_state, out[b]);
        }
    }
    void reset() override { cur = 0; for (auto& b : buf) std::fill(b.begin(), b.end(), 0.0f); }
    void step(OrtHandles& h) override {
        (h.step_session ? h.step_session : h.session).Run(h.run, bind[cur]);   // inputs and outputs bound once to our buffers
        cur = 1 - cur;
    }
    void feed(OrtHandles& h, Ort::Value& ids, int64_t m) override {
        auto out = h.run_main(ids, in[cur], m);
        std::memcpy(buf[cur].data(), out[1].GetTensorData<float>(), sizeof(float) * buf[cur].size());
    }
};

// state_update "append" (the transformer, no ring twin): next_state holds the new tokens' keys and values; the host
// appends them, keeping the last max_context - 1. The cache is one buffer of full capacity laid out as the `state`
// input [layers, 2, 1, heads, cached, width] for the current length, with a tensor view per possible length made up
// front; appending moves each (layer, k/v, head) block in place.
struct AppendCache : CacheProtocol {
    std::vector<float> cache, kv;                   // the cache; one step's new keys and values
    std::vector<Ort::Value> views;                  // views[n]: the cache as a state of n tokens
    Ort::Value out{nullptr};
    int64_t blocks = 1, E = 0, window = 0, n = 0;
    AppendCache(OrtHandles& h, int64_t window_) : window(window_) {
        E = h.state_shape.back();
        for (int i = 0; i < h.cached_axis; ++i) blocks *= h.state_shape[i];
        cache.assign(blocks * window * E + 1, 0.0f);   // +1: a valid pointer for the empty cache
        kv.assign(blocks * E, 0.0f);
        std::vector<int64_t> shape = h.state_shape;
        for (int64_t k = 0; k <= window; ++k) {
            shape[h.cached_axis] = k;
            views.push_back(Ort::Value::CreateTensor<float>(h.mem, cache.data(), blocks * k * E, shape.data(), shape.size()));
        }
        shape[h.cached_axis] = 1;
        out = Ort::Value::CreateTensor<float>(h.mem, kv.data(), kv.size(), shape.data(), shape.size());
    }
    int64_t cached() const override { return n; }
    void reset() override { n = 0; std::fill(cache.begin(), cache.end(), 0.0f); std::fill(kv.begin(), kv.end(), 0.0f); }
    void step(OrtHandles& h) override {
        Ort::Value inputs[2] = {std::move(h.ids), std::move(views[n])};
        Ort::Value outputs[2] = {std::move(h.logits), std::move(out)};
        h.session.Run(h.run, h.in_names, inputs, 2, h.out_names, outputs, 2);
        h.ids = std::move(inputs[0]); views[n] = std::move(inputs[1]);
        h.logits = std::move(outputs[0]); out = std::move(outputs[1]);
        float* c = cache.data();                    // block b moves from b*n*E to b*(n+1)*E (or drops its oldest entry when full)
        if (n < window) {
            for (int64_t b = blocks - 1; b >= 0; --b) {
                std::memmove(c + b * (n + 1) * E, c + b * n * E, sizeof(float) * n * E);
                std::memcpy(c + (b * (n + 1) + n) * E, kv.data() + b * E, sizeof(float) * E);
            }
            ++n;
        } else {
            for (int64_t b = 0; b < blocks; ++b) {
                std::memmove(c + b * n * E, c + (b * n + 1) * E, sizeof(float) * (n - 1) * E);
                std::memcpy(c + (b * n + n - 1) * E, kv.data() + b * E, sizeof(float) * E);
            }
        }
    }
    void feed(OrtHandles& h, Ort::Value& ids, int64_t m) override {
        auto o = h.run_main(ids, views[n], m);
        // concatenate (cache, new) per block and keep the last `window` entries, as the Python runtime does
        const float* nkv = o[1].GetTensorData<float>();
        const int64_t total = n + m, keep = std::min(total, window), drop = total - keep;
        std::vector<float> merged(blocks * keep * E);
        for (int64_t b = 0; b < blocks; ++b)
            for (int64_t j = 0; j < keep; ++j) {
                const int64_t src = drop + j;
                const float* from = src < n ? cache.data() + (b * n + src) * E : nkv + (b * m + (src - n)) * E;
                std::memcpy(merged.data() + (b * keep + j) * E, from, sizeof(float) * E);
            }
        std::memcpy(cache.data(), merged.data(), sizeof(float) * merged.size());
        n = keep;
    }
};

// state_update "ring" (the transformer's ring step twin, or a ring step graph itself): one ring per layer for keys
// [1, heads, width, slots] (stored by dimension) and one for values [1, heads, slots, width], bound once as
// past_key.L / past_value.L with `position`; a step writes the new token's keys and values into slot position % slots
// and nothing else moves. Priming (many tokens) runs the main file with the rings laid out as its `state`.
struct RingCache : CacheProtocol {
    Ort::Session* ring;                             // the session that reads the rings (the twin, or the file itself)
    int64_t layers, heads, width, slots, position = 0;
    int64_t pos_buf[1] = {0};
    std::vector<std::vector<float>> keys, values;   // per layer: [heads][width][slots], [heads][slots][width]
    std::vector<float> new_kv;                      // next_state: [layers][2][heads][width]
    std::vector<Ort::Value> vals;
    Ort::IoBinding bind{nullptr};
    RingCache(OrtHandles& h, Ort::Session* ring_, int64_t slots_)
        : ring(ring_), layers(h.state_shape[0]), heads(h.state_shape[3]), width(h.state_shape[5]), slots(slots_) {
        bind = Ort::IoBinding(*ring);
        const int64_t pshape[1] = {1}, kshape[4] = {1, heads, width, slots}, vshape[4] = {1, heads, slots, width};
        const int64_t nshape[6] = {layers, 2, 1, heads, 1, width};
        new_kv.assign(layers * 2 * heads * width, 0.0f);
        vals.push_back(Ort::Value::CreateTensor<int64_t>(h.mem, pos_buf, 1, pshape, 1));
        vals.push_back(Ort::Value::CreateTensor<float>(h.mem, new_kv.data(), new_kv.size(), nshape, 6));
        bind.BindInput(format::io::input_ids, h.ids);
        bind.BindInput(format::io::position, vals[0]);
        bind.BindOutput(format::io::logits, h.logits);
        bind.BindOutput(format::io::next_state, vals[1]);
        const int64_t n = heads * width * slots;
        keys.assign(layers, std::vector<float>(n, 0.0f));
        values.assign(layers, std::vector<float>(n, 0.0f));
        for (int64_t l = 0; l < layers; ++l) {
            vals.push_back(Ort::Value::CreateTensor<float>(h.mem, keys[l].data(), n, kshape, 4));
            bind.BindInput((format::io::past_key + std::to_string(l)).c_str(), vals.back());
            vals.push_back(Ort::Value::CreateTensor<float>(h.mem, values[l].data(), n, vshape, 4));
            bind.BindInput((format::io::past_value + std::to_string(l)).c_str(), vals.back());
        }
    }
    void write(const float* kv, int64_t m, int64_t i) {   // token i of m in next_state-like kv -> slot (position + i) % slots
        const int64_t s = (position + i) % slots;
        for (int64_t l = 0; l < layers; ++l)
            for (int64_t hh = 0; hh < heads; ++hh) {
                const float* k = kv + (((l * 2 + 0) * heads + hh) * m + i) * width;
                const float* v = kv + (((l * 2 + 1) * heads + hh) * m + i) * width;
                float* K = keys[l].data() + hh * width * slots + s;
                for (int64_t c = 0; c < width; ++c) K[c * slots] = k[c];
                std::memcpy(values[l].data() + (hh * slots + s) * width, v, sizeof(float) * width);
            }
    }
    int64_t cached() const override { return std::min(position, slots); }
    void reset() override {
        position = 0;
        for (auto& k : keys) std::fill(k.begin(), k.end(), 0.0f);
        for (auto& v : values) std::fill(v.begin(), v.end(), 0.0f);
    }
    void step(OrtHandles& h) override {             // the ring graph: bound once, one slot written
        pos_buf[0] = position;
        ring->Run(h.run, bind);
        write(new_kv.data(), 1, 0);
        ++position;
    }
    void feed(OrtHandles& h, Ort::Value& ids, int64_t m) override {   // the main graph, from the rings laid out as its state (oldest first)
        const int64_t n = cached();
        std::vector<float> lin(layers * 2 * heads * n * width + 1);
        for (int64_t l = 0; l < layers; ++l)
            for (int64_t hh = 0; hh < heads; ++hh)
                for (int64_t j = 0; j < n; ++j) {
                    const int64_t s = (position - n + j) % slots;
                    float* k = lin.data() + (((l * 2 + 0) * heads + hh) * n + j) * width;
                    for (int64_t c = 0; c < width; ++c) k[c] = keys[l][(hh * width + c) * slots + s];
                    std::memcpy(lin.data() + (((l * 2 + 1) * heads + hh) * n + j) * width, values[l].data() + (hh * slots + s) * width, sizeof(float) * width);
                }
        const int64_t sshape[6] = {layers, 2, 1, heads, n, width};
        Ort::Value state = Ort::Value::CreateTensor<float>(h.mem, lin.data(), lin.size() - 1, sshape, 6);
        auto out = h.run_main(ids, state, m);
        for (int64_t i = std::max<int64_t>(0, m - slots); i < m; ++i) write(out[1].GetTensorData<float>(), m, i);
        position += m;
    }
};

}  // namespace

OnnxStream::OnnxStream(const std::string& model_path, const std::string& expect_sha, const std::string& ort_library) {
    if (!std::ifstream(model_path).good()) throw Error("model not found: " + model_path);
    load_onnxruntime(ort_library);                  // before any Ort object exists (their destructors need the API)
    h_.reset(new OrtHandles);
    auto& h = *h_;
    try {
        h.env = Ort::Env(ORT_LOGGING_LEVEL_ERROR, "muse");
        Ort::SessionOptions so;
        so.SetIntraOpNumThreads(1);                 // one token at a time: threads cost more than they save
        so.SetInterOpNumThreads(1);
        so.SetExecutionMode(ORT_SEQUENTIAL);
        so.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
        h.session = Ort::Session(h.env, model_path.c_str(), so);
        h.step_only = metadata(format::meta::step_only) == "1";
        // A step graph beside it (muse_export writes X_step.onnx next to X.onnx), with the same weights' fingerprint:
        // single tokens go through it (no Scan; for a transformer, its ring step), priming through the file.
        const size_t dot = model_path.rfind(".onnx");
        const std::string twin = dot == std::string::npos ? "" : model_path.substr(0, dot) + "_step.onnx";
        if (!h.step_only && !twin.empty() && std::ifstream(twin).good() && !metadata(format::meta::model_sha256).empty()) {
            try {
                Ort::Session s(h.env, twin.c_str(), so);
                Ort::AllocatorWithDefaultOptions alloc;
                auto meta = s.GetModelMetadata();
                auto get = [&](const char* k) { auto v = meta.LookupCustomMetadataMapAllocated(k, alloc); return v ? std::string(v.get()) : std::string(); };
                if (get(format::meta::step_only) == "1" && get(format::meta::model_sha256) == metadata(format::meta::model_sha256) && get(format::meta::vocab_sha256) == metadata(format::meta::vocab_sha256)
                    && (get(format::meta::state_update) != format::state::ring || ring_inputs(s))) {
                    h.step_session = std::move(s);
                    if (get(format::meta::state_update) == format::state::ring) { h.ring_twin = true; h.ring_slots = std::atoll(get(format::meta::ring_slots).c_str()); }
                }
            } catch (const Ort::Exception&) {}      // an unreadable twin is not used
        }
    } catch (const Ort::Exception& e) {
        std::string msg = e.what();
        throw Error(model_path + ": not a loadable ONNX model (" + msg.substr(0, msg.find('\n')).substr(0, 160) + ")");
    }
    const detail::ModelInfo info = detail::model_info([this](const std::string& k) { return metadata(k); }, model_path, expect_sha);
    kind_ = info.kind;
    vocab_ = info.vocab;
    defaults_ = info.defaults;
    std::string update = metadata(format::meta::state_update);
    const int VOCAB = vocab_.size();
    Ort::Session* ring = h.ring_twin ? &h.step_session : nullptr;
    if (update == format::state::ring && h.step_only) {
        if (!ring_inputs(h.session)) throw Error(model_path + ": a ring step graph without its position / past_key.L / past_value.L inputs (not written by muse_export)");
        ring = &h.session; h.ring_slots = std::atoll(metadata(format::meta::ring_slots).c_str()); update = format::state::append;
    }
    if (update != format::state::replace && update != format::state::append) throw Error(model_path + ": unknown state_update '" + update + "'");

    auto dims = json_list(metadata(format::meta::state_shape), model_path + " (its state_shape)");
    if (dims.empty()) throw Error(model_path + ": no state_shape in its metadata");
    int64_t elems = 1;
    for (size_t i = 0; i < dims.size(); ++i) {
        int64_t d;
        if (dims[i] == "batch") d = 1;
        else if (dims[i] == "cached") { d = -1; h.cached_axis = (int)i; }
        else d = std::atoll(dims[i].c_str());
        h.state_shape.push_back(d);
        if (d > 0) elems *= d;
    }
    h.mem = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    h.run = Ort::RunOptions();
    h.logits_buf.assign(VOCAB, 0.0f);
    const int64_t one[2] = {1, 1}, lshape[3] = {1, 1, VOCAB};
    h.ids = Ort::Value::CreateTensor<int64_t>(h.mem, h.ids_buf, 1, one, 2);
    h.logits = Ort::Value::CreateTensor<float>(h.mem, h.logits_buf.data(), VOCAB, lshape, 3);
    if (update == format::state::replace) {
        if (h.cached_axis >= 0) throw Error(model_path + ": a 'replace' state cannot have a cached axis");
        h.cache.reset(new ReplaceState(h, elems));
    } else {
        if (h.cached_axis != (int)h.state_shape.size() - 2) throw Error(model_path + ": the cached axis must be the second last");
        const int64_t window = std::atoll(metadata(format::meta::max_context).c_str()) - 1;
        if (window < 1) throw Error(model_path + ": an 'append' model needs max_context in its metadata");
        if (!ring) h.cache.reset(new AppendCache(h, window));
        else {
            if (h.ring_slots < 1 || h.state_shape.size() != 6) throw Error(model_path + ": a ring step graph needs ring_slots and a 6-axis state_shape");
            h.cache.reset(new RingCache(h, ring, h.ring_slots));
        }
    }
    reset();
}

OnnxStream::~OnnxStream() = default;

bool OnnxStream::step_graph() const { return h_->step_only || (bool)h_->step_session; }

bool OnnxStream::ring_graph() const { return dynamic_cast<const RingCache*>(h_->cache.get()) != nullptr; }

std::string OnnxStream::metadata(const std::string& key) const {
    Ort::AllocatorWithDefaultOptions alloc;
    auto v = h_->session.GetModelMetadata().LookupCustomMetadataMapAllocated(key.c_str(), alloc);
    return v ? std::string(v.get()) : std::string();
}

void OnnxStream::reset() {
    h_->cache->reset();
    cached_ = 0;
}

const float* OnnxStream::step(int64_t token) {
    if (token < 0 || token >= vocab_.size()) throw Error("token id " + std::to_string(token) + " is outside 0-" + std::to_string(vocab_.size() - 1));
    auto& h = *h_;
    h.ids_buf[0] = token;
    h.cache->step(h);
    cached_ = h.cache->cached();
    return h.logits_buf.data();
}

const float* OnnxStream::feed(const std::vector<int64_t>& ids) {
    if (ids.empty()) throw Error("nothing to feed");
    const int VOCAB = vocab_.size();
    for (int64_t t : ids) if (t < 0 || t >= VOCAB) throw Error("token id " + std::to_string(t) + " is outside 0-" + std::to_string(VOCAB - 1));
    auto& h = *h_;
    if (h.step_only) { const float* lg = nullptr; for (int64_t t : ids) lg = step(t); return lg; }
    if (ids.size() > FEED_CHUNK) {                  // a long primer in runs: one run's attention grows with the square of its tokens
        const float* lg = nullptr;
        for (size_t a = 0; a < ids.size(); a += FEED_CHUNK)
            lg = feed(std::vector<int64_t>(ids.begin() + a, ids.begin() + std::min(ids.size(), a + FEED_CHUNK)));
        return lg;
    }
    const int64_t m = (int64_t)ids.size();
    const int64_t ishape[2] = {1, m};
    std::vector<int64_t> idv(ids);
    Ort::Value in_ids = Ort::Value::CreateTensor<int64_t>(h.mem, idv.data(), m, ishape, 2);
    h.cache->feed(h, in_ids, m);
    cached_ = h.cache->cached();
    return h.logits_buf.data();
}

namespace {
// NativeGru or NativeTransformer where this library's steps run the file; null where only onnxruntime can
std::unique_ptr<StepModel> try_native(const std::string& path, const std::string& expect_sha) {
    const detail::OnnxFile f = detail::read_onnx(path);
    auto it = f.metadata.find(format::meta::model_type);
    const bool gru = it != f.metadata.end() && it->second == "gru", tx = it != f.metadata.end() && it->second == "transformer";
    const bool dynamic = f.initializers.count(std::string(format::weight::w_out) + format::suffix::dynamic) > 0 || f.initializers.count(std::string(format::weight::head) + format::suffix::dynamic) > 0;
    if (gru && !dynamic) return std::unique_ptr<StepModel>(new NativeGru(path, expect_sha));
    if (tx && !dynamic && f.initializers.count(std::string(format::weight::w_qkv) + "0" + format::suffix::int8) + f.initializers.count(std::string(format::weight::w_qkv) + "0") > 0)   // written node by node (this version's muse_export)
        return std::unique_ptr<StepModel>(new NativeTransformer(path, expect_sha));
    return nullptr;
}
}  // namespace

std::unique_ptr<StepModel> open_model(const std::string& path, const std::string& expect_sha, bool native, const std::string& ort_library) {
    if (native)
        if (auto m = try_native(path, expect_sha)) return m;
    return std::unique_ptr<StepModel>(new OnnxStream(path, expect_sha, ort_library));
}

std::unique_ptr<StepModel> open_native(const std::string& path, const std::string& expect_sha) {
    if (auto m = try_native(path, expect_sha)) return m;
    throw Error(path + ": not a model this library's native step runs (a GRU or transformer written by this version's muse_export "
                "with INT8 or fp32 weights; files written with --quantization dynamic need onnxruntime, which a plugin's audio thread cannot call)");
}

}  // namespace muse
