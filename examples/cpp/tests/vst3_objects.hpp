// The objects a VST3 host owns and hands a plugin, written against the VST3 ABI as DPF's travesty headers declare it:
// an event list, a parameter's value queue, the parameter changes of a block. Shared by tests/vst3_host.cpp (a host) and
// fuzz/fuzz_vst3.cpp (the plugin's VST3 entry point fuzzed).
#pragma once
#include <travesty/audio_processor.h>
#include <travesty/events.h>

#include <cstddef>
#include <utility>
#include <vector>

namespace vst3 {
// An event list the host owns: the interface's layout is IUnknown's three functions, then IEventList's three
struct EventList {
    v3_funknown unknown;
    v3_event_list list;
    EventList* self = this;                      // what the plugin holds: a pointer to this pointer-to-the-vtables
    std::vector<v3_event> events;
    int outside = 0;
    int32_t block = 512;                         // frames a block: an event at or past it is outside
    EventList() {
        unknown.query_interface = [](void* s, const v3_tuid iid, void** obj) -> v3_result {
            if (v3_tuid_match(iid, v3_funknown_iid) || v3_tuid_match(iid, v3_event_list_iid)) { *obj = s; return V3_OK; }
            *obj = nullptr; return V3_NO_INTERFACE;
        };
        unknown.ref = [](void*) -> uint32_t { return 1; };
        unknown.unref = [](void*) -> uint32_t { return 1; };
        list.get_event_count = [](void* s) -> uint32_t { return (uint32_t)of(s)->events.size(); };
        list.get_event = [](void* s, int32_t i, v3_event* e) -> v3_result {
            if (i < 0 || i >= (int32_t)of(s)->events.size()) return V3_INVALID_ARG;
            *e = of(s)->events[i]; return V3_OK;
        };
        list.add_event = [](void* s, v3_event* e) -> v3_result {
            if (e->sample_offset < 0 || e->sample_offset >= of(s)->block) ++of(s)->outside;
            of(s)->events.push_back(*e); return V3_OK;
        };
    }
    static EventList* of(void* s) { return *static_cast<EventList**>(s); }   // the plugin passes the handle: a pointer to `self`
    v3_event_list** handle() { return reinterpret_cast<v3_event_list**>(&self); }
};

v3_result V3_API no_query(void* s, const v3_tuid, void** obj) { *obj = s; return V3_OK; }
uint32_t V3_API one(void*) { return 1; }

// The parameter changes the plugin reports (its outputs: late notes, notes heard, reaction), a queue per parameter
struct Queue {
    v3_funknown unknown{no_query, one, one};
    v3_param_value_queue queue;
    Queue* self = this;
    v3_param_id id = 0;
    std::vector<std::pair<int32_t, double>> points;
    static Queue* of(void* s) { return *static_cast<Queue**>(s); }
    Queue() {
        queue.get_param_id = [](void* s) -> v3_param_id { return of(s)->id; };
        queue.get_point_count = [](void* s) -> int32_t { return (int32_t)of(s)->points.size(); };
        queue.get_point = [](void* s, int32_t i, int32_t* at, double* v) -> v3_result {
            if (i < 0 || i >= (int32_t)of(s)->points.size()) return V3_INVALID_ARG;
            *at = of(s)->points[i].first; *v = of(s)->points[i].second; return V3_OK;
        };
        queue.add_point = [](void* s, int32_t at, double v, int32_t* i) -> v3_result { of(s)->points.push_back({at, v}); *i = (int32_t)of(s)->points.size() - 1; return V3_OK; };
    }
};
struct ParamChanges {
    v3_funknown unknown{no_query, one, one};
    v3_param_changes changes;
    ParamChanges* self = this;
    std::vector<Queue*> queues;
    static ParamChanges* of(void* s) { return *static_cast<ParamChanges**>(s); }
    ParamChanges() {
        changes.get_param_count = [](void* s) -> int32_t { return (int32_t)of(s)->queues.size(); };
        changes.get_param_data = [](void* s, int32_t i) -> v3_param_value_queue** {
            return i >= 0 && i < (int32_t)of(s)->queues.size() ? reinterpret_cast<v3_param_value_queue**>(&of(s)->queues[i]->self) : nullptr;
        };
        changes.add_param_data = [](void* s, v3_param_id* id, int32_t* index) -> v3_param_value_queue** {
            auto& q = of(s)->queues;
            for (size_t k = 0; k < q.size(); ++k) if (q[k]->id == *id) { *index = (int32_t)k; return reinterpret_cast<v3_param_value_queue**>(&q[k]->self); }
            q.push_back(new Queue); q.back()->id = *id; *index = (int32_t)q.size() - 1;
            return reinterpret_cast<v3_param_value_queue**>(&q.back()->self);
        };
    }
    ~ParamChanges() { for (Queue* q : queues) delete q; }
    v3_param_changes** handle() { return reinterpret_cast<v3_param_changes**>(&self); }
};

// What one block of processing hands the plugin: a stereo output bus of `frames` frames (the plugin writes silence:
// its music is its MIDI), and the process data pointing at it, the event lists and parameter changes each way, the context
struct Output {
    int32_t frames;
    std::vector<float> l, r;
    float* chans[2];
    v3_audio_bus_buffers bus{};
    explicit Output(int32_t n) : frames(n), l(n), r(n), chans{l.data(), r.data()} { bus.num_channels = 2; bus.channel_buffers_32 = chans; }
    Output(const Output&) = delete;
    v3_process_data data(EventList& ins, EventList& outs, ParamChanges& params_in, ParamChanges& params_out, v3_process_context& ctx) {
        v3_process_data d{};
        d.process_mode = V3_REALTIME; d.symbolic_sample_size = V3_SAMPLE_32; d.nframes = frames;
        d.num_output_buses = 1; d.outputs = &bus;
        d.input_events = ins.handle(); d.output_events = outs.handle(); d.ctx = &ctx;
        d.input_params = params_in.handle(); d.output_params = params_out.handle();
        return d;
    }
};

// (the plugin calls back with the handle, a pointer to `self`, which points at the object's start: the vtables)
static_assert(offsetof(EventList, unknown) == 0, "the vtables first");
}  // namespace vst3
