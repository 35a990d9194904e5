// Given notes as controls: the grid, the controls of a given part and the loop that plays with them (a port of
// nomad_muse_trainer.sampling.generate_given; ctest given_oracle checks the two write the same stream).
#include "muse/muse.hpp"

#include <algorithm>

namespace muse {

void BeatGrid::check() const {
    bool ok = !lines.empty() && lines.size() == meters.size() && lines[0] == 0 && !tempo_ticks.empty() && tempo_ticks.size() == tempo_bins.size() && tempo_ticks[0] == 0;
    for (size_t i = 1; ok && i < lines.size(); ++i) ok = lines[i] > lines[i - 1];
    for (size_t i = 1; ok && i < tempo_ticks.size(); ++i) ok = tempo_ticks[i] > tempo_ticks[i - 1];
    for (size_t i = 0; ok && i < meters.size(); ++i) ok = meters[i] >= 0 && meters[i] < N_METERS;
    for (size_t i = 0; ok && i < tempo_bins.size(); ++i) ok = tempo_bins[i] >= 0 && tempo_bins[i] < N_TEMPOS;
    if (!ok) throw Error("a piece's grid needs bar lines rising from 0 with a METER each, and tempo changes rising from 0 with a TEMPO each");
}

int BeatGrid::tempo_at(int64_t tick) const {
    const size_t k = (size_t)(std::upper_bound(tempo_ticks.begin(), tempo_ticks.end(), tick) - tempo_ticks.begin());
    return tempo_bins[k ? k - 1 : 0];
}

int64_t BeatGrid::end_line(int64_t tick, const Vocab& v) const {
    if (tick <= lines.back()) return *std::lower_bound(lines.begin(), lines.end(), tick);
    const int64_t L = v.bar_ticks(meters.back());
    return lines.back() + (tick - lines.back() + L - 1) / L * L;
}

std::vector<ControlEvent> controls_of(const std::vector<GivenNote>& notes, const Vocab& v, int ahead, int64_t before) {
    if (!v.conditioning) throw Error("given notes need a vocabulary with conditioning (tokenization.conditioning: true)");
    if (ahead < 0 || ahead > v.max_ahead) throw Error("ahead must be 0-" + std::to_string(v.max_ahead) + " ticks (4 beats), got " + std::to_string(ahead));
    std::vector<ControlEvent> out;
    out.reserve(notes.size());
    for (const GivenNote& n : notes) {
        if (n.drum ? !v.multi || n.pitch < DRUM_LOW || n.pitch > DRUM_HIGH : n.pitch < 0 || n.pitch >= N_PITCHES)
            throw Error("a given " + std::string(n.drum ? "drum key " : "pitch ") + std::to_string(n.pitch) + " is not one this vocabulary gives");
        if (n.tick < 0) throw Error("a given note starts before the piece (tick " + std::to_string(n.tick) + ")");
        if (n.tick - ahead >= before) continue;
        const int64_t at = std::max<int64_t>(n.tick - ahead, 0);
        out.push_back({at, (int)(n.tick - at), v.control_of(n.pitch, n.drum)});
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
}

std::vector<int> generate_given(StepModel& model, const GivenTask& task, const GivenOptions& o) {
    const Vocab& v = model.vocab();
    if (!v.conditioning)
        throw Error("this model was trained without conditioning (tokenization.conditioning: true), so it can only continue a piece: "
                    "accompany and fill need one trained with it");
    const BeatGrid& grid = task.grid;
    grid.check();
    const int64_t s = task.fill ? task.start : 0, e = task.end;
    const bool on_line = std::binary_search(grid.lines.begin(), grid.lines.end(), s) &&
                         (std::binary_search(grid.lines.begin(), grid.lines.end(), e) || e > grid.lines.back());
    if (!on_line || s >= e) throw Error("a fill's span runs from one bar line to a later one, got " + std::to_string(s) + "-" + std::to_string(e));
    if (!task.fill && task.controls.empty()) throw Error("nothing is given to accompany");
    for (const ControlEvent& c : task.controls)
        if (c.at < 0 || c.ahead < 0 || c.ahead > v.max_ahead || c.id < v.ctrl() || c.id >= v.size()) throw Error("a control that is not one of this vocabulary's");
    if (!std::is_sorted(task.controls.begin(), task.controls.end())) throw Error("the controls are not in stream order (controls_of gives them so)");
    Grammar g(v);
    if (!o.instruments.empty()) {
        if (!task.fill && v.header) g.set_instruments(o.instruments);   // a spec's parts name the header the model writes
        else { std::vector<int> progs; bool drums; parse_instruments(o.instruments, progs, drums); g.set_instruments(progs, drums); }
    }
    if (o.controls.any()) g.set_controls(o.controls);
    g.set_until(e, !task.fill);                                        // a fill's notes end by its end; an accompaniment's last chord may ring on
    const Grammar full(v);
    const size_t max_tokens = o.max_tokens ? o.max_tokens : 64 * (size_t)std::max<int64_t>(1, (e - s) / v.resolution) + 256;
    Sampler smp(o.seed);
    const int V = v.size();
    bool mask[MAX_VOCAB], ins[MAX_VOCAB];
    std::vector<int> out;
    GrammarState st = full.initial();
    const float* logits = nullptr;
    model.reset();
    auto force = [&](int t) {
        if (!full.advance(st, t)) throw Error("token " + token_name(t, v) + " does not fit the piece here (its prefix, grid and controls disagree)");
        out.push_back(t);
        logits = model.step(t);
    };
    auto settle = [&] {                                               // the piece's tempo where the stream stands, if it changes here
        const int want = grid.tempo_at(st.t);
        if (st.tempo != want && !st.tempo_here) force(v.tempo() + want);
    };
    auto bar_opened = [&] {                                           // the piece's meter and tempo where the stream's new bar starts
        const int m = grid.meters[std::min<size_t>((size_t)st.bars - 1, grid.meters.size() - 1)];
        if (st.meter != m) force(v.meter() + m);
        settle();
    };
    auto move_to = [&](int64_t c) {                                   // time forward to tick `c` (no tempo change on the way), bar lines and all
        while (st.t < c) {
            if (c >= st.bar_start + st.bar_len) { force(v.bar()); bar_opened(); }
            else force(TIME_SHIFT - 1 + (int)std::min<int64_t>(c - st.t, v.n_shifts));
        }
        settle();
    };
    force(BOS);
    if (task.fill) {                                                  // the bars before the span as the piece has them
        for (int t : task.prefix) force(t);
        if (s > 0) { force(v.bar()); bar_opened(); }                  // straight to the span: nothing is added to the bar before it
        if (st.bars && st.bar_start != s) throw Error("the fill's prefix does not end at its span's first bar line");
    } else if (v.header) {                                            // accompany a band: the model names its instruments
        while (st.head) { g.allowed(st, mask); force(smp.sample(logits, mask, V, o.sampling)); }
    }
    size_t gi = 0;
    while (gi < task.controls.size() && task.controls[gi].at < s) ++gi;
    for (size_t n = 0; n < max_tokens;) {
        if (st.bars == 0) { force(v.bar()); bar_opened(); continue; }   // the first bar line, with the piece's meter and tempo
        const bool pending = gi < task.controls.size();
        const int64_t c = pending ? task.controls[gi].at : 0;
        const int64_t nxt = st.bar_start + st.bar_len;
        g.allowed(st, mask);
        mask[EOS] = false;
        std::fill(mask + v.meter(), mask + v.tempo() + N_TEMPOS, false);   // the piece's meters and tempi rule, not the model's
        if (std::none_of(mask, mask + V, [](bool b) { return b; })) break;
        const int x = smp.sample(logits, mask, V, o.sampling);
        ++n;
        const bool moves = v.is_shift(x) || x == v.bar();
        const int64_t t_next = !moves ? st.t : x == v.bar() ? nxt : st.t + x - TIME_SHIFT + 1;
        const auto k = std::upper_bound(grid.tempo_ticks.begin(), grid.tempo_ticks.end(), st.t);
        const bool has_d = k != grid.tempo_ticks.end();
        const int64_t d = has_d ? *k : 0;                             // the piece's next tempo change
        bool due_c = false;
        if (pending) {
            if (moves) due_c = t_next > c;
            else if (st.t >= c) { g.insertable(st, ins); due_c = std::any_of(ins, ins + V, [](bool b) { return b; }); }
        }
        const bool due_t = has_d && moves && t_next > d;
        if (due_c || due_t) {                                         // a given note (or a tempo change) is due first: time to it, its controls, then the model again
            move_to(due_c && due_t ? std::min(c, d) : due_c ? c : d);
            while (gi < task.controls.size() && task.controls[gi].at == st.t) {
                const int a = task.controls[gi].ahead;
                force(v.ahead() + a);
                for (; gi < task.controls.size() && task.controls[gi].at == st.t && task.controls[gi].ahead == a; ++gi) force(task.controls[gi].id);
            }
            continue;
        }
        if (x == v.bar() && nxt >= e) break;                          // the span's end: the stream stops on its bar line
        force(x);
        if (x == v.bar()) bar_opened();
        else if (moves) settle();
    }
    return complete(full, out);
}

}  // namespace muse
