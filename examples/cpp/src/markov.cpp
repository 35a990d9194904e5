// The Markov baseline: the baseline.bin reader and its stream.
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

// ------------------------------------------------------------------------------------------------ baseline.bin
// Layout: muse/formats.hpp's format::markov (generated from nbs/00d_formats.ipynb, where it is written out). In short:
// little-endian; the header's fields at their offsets, then (order+1) x (u32 contexts, u32 pairs), [version 2: u32
// steps of each DURATION bin], zero-padded to 8 bytes; then per order 0..order the arrays keys u64[c], total u32[c],
// types u32[c], start u32[c+1], next u16[n], count u32[n], each padded to 8 bytes; then f32 rhythm weights[positions]
// (already raised to beta) and a CRC32 (zlib) of everything before it.
namespace {
uint32_t crc32(const uint8_t* p, size_t n) {
    static uint32_t table[256];
    static bool ready = [] {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return true;
    }();
    (void)ready;
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; ++i) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}
template <class T> T rd(const std::vector<uint8_t>& d, size_t off) { T v; std::memcpy(&v, d.data() + off, sizeof(T)); return v; }
}  // namespace

MarkovModel::MarkovModel(const std::string& path, const std::string& expect_sha) {
    data_ = detail::read_file(path, "baseline", limits::BASELINE_BYTES);
    const auto& d = data_;
    const size_t n = d.size();
    if (n < 112) throw Error(path + ": truncated (" + std::to_string(n) + " bytes; a baseline.bin has at least 112)");
    if (std::memcmp(d.data() + format::markov::at_magic, format::markov::magic, 8) != 0) throw Error(path + ": not a baseline.bin (wrong magic)");
    uint32_t version = rd<uint32_t>(d, format::markov::at_version), hsize = rd<uint32_t>(d, format::markov::at_header_size),
             vsize = rd<uint32_t>(d, format::markov::at_vocab_size);
    order_ = rd<uint32_t>(d, format::markov::at_order); npos_ = rd<uint32_t>(d, format::markov::at_positions); beta_ = rd<float>(d, format::markov::at_beta);
    ts_ms_ = rd<uint32_t>(d, format::markov::at_time_shift_ms); mode_ = rd<uint32_t>(d, format::markov::at_mode);
    if (version < 1 || version > format::markov::version) throw Error(path + ": format version " + std::to_string(version) + ", this reader knows 1 to " + std::to_string(format::markov::version));
    if (crc32(d.data(), n - 4) != rd<uint32_t>(d, n - 4)) throw Error(path + ": CRC mismatch: the file is damaged or truncated");
    bits_ = vsize > 512 ? 10 : 9;                          // bits an id takes in a context key: 9 up to 512 ids, else 10
    if (vsize > MAX_VOCAB || order_ < 1 || order_ > std::min<uint32_t>(MAX_ORDER, 63 / bits_ - 1) || npos_ != N_POSITIONS)
        throw Error(path + ": unsupported sizes (vocab " + std::to_string(vsize) + ", order " + std::to_string(order_) + ")");
    vocab_.performance = mode_ == 1; vocab_.time_shift_ms = (int)ts_ms_;
    const size_t at = version == 1 ? format::markov::at_v1_vocab_sha256 : format::markov::at_vocab_sha256, sizes_at = at + format::markov::sha256_bytes;   // version 1: the default layout, no layout fields
    if (version >= 2) {
        vocab_.n_shifts = (int)rd<uint32_t>(d, format::markov::at_n_shifts); vocab_.n_velocities = (int)rd<uint32_t>(d, format::markov::at_n_velocities);
        vocab_.n_durations = (int)rd<uint32_t>(d, format::markov::at_n_durations);
        uint32_t tracks = rd<uint32_t>(d, format::markov::at_tracks);   // bit 0 multi; version 3: bit 1 a band header, bit 2 beat time, bit 3 conditioning, bits 8-15 its resolution
        if ((version == 2 && tracks > 1) || (tracks & ~0xff0fu)) throw Error(path + ": unknown track layout " + std::to_string(tracks));
        vocab_.multi = tracks & 1; vocab_.header = tracks & 2; vocab_.beat = tracks & 4; vocab_.resolution = vocab_.beat ? int(tracks >> 8) : 0;
        vocab_.conditioning = tracks & 8; vocab_.max_ahead = vocab_.conditioning ? 4 * vocab_.resolution : 0;
        if (vocab_.conditioning && !vocab_.beat) throw Error(path + ": conditioning without beat time is not a layout this library reads");
        if (vocab_.beat && (vocab_.resolution < 2 || vocab_.resolution % 2)) throw Error(path + ": beat resolution " + std::to_string(vocab_.resolution) + " is not one this library reads");
        size_t table = sizes_at + 8 * (order_ + 1);
        if (vocab_.n_durations < 1 || vocab_.n_durations > MAX_VOCAB || table + 4 * (size_t)vocab_.n_durations > n)
            throw Error(path + ": its vocabulary layout does not fit the file");
        if (vocab_.n_shifts < 1 || vocab_.n_shifts > MAX_VOCAB || vocab_.n_velocities < 1 || vocab_.n_velocities > MAX_VOCAB)
            throw Error(path + ": its vocabulary layout is not one this library holds");   // (their sum must not overflow)
        vocab_.duration_steps.assign(vocab_.n_durations, 0);
        for (int i = 0; i < vocab_.n_durations; ++i) {
            const uint32_t steps = rd<uint32_t>(d, table + 4 * i);
            if (steps < 1 || steps > (uint32_t)limits::VOCAB_NUMBER) throw Error(path + ": a duration of " + std::to_string(steps) + " steps is not one this library reads");
            vocab_.duration_steps[i] = (int)steps;
        }
    }
    if (vocab_.size() != (int)vsize) throw Error(path + ": vocabulary size " + std::to_string(vsize) + " does not match its layout");
    sha_.assign(reinterpret_cast<const char*>(d.data()) + at, format::markov::sha256_bytes);
    sha_.erase(sha_.find_last_not_of('\0') + 1);
    if (!expect_sha.empty() && sha_ != expect_sha)
        throw Error(path + ": built for vocab " + sha_.substr(0, 12) + "..., but this vocab is " + expect_sha.substr(0, 12) + "...");
    if (hsize < sizes_at + 8 * (order_ + 1) || hsize % 8) throw Error(path + ": bad header size " + std::to_string(hsize));
    size_t off = hsize;
    auto take = [&](size_t count, size_t width) -> const uint8_t* {
        size_t bytes = count * width;
        if (off + bytes + 4 > n) throw Error(path + ": sizes in the header do not fit the file");
        const uint8_t* p = d.data() + off;
        off += (bytes + 7) / 8 * 8;
        return p;
    };
    for (uint32_t k = 0; k <= order_; ++k) {
        Table t;
        t.n_ctx = rd<uint32_t>(d, sizes_at + 8 * k); t.n_pairs = rd<uint32_t>(d, sizes_at + 4 + 8 * k);
        t.keys = reinterpret_cast<const uint64_t*>(take(t.n_ctx, 8));
        t.total = reinterpret_cast<const uint32_t*>(take(t.n_ctx, 4));
        t.types = reinterpret_cast<const uint32_t*>(take(t.n_ctx, 4));
        t.start = reinterpret_cast<const uint32_t*>(take(t.n_ctx + 1, 4));
        t.next = reinterpret_cast<const uint16_t*>(take(t.n_pairs, 2));
        t.count = reinterpret_cast<const uint32_t*>(take(t.n_pairs, 4));
        if (t.n_ctx == 0 || t.start[0] != 0 || t.start[t.n_ctx] != t.n_pairs) throw Error(path + ": order " + std::to_string(k) + " table is inconsistent");
        for (uint32_t i = 0; i < t.n_ctx; ++i)              // each context's pairs inside the table, keys rising, counts not all zero
            if (t.start[i] > t.start[i + 1] || (i && t.keys[i] <= t.keys[i - 1]) || (uint64_t)t.total[i] + t.types[i] == 0)
                throw Error(path + ": order " + std::to_string(k) + " table is inconsistent at context " + std::to_string(i));
        for (uint32_t i = 0; i < t.n_pairs; ++i)
            if (t.next[i] >= vsize) throw Error(path + ": a next-token id is out of range");
        tables_.push_back(t);
    }
    rhythm_ = reinterpret_cast<const float*>(take(npos_, 4));
    if (off + 4 != n) throw Error(path + ": " + std::to_string((long long)n - (long long)off - 4) + " unexpected bytes after the tables");
    const Table& t0 = tables_[0];   // order 0 backs off to uniform
    double n0 = t0.total[0], T0 = t0.types[0];
    const int V = vocab_.size();
    for (int i = 0; i < V; ++i) p0_[i] = (T0 / V) / (n0 + T0);
    for (uint32_t i = 0; i < t0.n_pairs; ++i) p0_[t0.next[i]] += t0.count[i] / (n0 + T0);
}

