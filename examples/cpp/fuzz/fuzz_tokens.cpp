// Token ids from anywhere (a model's sample, a host, a file): the first byte picks one of six layouts, the rest are ids
// (two bytes each, any value). The grammar checks and completes them; the decoders, the live NoteStream and the MIDI
// writer take them as they are (lenient, like the Python decoder).
#include "fuzz.hpp"

#include <vector>

namespace {
muse::Vocab layout(int k) {
    muse::Vocab v;
    v.performance = k == 1;
    v.multi = k == 2 || k == 4 || k == 5;
    v.beat = k >= 3;
    v.header = k == 5;
    if (v.beat) {                                        // the beat-time vocabulary's (tokenization.time_unit: beat; 396 ids, a band 587)
        v.resolution = 12;
        v.duration_steps = {1, 2, 3, 4, 6, 8, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 48, 54, 60, 66, 72, 78, 84, 90, 96,
                            108, 120, 132, 144, 156, 168, 180, 192};
    }
    v.n_durations = (int)v.duration_steps.size();
    return v;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1 || size > 8193) return 0;
    const muse::Vocab v = layout(data[0] % 6);
    std::vector<int> ids;
    for (size_t i = 1; i + 1 < size; i += 2) ids.push_back((int)(data[i] | (data[i + 1] << 8)) - 16);   // some negative, many past the vocabulary
    try {
        const muse::Grammar g(v);
        const int bad = g.check(ids);
        std::vector<int> legal(ids.begin(), bad < 0 ? ids.end() : ids.begin() + bad);
        if (!legal.empty() && legal.front() == muse::BOS) {
            const std::vector<int> whole = muse::complete(g, legal);
            if (whole.front() != muse::BOS || whole.back() != muse::EOS) __builtin_trap();
            // complete() closes a legal prefix legally once a whole note is in it (before one, it gives the empty piece
            // <BOS><EOS>, which no grammar accepts: there is nothing to play; the fuzzer's first find, now documented)
            if (whole.size() > 2 && g.check(whole) != -1) __builtin_trap();
        }
        std::vector<int> in_range;
        for (int t : ids) if (t >= 0 && t < v.size()) in_range.push_back(t);
        (void)muse::decode_notes(in_range, v);
        if (v.beat) { std::vector<muse::TempoChange> tp; std::vector<muse::MeterChange> mt; (void)muse::decode_beat(in_range, v, &tp, &mt); }
        muse::NoteStream ns(v);
        muse::NoteEvent ev[2 + muse::NoteStream::MAX_SOUNDING];
        for (int t : in_range) { ns.push(t, ev); ns.pop_offs(ns.step(), ev, muse::NoteStream::MAX_SOUNDING); }
        ns.all_off(ev, muse::NoteStream::MAX_SOUNDING);
        muse::write_midi(ids, fuzz::scratch("tokens.mid"), 0.0, v);
    } catch (const muse::Error&) {}
    return 0;
}
