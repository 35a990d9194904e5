// Generator: the model on a worker thread, a wait-free queue for the audio thread (see muse.hpp).
#include "muse/muse.hpp"

#include <algorithm>
#include <chrono>

namespace muse {

Generator::Generator(StepModel& model, const SamplingParams& sp, uint64_t seed, size_t lookahead, size_t max_tokens)
    : model_(model), sp_(sp), seed_(seed), lookahead_(std::min<size_t>(std::max<size_t>(lookahead, 1), 1024)), max_tokens_(max_tokens) {}

Generator::~Generator() { stop(); }

void Generator::set_instruments(const std::vector<int>& programs, bool drums) {
    Grammar g(model_.vocab());
    g.set_controls(controls_);
    g.set_instruments(programs, drums);               // refuses a single-stream model, bad programs and controls that leave nothing, now
    stop();
    programs_ = programs; drums_ = drums; choose_ = true; spec_.clear();
}

void Generator::set_instruments(const std::string& spec) {
    Grammar g(model_.vocab());
    g.set_controls(controls_);
    g.set_instruments(spec);
    stop();
    spec_ = spec; choose_ = true;
}

void Generator::set_controls(const Controls& c) {
    Grammar g = grammar();                            // the instruments chosen so far
    g.set_controls(c);                                // an Error if nothing is left to play
    stop();
    controls_ = c;
}

Grammar Generator::grammar() const {
    Grammar g(model_.vocab());
    if (choose_ && !spec_.empty()) g.set_instruments(spec_);
    else if (choose_) g.set_instruments(programs_, drums_);
    g.set_controls(controls_);
    return g;
}

void Generator::start(const std::vector<int>& primer) {
    stop();
    const Grammar full(model_.vocab());               // the primer may have any instruments: the chosen ones play after it
    std::vector<int> p = {BOS};
    p.insert(p.end(), primer.begin(), primer.end());
    if (full.check(p) != -1) throw Error("the primer is not a legal token stream (first bad token at " + std::to_string(full.check(p) - 1) + ")");
    running_ = true;
    worker_ = std::thread(&Generator::run, this, std::move(p));
}

void Generator::stop() {
    running_ = false;
    if (worker_.joinable()) worker_.join();
}

void Generator::run(std::vector<int> primer) {
    const Grammar g = grammar(), full(model_.vocab());
    Sampler smp(seed_);
    const int V = model_.vocab().size();
    bool mask[MAX_VOCAB];
    auto wait_for_room = [&] {
        while (running_ && queue_.size() >= lookahead_) std::this_thread::sleep_for(std::chrono::microseconds(200));
        return running_.load();
    };
    while (running_) {
        // a new piece: <BOS> and the primer, fed at once
        GrammarState st = full.initial();
        for (int t : primer) full.advance(st, t);
        model_.reset();
        const float* logits = model_.feed(std::vector<int64_t>(primer.begin(), primer.end()));
        for (int t : primer) { if (!wait_for_room()) return; queue_.push(t); }
        ++pieces_;
        for (size_t n = 0; running_; ++n) {
            g.allowed(st, mask);
            if (std::none_of(mask, mask + V, [](bool b) { return b; })) full.allowed(st, mask);   // a primer that stops inside a note of an instrument (or a pitch) not chosen: end that note
            int tok;
            if (max_tokens_ && n >= max_tokens_ && mask[EOS]) tok = EOS;          // the piece is long enough: close it
            else {
                if (max_tokens_ && n >= max_tokens_ && model_.performance())       // let sounding notes end first
                    for (int i = NOTE_ON; i < NOTE_OFF; ++i) mask[i] = false;
                tok = smp.sample(logits, mask, V, sp_);
            }
            full.advance(st, tok);
            if (!wait_for_room()) return;
            queue_.push(tok);
            if (tok == EOS) break;
            logits = model_.step(tok);
        }
    }
}

}  // namespace muse