void MarkovModel::probs(const int* ctx, double* out) const {
    const int VOCAB = vocab_.size();
    std::copy(p0_.begin(), p0_.begin() + VOCAB, out);
    uint64_t key = 0;
    for (uint32_t k = 1; k <= order_; ++k) {
        key |= uint64_t(ctx[order_ - k]) << (bits_ * (k - 1));   // the most recent token in the lowest bits
        const Table& t = tables_[k];
        const uint64_t* e = t.keys + t.n_ctx;
        const uint64_t* it = std::lower_bound(t.keys, e, key);
        if (it == e || *it != key) continue;                 // unseen: keep the shorter context's distribution
        size_t r = it - t.keys;
        double tot = t.total[r], typ = t.types[r], z = tot + typ;
        for (int i = 0; i < VOCAB; ++i) out[i] *= typ / z;
        for (uint32_t j = t.start[r]; j < t.start[r + 1]; ++j) out[t.next[j]] += t.count[j] / z;
    }
}

void MarkovModel::apply_rhythm(double* p, int64_t t, double bar, double phase) const {
    if (beta_ == 0 || bar <= 0) return;
    const int VOCAB = vocab_.size();
    double sum = 0;
    for (int s = 1; s <= vocab_.n_shifts; ++s) {
        double x = std::fmod(double(t + s) + phase, bar);
        if (x < 0) x += bar;
        long slot = ((long)std::nearbyint(x / bar * N_POSITIONS)) % N_POSITIONS;
        p[TIME_SHIFT + s - 1] *= rhythm_[slot];
    }
    for (int i = 0; i < VOCAB; ++i) sum += p[i];
    for (int i = 0; i < VOCAB; ++i) p[i] /= sum;
}

void MarkovStream::reset() { ctx_.fill(PAD); t_ = 0; }

const double* MarkovStream::step(int tok) {
    if (tok < 0 || tok >= m_.vocab().size()) throw Error("token id " + std::to_string(tok) + " is outside 0-" + std::to_string(m_.vocab().size() - 1));
    int k = m_.order();
    for (int i = 0; i + 1 < k; ++i) ctx_[i] = ctx_[i + 1];
    ctx_[k - 1] = tok;
    if (m_.vocab().is_shift(tok)) t_ += tok - TIME_SHIFT + 1;
    m_.probs(ctx_.data(), p_.data());
    m_.apply_rhythm(p_.data(), t_, bar_, phase_);
    return p_.data();
}

}  // namespace muse
