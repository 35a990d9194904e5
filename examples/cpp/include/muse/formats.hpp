// Generated from nomad_muse_trainer.formats (nbs/00d_formats.ipynb) by `make sync-check`: do not edit.
// The names and layouts muse_export and muse_baseline write, and every host reads.
#pragma once
#include <cstddef>
#include <cstdint>

namespace muse::format {

namespace meta {
inline constexpr const char* vocab_sha256 = "vocab_sha256"; // the sha256 of the vocabulary the model was trained on: a host refuses a model made for another
inline constexpr const char* vocab_json = "vocab_json";    // the vocabulary itself (vocab.json), so the file alone says what its ids mean
inline constexpr const char* model_type = "model_type";    // gru or transformer
inline constexpr const char* state_shape = "state_shape";  // the state's shape as a JSON list, 'batch' and 'cached' for its free axes
inline constexpr const char* state_update = "state_update"; // how next_state becomes the next state: one of STATE_UPDATES
inline constexpr const char* config_json = "config_json";  // the model's settings as JSON (sizes, layers, the transformer's max_context and time_buckets)
inline constexpr const char* max_context = "max_context";  // the tokens a transformer's position sees (0 for a GRU)
inline constexpr const char* sampling_defaults = "sampling_defaults"; // temperature, top_k and top_p as JSON
inline constexpr const char* time_shift_ms = "time_shift_ms"; // the time step in ms
inline constexpr const char* tokenizer_mode = "tokenizer_mode"; // duration or performance
inline constexpr const char* quantization = "quantization"; // what is stored and what runs in INT8, as JSON
inline constexpr const char* model_sha256 = "model_sha256"; // the weights' fingerprint: a model and its step twin share it
inline constexpr const char* step_only = "step_only";      // 1 in a step graph (one token a call), 0 in a main file
inline constexpr const char* ring_slots = "ring_slots";    // a ring step graph's cache slots (max_context - 1)
}  // namespace meta

namespace state {
inline constexpr const char* replace = "replace";          // next_state is the whole new state: it replaces state (the GRU)
inline constexpr const char* append = "append";            // next_state holds the new tokens' keys and values: the host appends them to its cache and keeps the last max_context - 1 (the transformer)
inline constexpr const char* ring = "ring";                // a ring step graph: the host writes the new token's keys and values into slot (position mod ring_slots) of past_key.L / past_value.L
}  // namespace state

namespace io {
inline constexpr const char* input_ids = "input_ids";      // int64 token ids [batch, seq]
inline constexpr const char* state = "state";              // float32 state in (optional in a main file: an empty one by default)
inline constexpr const char* logits = "logits";            // float32 [batch, seq, vocabulary]
inline constexpr const char* next_state = "next_state";    // float32 state out (see state_update)
inline constexpr const char* position = "position";        // a ring step graph's input: the number of tokens before this one
inline constexpr const char* past_key = "past_key.";       // a ring step graph's key cache of layer L, past_key.L [batch, heads, width, slots]
inline constexpr const char* past_value = "past_value.";   // a ring step graph's value cache of layer L, past_value.L [batch, heads, slots, width]
}  // namespace io

namespace weight {
inline constexpr const char* embed = "embed";              // the token embedding [vocabulary, width]
inline constexpr const char* bar_position = "bar_position"; // a beat-time transformer's place-in-the-bar embedding [bar_steps, width], added to the token's at its clock modulo bar_steps
inline constexpr const char* w_ih = "w_ih";                // a GRU layer's input weights [in, 3 x hidden]
inline constexpr const char* b_ih = "b_ih";                // ... and biases
inline constexpr const char* w_hh = "w_hh";                // a GRU layer's recurrent weights [hidden, 3 x hidden]
inline constexpr const char* b_hh = "b_hh";                // ... and biases
inline constexpr const char* w_out = "w_out";              // the GRU's readout [hidden, vocabulary]
inline constexpr const char* b_out = "b_out";              // ... and its bias
inline constexpr const char* w_qkv = "w_qkv";              // a transformer layer's query, key and value projection (1/sqrt(head_dim) folded in, a zero clock column per head)
inline constexpr const char* b_qkv = "b_qkv";              // ... and bias
inline constexpr const char* w_proj = "w_proj";            // a transformer layer's output projection
inline constexpr const char* b_proj = "b_proj";            // ... and bias
inline constexpr const char* w_ff1 = "w_ff1";              // a transformer layer's first feed-forward matrix
inline constexpr const char* b_ff1 = "b_ff1";              // ... and bias
inline constexpr const char* w_ff2 = "w_ff2";              // a transformer layer's second feed-forward matrix
inline constexpr const char* b_ff2 = "b_ff2";              // ... and bias
inline constexpr const char* head = "head";                // the transformer's readout, the embedding transposed [width, vocabulary]
}  // namespace weight

namespace suffix {
inline constexpr const char* int8 = "_int8";               // INT8 weights (muse_export's default quantization), beside
inline constexpr const char* scale = "_scale";             // their float32 scales: one per output column of a matrix, one per row of an embedding table
inline constexpr const char* dynamic = "_quantized";       // a weight onnxruntime's dynamic quantization stored as int8 (--quantization dynamic)
}  // namespace suffix

namespace markov {
inline constexpr const char magic[] = "NMMARKOV";
inline constexpr uint32_t version = 3;
inline constexpr size_t at_magic = 0;                // NMMARKOV
inline constexpr size_t at_version = 8;              // 2, or 3 (see tracks)
inline constexpr size_t at_header_size = 12;         // bytes before the tables (a multiple of 8)
inline constexpr size_t at_vocab_size = 16;          // ids in the vocabulary
inline constexpr size_t at_order = 20;               // the longest context (1-6; 1-5 over 512 ids, whose contexts pack 10 bits an id instead of 9)
inline constexpr size_t at_positions = 24;           // rhythm weights: positions in a bar
inline constexpr size_t at_beta = 28;                // the rhythm weights' exponent
inline constexpr size_t at_time_shift_ms = 32;       // the time step
inline constexpr size_t at_mode = 36;                // 0 duration, 1 performance
inline constexpr size_t at_n_shifts = 40;            // TIME_SHIFT bins
inline constexpr size_t at_n_velocities = 44;        // VELOCITY bins
inline constexpr size_t at_n_durations = 48;         // DURATION bins
inline constexpr size_t at_tracks = 52;              // bit 0: multi-track; version 3: bit 1: a band header, bit 2: time_unit beat, bit 3: conditioning (AHEAD and CTRL ids), bits 8-15: its ticks a quarter note
inline constexpr size_t at_vocab_sha256 = 56;        // the vocabulary's sha256, zero-padded
inline constexpr size_t at_v1_vocab_sha256 = 40;    // version 1 had no layout fields
inline constexpr size_t sha256_bytes = 64;
}  // namespace markov

}  // namespace muse::format
