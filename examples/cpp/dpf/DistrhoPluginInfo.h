// Nomad Muse through DPF (Debian's dpf-source): what the formats ask of the plugin before it is built.
// One source (nomad_muse_dpf.cpp) builds VST3, CLAP, LV2 and a JACK app; everything musical is muse::Player.
#pragma once

// (no DISTRHO_PLUGIN_BRAND: in LV2 it writes MOD's mod:brand, which lv2_validate reads as an undefined property)
#define DISTRHO_PLUGIN_NAME  "Nomad Muse"
#define DISTRHO_PLUGIN_URI   "https://github.com/nomad-muse/nomad-muse-trainer#generator"   // the hand-written LV2 plugin's, which this replaces: saved sessions find it
#define DISTRHO_PLUGIN_CLAP_ID "org.nomad-muse.generator"

#define DISTRHO_PLUGIN_HAS_UI          0
#define DISTRHO_PLUGIN_IS_RT_SAFE      1
// VST3 has no MIDI-effect category and its MIDI output goes where the host routes it: an instrument with a silent
// stereo output is what every VST3 host loads (README: which hosts route its MIDI on)
#define DISTRHO_PLUGIN_IS_SYNTH        1
#define DISTRHO_PLUGIN_NUM_INPUTS      0
#define DISTRHO_PLUGIN_NUM_OUTPUTS     2
#define DISTRHO_PLUGIN_WANT_MIDI_INPUT  1
#define DISTRHO_PLUGIN_WANT_MIDI_OUTPUT 1
#define DISTRHO_PLUGIN_WANT_TIMEPOS    1
#define DISTRHO_PLUGIN_WANT_STATE      1
#define DISTRHO_PLUGIN_WANT_FULL_STATE 1

#define DISTRHO_PLUGIN_LV2_CATEGORY   "lv2:GeneratorPlugin"
#define DISTRHO_PLUGIN_VST3_CATEGORIES "Instrument|Generator"
#define DISTRHO_PLUGIN_CLAP_FEATURES   "note-effect", "instrument", "stereo"
