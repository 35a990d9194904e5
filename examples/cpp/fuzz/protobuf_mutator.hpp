// A structure-aware mutator for protobuf files (an .onnx model): the input is read as a tree of fields (a
// length-delimited field whose bytes read whole as fields is a message, else bytes), one field is changed, and the tree
// is written back with every length recomputed. A byte-level mutation of a model mostly breaks a length prefix and the
// reader refuses the file at its first field; this one keeps the framing valid, so the fuzzer reaches what lies inside
// it: the graph's initializers, their dims, data types and raw data, the metadata, the vocabulary in it.
// The changes: a varint set to an interesting value (0, 1, -1, 2^31, 2^32 - 1, 2^63, a neighbour of the old value), a
// leaf's bytes mutated by libFuzzer (they may grow or shrink), a field deleted or repeated, its number moved by one, a
// fixed-width field's bits flipped. Half the calls are libFuzzer's own byte-level mutation (which mostly lands in a
// tensor's raw data, 90-97% of a model's bytes, or breaks the framing on purpose). Used by fuzz_model (`make fuzz` measures it against the byte-level mutator alone).
#pragma once
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

extern "C" size_t LLVMFuzzerMutate(uint8_t* data, size_t size, size_t max_size);

namespace fuzz::pb {
struct Field {
    uint64_t number = 0;
    int wire = 0;                                   // 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32
    uint64_t value = 0;                             // varint, fixed64, fixed32
    std::vector<uint8_t> bytes;                     // a length-delimited field that is not a message
    std::vector<Field> children;                    // ... or the message it holds
    bool message = false;
};

inline bool varint(const uint8_t* d, size_t n, size_t& at, uint64_t& v) {
    v = 0;
    for (int shift = 0; shift < 64 && at < n; shift += 7) {
        const uint8_t b = d[at++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (!(b & 0x80)) return true;
    }
    return false;
}

// Fields of d[0, n); false where they do not read whole as fields (then the caller keeps the bytes)
inline bool parse(const uint8_t* d, size_t n, std::vector<Field>& out, int depth) {
    size_t at = 0;
    while (at < n) {
        Field f;
        uint64_t key;
        if (!varint(d, n, at, key)) return false;
        f.number = key >> 3; f.wire = (int)(key & 7);
        if (f.number == 0) return false;
        if (f.wire == 0) { if (!varint(d, n, at, f.value)) return false; }
        else if (f.wire == 1) { if (n - at < 8) return false; std::memcpy(&f.value, d + at, 8); at += 8; }
        else if (f.wire == 5) { if (n - at < 4) return false; uint32_t v; std::memcpy(&v, d + at, 4); f.value = v; at += 4; }
        else if (f.wire == 2) {
            uint64_t len;
            if (!varint(d, n, at, len) || len > n - at) return false;
            // a message if its bytes read whole as fields (short text can too: then it is mutated as fields, which is
            // still a valid protobuf), and not too deep; raw tensor data mostly does not
            if (depth < 8 && len > 0 && parse(d + at, (size_t)len, f.children, depth + 1)) f.message = true;
            else { f.children.clear(); f.bytes.assign(d + at, d + at + len); }
            at += (size_t)len;
        } else return false;
        out.push_back(std::move(f));
    }
    return true;
}

inline void put_varint(std::vector<uint8_t>& o, uint64_t v) {
    while (v >= 0x80) { o.push_back((uint8_t)(v | 0x80)); v >>= 7; }
    o.push_back((uint8_t)v);
}
inline void write(const std::vector<Field>& fields, std::vector<uint8_t>& o) {
    for (const Field& f : fields) {
        put_varint(o, f.number << 3 | (uint64_t)f.wire);
        if (f.wire == 0) put_varint(o, f.value);
        else if (f.wire == 1) { uint8_t b[8]; std::memcpy(b, &f.value, 8); o.insert(o.end(), b, b + 8); }
        else if (f.wire == 5) { const uint32_t v = (uint32_t)f.value; uint8_t b[4]; std::memcpy(b, &v, 4); o.insert(o.end(), b, b + 4); }
        else if (f.message) { std::vector<uint8_t> inner; write(f.children, inner); put_varint(o, inner.size()); o.insert(o.end(), inner.begin(), inner.end()); }
        else { put_varint(o, f.bytes.size()); o.insert(o.end(), f.bytes.begin(), f.bytes.end()); }
    }
}

// every field of the tree with the list that holds it
inline void flatten(std::vector<Field>& fields, std::vector<std::pair<std::vector<Field>*, size_t>>& out) {
    for (size_t i = 0; i < fields.size(); ++i) {
        out.push_back({&fields, i});
        if (fields[i].message) flatten(fields[i].children, out);
    }
}

inline size_t mutate(uint8_t* data, size_t size, size_t max_size, unsigned seed) {
    static const bool bytes_only = std::getenv("MUSE_FUZZ_BYTES_ONLY") != nullptr;   // (to measure against: libFuzzer's mutator alone)
    if (bytes_only) return LLVMFuzzerMutate(data, size, max_size);
    std::minstd_rand rng(seed);
    std::vector<Field> root;
    if (rng() % 2 == 0 || !parse(data, size, root, 0) || root.empty()) return LLVMFuzzerMutate(data, size, max_size);
    std::vector<std::pair<std::vector<Field>*, size_t>> all;
    flatten(root, all);
    auto [list, i] = all[rng() % all.size()];
    Field& f = (*list)[i];
    switch (rng() % 6) {
        case 0:                                      // a varint or fixed value: an interesting one or a neighbour
            if (f.wire == 2) break;
            {
                static const uint64_t INTERESTING[] = {0, 1, 2, 3, 7, 8, 16, 255, 256, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 1ull << 32, 1ull << 48, 1ull << 63, ~0ull};
                const uint64_t k = rng();
                f.value = k % 3 == 0 ? f.value + 1 : k % 3 == 1 ? f.value - 1 : INTERESTING[(k >> 4) % (sizeof(INTERESTING) / sizeof(*INTERESTING))];
            }
            break;
        case 1: case 2:                              // a leaf's bytes (a tensor's raw data, a name, a JSON string), any length
            if (f.wire == 2 && !f.message) {
                const size_t had = f.bytes.size();
                f.bytes.resize(had + 64);                // room to grow by up to 64 bytes
                f.bytes.resize(LLVMFuzzerMutate(f.bytes.data(), had, had + 64));
            } else if (f.wire == 1 || f.wire == 5) f.value ^= 1ull << (rng() % (f.wire == 1 ? 64 : 32));
            break;
        case 3: list->erase(list->begin() + (long)i); break;                    // a field gone
        case 4: { Field copy = f; list->insert(list->begin() + (long)i, copy); break; }   // a field repeated
        case 5: f.number = f.number > 1 && rng() % 2 ? f.number - 1 : f.number + 1; break;   // another field's number
    }
    std::vector<uint8_t> out;
    write(root, out);
    if (out.size() > max_size) return LLVMFuzzerMutate(data, size, max_size);
    if (!out.empty()) std::memcpy(data, out.data(), out.size());   // (every field deleted: an empty file)
    return out.size();
}
}  // namespace fuzz::pb
