// vocab.json as the library reads it (Vocab::parse, read_vocab_sha256): any bytes.
#include "fuzz.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const muse::Vocab v = muse::Vocab::parse(text, "fuzz");
        if (v.size() <= 0 || v.size() > muse::MAX_VOCAB) __builtin_trap();           // a layout it accepts fits its buffers
        for (int id = -1; id <= v.size(); ++id) (void)muse::token_name(id, v);
        muse::Grammar g(v);
        bool mask[muse::MAX_VOCAB];
        muse::GrammarState st = g.initial();
        g.allowed(st, mask);
    } catch (const muse::Error&) {}
    try { (void)muse::read_vocab_sha256(fuzz::to_file("vocab", data, size)); } catch (const muse::Error&) {}
    return 0;
}
