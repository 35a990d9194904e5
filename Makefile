# Nomad Muse Trainer. `make all` runs the whole pipeline on the default corpus; `make test` checks everything.
# Every target is idempotent; artifacts are written to a temp file and renamed, so an interrupted run never
# leaves a half-written file behind.

SHELL       := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON      ?= python3
PIP         ?= $(PYTHON) -m pip
CONFIG      ?= config.yaml
CORPUS_DIR  := data/midi
MIDI_DIR    ?= $(CORPUS_DIR)
ART         ?= artifacts
STAMPS      := .make

.DEFAULT_GOAL := help
.PHONY: FORCE help install corpus index prep baseline train train-tx export eval demo bench bench-prep cpp cpp-test fuzz lv2 plugins band band-cpp beat bach-cond band-cond zoo docs all test test-slow sync-check readme clean

help: ## list every target with one line each
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

install: $(STAMPS)/install ## install the package with every extra (train, corpus, plot, dev; torch pinned to 2.13.0 unless yours sees a GPU)
# torch: the pinned 2.13.0 (the CPU wheel here), unless the torch already installed sees a GPU: a CUDA build the user
# chose is kept (pip would otherwise swap it for PyPI's, gigabytes, for whatever CUDA that wheel was built with)
$(STAMPS)/install: setup.py settings.ini
	@if $(PYTHON) -c "import sys, torch; sys.exit(not torch.cuda.is_available())" 2>/dev/null; then \
	  echo "keeping torch $$($(PYTHON) -c 'import torch; print(torch.__version__)'): it sees a GPU"; \
	else $(PIP) install "torch==2.13.0"; fi
	$(PIP) install -e ".[all]"
	@mkdir -p $(STAMPS) && touch $@

corpus: $(STAMPS)/install ## export music21's Bach chorales (about 400) to data/midi as MIDI (never into a MIDI_DIR of yours)
	muse_corpus --out $(CORPUS_DIR) --name bach

PKG := nomad_muse_trainer
# Steps depend on the *content* of the package's modules, not their times: nbdev_export (run by make test) rewrites
# every module, and a rewritten but identical train.py must not retrain the models. Each stamp changes only when its
# module does.
$(STAMPS)/src-%: FORCE
	@mkdir -p $(STAMPS); sha1sum $(PKG)/$*.py > $@.new; if cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi
src = $(foreach m,$(1),$(STAMPS)/src-$(m))
# the modules whose code makes a dataset (tokens, manifest, splits) and an exported file
PREP_SRC   := data manifest splits vocab midi tokenizer grammar conditioning
EXPORT_SRC := export graphs

# The MIDI folder as make sees it: every file muse_index reads under MIDI_DIR (find_midi: recursive, any case of the
# suffixes), with its size and time, in a stamp rewritten only when that list changes. A file added, removed or edited
# anywhere in the folder re-indexes; a name with a space works (as a wildcard prerequisite, "My Song.mid" was two
# words and make stopped: "No rule to make target"). A missing folder leaves the stamp empty: muse_index says why. The
# stamp lives beside the artifacts it describes, so two ART folders over two MIDI folders do not redo each other; a
# first stamp is dated 1970, so artifacts made before it existed are not all redone for it (a fresh ART has none).
MIDI_LIST = $(ART)/.midi-list
$(MIDI_LIST): $(STAMPS)/install FORCE
	@mkdir -p $(ART); { $(PYTHON) -c "import sys; from nomad_muse_trainer.manifest import find_midi; \
	  [print(f'{p}\t{s.st_size}\t{s.st_mtime_ns}') for p in find_midi(sys.argv[1]) for s in [p.stat()]]" "$(MIDI_DIR)" 2>/dev/null || true; } > $@.new; \
	  if [ ! -e $@ ]; then mv $@.new $@; touch -t 197001010000 $@; \
	  elif cmp -s $@.new $@; then rm $@.new; else mv $@.new $@; fi

index: $(ART)/manifest.csv ## validate and index the MIDI into artifacts/manifest.csv
$(ART)/manifest.csv: $(STAMPS)/install $(CONFIG) $(MIDI_LIST) $(call src,$(PREP_SRC))
	muse_index --midi_dir "$(MIDI_DIR)" --out $@ --config $(CONFIG)

# muse_prep leaves a dataset.npz as it was (the file and its time) when it would write the same arrays, so a new data.py
# or tokenizer.py that changes nothing in a corpus's dataset retrains nothing. Each prep rule below makes a stamp beside
# its dataset, and the dataset follows its stamp; a stamp whose dataset is missing is always made again.
%/dataset.npz: %/.prep-done ;
unless = $(if $(wildcard $(1)),,FORCE)

prep: $(ART)/dataset.npz ## tokenize and split into artifacts/dataset.npz (+ vocab.json, stats.json, manifest.csv)
$(ART)/.prep-done: $(STAMPS)/install $(CONFIG) $(MIDI_LIST) $(call src,$(PREP_SRC)) $(call unless,$(ART)/dataset.npz)
	muse_prep --midi_dir "$(MIDI_DIR)" --out $(@D)/dataset.npz --config $(CONFIG)
	@touch $@

baseline: $(ART)/baseline.bin ## build the Markov baseline artifacts/baseline.bin (order 5, Witten-Bell, rhythm)
$(ART)/baseline.bin: $(ART)/dataset.npz $(call src,markov baseline metrics)
	muse_baseline --dataset $< --out $@ --order 5 --config $(CONFIG)

# FULL=1 plans three times the configured steps (early stopping ends it when validation stops improving)
TRAIN_FLAGS := $(if $(filter 1,$(FULL)),--max_steps $$(( 3 * $$($(PYTHON) -c "from nomad_muse_trainer.config import load_config; print(load_config('$(CONFIG)')['training']['max_steps'])") )),)

train: $(ART)/checkpoints/gru/best.pt ## train TinyGRU (artifacts/checkpoints/gru/{best,latest}.pt); FULL=1 to convergence
$(ART)/checkpoints/gru/best.pt: $(ART)/dataset.npz $(call src,models train)
	muse_train --dataset $< --model gru --config $(CONFIG) --out_dir $(ART)/checkpoints $(TRAIN_FLAGS)

train-tx: $(ART)/checkpoints/transformer/best.pt ## train MiniTransformer (artifacts/checkpoints/transformer/...)
$(ART)/checkpoints/transformer/best.pt: $(ART)/dataset.npz $(call src,models train)
	muse_train --dataset $< --model transformer --config $(CONFIG) --out_dir $(ART)/checkpoints $(TRAIN_FLAGS)

export: $(ART)/muse_quantized.onnx $(ART)/muse_quantized_tx.onnx ## export both models to INT8 ONNX (+ *_fp32.onnx twins)
$(ART)/muse_quantized.onnx: $(ART)/checkpoints/gru/best.pt $(call src,$(EXPORT_SRC))
	muse_export --ckpt $< --out $@ --config $(CONFIG)
$(ART)/muse_quantized_tx.onnx: $(ART)/checkpoints/transformer/best.pt $(call src,$(EXPORT_SRC))
	muse_export --ckpt $< --out $@ --config $(CONFIG)

eval: $(ART)/eval.json $(ART)/eval_tx.json ## score both models, their fp32 twins and the baseline on the test split
$(ART)/eval.json: $(ART)/muse_quantized.onnx $(ART)/baseline.bin $(ART)/dataset.npz $(call src,eval metrics)
	muse_eval --dataset $(ART)/dataset.npz --onnx $< --baseline $(ART)/baseline.bin --sample --out $@
$(ART)/eval_tx.json: $(ART)/muse_quantized_tx.onnx $(ART)/baseline.bin $(ART)/dataset.npz $(call src,eval metrics)
	muse_eval --dataset $(ART)/dataset.npz --onnx $< --baseline $(ART)/baseline.bin --out $@

demo: $(ART)/sample.mid ## sample a piece from the INT8 GRU: artifacts/sample.mid and its piano roll
$(ART)/sample.mid: $(ART)/muse_quantized.onnx $(call src,runtime sampling)
	muse_sample --onnx $< --out $@ --length 512 --temperature 1.0 --tempo 120 --seed 42

bench: $(ART)/muse_quantized.onnx $(ART)/muse_quantized_tx.onnx ## time streaming steps and full-context passes: bench.json, bench_tx.json
	muse_bench --onnx $(ART)/muse_quantized.onnx --out $(ART)/bench.json
	muse_bench --onnx $(ART)/muse_quantized_tx.onnx --out $(ART)/bench_tx.json

bench-prep: $(STAMPS)/install ## tokenizing speed against MidiTok's REMI, one core, same files (Bach corpus, multi-program fixtures): bench_prep.json
	@test -d $(CORPUS_DIR) || muse_corpus --out $(CORPUS_DIR) --name bach
	muse_bench_prep --midi_dir $(CORPUS_DIR),nbs/fixtures --out $(ART)/bench_prep.json

CPP_BUILD ?= build/cpp
# cmake from PyPI when the machine has a compiler but no cmake
CMAKE = $(shell command -v cmake || { $(PIP) install -q "cmake>=3.16" >&2 && command -v cmake; })
$(CPP_BUILD)/muse_tests: $(STAMPS)/install $(wildcard examples/cpp/CMakeLists.txt examples/cpp/*/*.cpp examples/cpp/*/*.hpp examples/cpp/include/muse/*.hpp examples/cpp/dpf/*.h)
	@test -f /usr/include/nlohmann/json.hpp || $(PYTHON) -c "import nlohmann_json" 2>/dev/null || $(PIP) install -q "nlohmann-json==3.12.0"   # JSON headers, where Debian's nlohmann-json3-dev is missing
	$(CMAKE) -S examples/cpp -B $(CPP_BUILD) -DCMAKE_BUILD_TYPE=Release -DPython3_EXECUTABLE=$$(command -v $(PYTHON))
	$(CMAKE) --build $(CPP_BUILD) -j2

cpp-test: $(CPP_BUILD)/muse_tests ## build the C++ host example (examples/cpp) and run its ctest suite against the Python package
	cd $(CPP_BUILD) && ctest --output-on-failure
	@cd $(CPP_BUILD) && ctest -N | grep -q lv2_host && ctest -N | grep -q lv2_validate && ctest -N | grep -q clap_host && ctest -N | grep -q jack_app || echo "note: the plugins' host tests (lv2_validate, lv2_host, clap_host, jack_app, plugins_minihost) were not all built: install Debian's dpf-source jackd2 lv2-dev sordi liblilv-dev pkg-config and run this again (.ci/run does)"

cpp: cpp-test $(ART)/muse_quantized.onnx $(ART)/baseline.bin ## C++: build, ctest, then sample and time the INT8 GRU and the .bin (artifacts/sample_cpp.mid, cpp_bench.json), and how near the native step runs to the core's limit
	$(CPP_BUILD)/muse_demo --vocab $(ART)/vocab.json --model $(ART)/muse_quantized.onnx --baseline $(ART)/baseline.bin \
	  --out $(ART)/sample_cpp.mid --json $(ART)/cpp_bench.json --length 512 --seed 42 --bench 5000
	$$(command -v taskset >/dev/null && echo taskset -c $$($(PYTHON) -c 'import os; print(min(os.sched_getaffinity(0)))')) $(CPP_BUILD)/muse_kernel_bench $(ART)/muse_quantized.onnx

FUZZ_SECONDS ?= 60
fuzz: $(CPP_BUILD)/muse_tests ## fuzz every C++ reader (libFuzzer under ASan and UBSan; needs clang and libclang-rt-14-dev) and the Python readers (atheris) for FUZZ_SECONDS each (default 60): executions, edges, crashes; crashes go to examples/cpp/fuzz/regressions/, which make test replays
	$(PYTHON) -c "import atheris" 2>/dev/null || $(PIP) install -q "atheris==3.0.0"
	$(PYTHON) tools/fuzz.py --seconds $(FUZZ_SECONDS) --fixtures $(CPP_BUILD)/fixtures

# a plugin's folder $(1) gets model $(2) as model.onnx and the zoo as zoo/, each through a temporary name
put_model = cp $(2) $(1)/.model.onnx.tmp && mv $(1)/.model.onnx.tmp $(1)/model.onnx && \
  rm -rf $(1)/zoo.tmp && cp -r nomad_muse_trainer/zoo $(1)/zoo.tmp && rm -rf $(1)/zoo && mv $(1)/zoo.tmp $(1)/zoo
LV2_BUNDLE := $(CPP_BUILD)/lv2/NomadMuse.lv2
# LV2_MODEL: by default the zoo's Bach GRU (beat time: it plays on the host's bars; trained with conditioning: it
# accompanies the player in mode 2); any GRU or transformer muse_export wrote works, e.g. make lv2 LV2_MODEL=nomad_muse_trainer/zoo/band/model.onnx
LV2_MODEL ?= nomad_muse_trainer/zoo/bach/model.onnx
lv2: $(CPP_BUILD)/muse_tests $(LV2_MODEL) ## the LV2 plugin with the zoo's Bach GRU inside (LV2_MODEL=...: another) and the zoo: build/cpp/lv2/NomadMuse.lv2 (needs Debian's dpf-source; copy the folder to ~/.lv2)
	@test -f $(LV2_BUNDLE)/NomadMuse_dsp.so || { echo "error: the LV2 plugin was not built: install DPF (Debian: sudo apt install dpf-source) and run make lv2 again" >&2; exit 2; }
	$(call put_model,$(LV2_BUNDLE),$(LV2_MODEL))
	@echo "$(LV2_BUNDLE): the plugin, its Turtle, model.onnx ($$(du -k $(LV2_BUNDLE)/model.onnx | cut -f1) KB) and zoo/; install with: cp -r $(LV2_BUNDLE) ~/.lv2/"

PLUGINS := $(CPP_BUILD)/bin
# VST3, CLAP and the JACK app from the source the LV2 bundle is built from (DPF, Debian's dpf-source), each with
# PLUGIN_MODEL as its model.onnx and the zoo beside it (the state "model" may name bach, band, ... or any .onnx file)
PLUGIN_MODEL ?= nomad_muse_trainer/zoo/bach/model.onnx
plugins: $(CPP_BUILD)/muse_tests $(PLUGIN_MODEL) ## the plugin as VST3, CLAP and a JACK app (DPF; needs Debian's dpf-source; LV2: make lv2) with the zoo inside: build/cpp/bin/NomadMuse.{vst3,clap} and NomadMuse
	@test -f $(PLUGINS)/NomadMuse.clap || { echo "error: the DPF plugins were not built: install DPF (Debian: sudo apt install dpf-source) and run make plugins again" >&2; exit 2; }
	@for d in $(PLUGINS)/NomadMuse.vst3/Contents/$$(uname -m)-linux $(PLUGINS); do $(call put_model,$$d,$(PLUGIN_MODEL)) || exit 1; done
	@echo "$(PLUGINS): NomadMuse.vst3 (copy to ~/.vst3/), NomadMuse.clap (~/.clap/, with model.onnx and zoo/ beside it), NomadMuse (the JACK app); the LV2 bundle: make lv2"

# `make all MIDI_DIR=~/my_midi` trains on the user's folder alone: the default corpus is exported only when it is used
all: install $(if $(filter $(CORPUS_DIR),$(MIDI_DIR)),corpus) index prep baseline train train-tx export eval demo ## the whole pipeline on the default corpus (20 to 35 minutes on 2 cores)
	@echo; echo "artifacts in $(ART)/:"; ls -1 $(ART) | sed 's/^/  /'
	@echo; echo "GRU (INT8 and fp32) against the Markov baseline:"; $(PYTHON) -c "import json; from nomad_muse_trainer.eval import eval_table; print(eval_table(json.load(open('$(ART)/eval.json'))))"
	@echo; echo "Transformer:"; $(PYTHON) -c "import json; from nomad_muse_trainer.eval import eval_table; print(eval_table(json.load(open('$(ART)/eval_tx.json'))))"

# ---------------------------------------------------------------- beat time: the same corpus counted in ticks of the beat
BEAT_CONFIG ?= configs/beat.yaml
BEAT        := $(ART)/beat

beat: $(BEAT)/eval.json $(BEAT)/eval_tx.json ## the GRU and the transformer in beat time (time_unit: beat: bars, meters, tempi) on the same corpus and plan, scored with what a listener hears: artifacts/beat/
	@echo; $(PYTHON) -c "import json; from nomad_muse_trainer.eval import eval_table; print(eval_table(json.load(open('$(BEAT)/eval.json'))))"

$(BEAT)/.prep-done: $(STAMPS)/install $(BEAT_CONFIG) $(MIDI_LIST) $(call src,$(PREP_SRC)) $(call unless,$(BEAT)/dataset.npz)
	muse_prep --midi_dir "$(MIDI_DIR)" --out $(@D)/dataset.npz --config $(BEAT_CONFIG)
	@touch $@
$(BEAT)/baseline.bin: $(BEAT)/dataset.npz $(call src,markov baseline metrics)
	muse_baseline --dataset $< --out $@ --order 5 --config $(BEAT_CONFIG)
$(BEAT)/checkpoints/gru/best.pt $(BEAT)/checkpoints/transformer/best.pt: $(BEAT)/checkpoints/%/best.pt: $(BEAT)/dataset.npz $(call src,models train)
	muse_train --dataset $< --model $* --config $(BEAT_CONFIG) --out_dir $(BEAT)/checkpoints $(TRAIN_FLAGS)
$(BEAT)/muse_quantized.onnx: $(BEAT)/checkpoints/gru/best.pt $(call src,$(EXPORT_SRC))
	muse_export --ckpt $< --out $@ --config $(BEAT_CONFIG)
$(BEAT)/muse_quantized_tx.onnx: $(BEAT)/checkpoints/transformer/best.pt $(call src,$(EXPORT_SRC))
	muse_export --ckpt $< --out $@ --config $(BEAT_CONFIG)
$(BEAT)/eval.json: $(BEAT)/muse_quantized.onnx $(BEAT)/baseline.bin $(call src,eval metrics)
	muse_eval --dataset $(BEAT)/dataset.npz --onnx $< --baseline $(BEAT)/baseline.bin --out $@
$(BEAT)/eval_tx.json: $(BEAT)/muse_quantized_tx.onnx $(BEAT)/baseline.bin $(call src,eval metrics)
	muse_eval --dataset $(BEAT)/dataset.npz --onnx $< --baseline $(BEAT)/baseline.bin --out $@

# ---------------------------------------------------------------- one model that plays with you: accompany, harmonize, fill (conditioning)
COND_CONFIG ?= configs/bach-cond.yaml       # beat time with conditioning and the training copies that teach the tasks
COND        := $(ART)/bach-cond
bach-cond: $(COND)/eval.json ## the Bach GRU trained with conditioning: it continues, harmonizes a given melody and fills bars (muse_sample --accompany, --infill), scored on each task: artifacts/bach-cond/
	@echo; $(PYTHON) -c "import json; from nomad_muse_trainer.eval import eval_table; print(eval_table(json.load(open('$(COND)/eval.json'))))"

$(COND)/.prep-done: $(STAMPS)/install $(COND_CONFIG) $(MIDI_LIST) $(call src,$(PREP_SRC)) $(call unless,$(COND)/dataset.npz)
	muse_prep --midi_dir "$(MIDI_DIR)" --out $(@D)/dataset.npz --config $(COND_CONFIG)
	@touch $@
$(COND)/baseline.bin: $(COND)/dataset.npz $(call src,markov baseline metrics)
	muse_baseline --dataset $< --out $@ --order 5 --config $(COND_CONFIG)
$(COND)/checkpoints/gru/best.pt: $(COND)/dataset.npz $(call src,models train)
	muse_train --dataset $< --model gru --config $(COND_CONFIG) --out_dir $(COND)/checkpoints $(TRAIN_FLAGS)
$(COND)/muse_quantized.onnx: $(COND)/checkpoints/gru/best.pt $(call src,$(EXPORT_SRC))
	muse_export --ckpt $< --out $@ --config $(COND_CONFIG)
$(COND)/eval.json: $(COND)/muse_quantized.onnx $(COND)/baseline.bin $(call src,eval metrics sampling conditioning)
	muse_eval --dataset $(COND)/dataset.npz --onnx $< --baseline $(COND)/baseline.bin --out $@ --samples 64

# ---------------------------------------------------------------- the band model: drums, bass and chords in one stream
BAND_CONFIG ?= configs/band.yaml            # configs/band-beat.yaml: in beat time, a band that opens with its instruments
BAND_DIR    ?= data/grooves
BAND        := $(ART)/band

band: $(BAND)/eval.json $(BAND)/sample.mid ## the multi-track model: render mma's grooves (needs Debian's mma), train a GRU, export, score against its Markov baseline, sample bass, drums and piano: artifacts/band/
	@echo; $(PYTHON) -c "import json; from nomad_muse_trainer.eval import eval_table; print(eval_table(json.load(open('$(BAND)/eval.json'))))"

band-cpp: $(CPP_BUILD)/muse_tests $(BAND)/band.onnx ## the C++ demo streams the band model (bass and drums): artifacts/band/sample_cpp.mid
	$(CPP_BUILD)/muse_demo --vocab $(BAND)/vocab.json --model $(BAND)/band.onnx --baseline $(BAND)/baseline.bin --instruments bass,drums \
	  --out $(BAND)/sample_cpp.mid --json $(BAND)/cpp_bench.json --length 1024 --seed 42 --bench 2000

$(STAMPS)/grooves: $(STAMPS)/install $(call src,grooves)
	muse_corpus --name grooves --out $(BAND_DIR)
	@touch $@
$(BAND)/.prep-done: $(STAMPS)/grooves $(BAND_CONFIG) $(call src,$(PREP_SRC)) $(call unless,$(BAND)/dataset.npz)
	muse_prep --midi_dir $(BAND_DIR) --out $(@D)/dataset.npz --config $(BAND_CONFIG)
	@touch $@
$(BAND)/baseline.bin: $(BAND)/dataset.npz $(call src,markov baseline metrics)
	muse_baseline --dataset $< --out $@ --order 5 --config $(BAND_CONFIG)
$(BAND)/checkpoints/gru/best.pt $(BAND)/checkpoints/transformer/best.pt: $(BAND)/checkpoints/%/best.pt: $(BAND)/dataset.npz $(call src,models train)
	muse_train --dataset $< --model $* --config $(BAND_CONFIG) --out_dir $(BAND)/checkpoints $(TRAIN_FLAGS)
$(BAND)/band.onnx: $(BAND)/checkpoints/gru/best.pt $(call src,$(EXPORT_SRC))
	muse_export --ckpt $< --out $@ --config $(BAND_CONFIG)
$(BAND)/eval.json: $(BAND)/band.onnx $(BAND)/baseline.bin $(call src,eval metrics)
	muse_eval --dataset $(BAND)/dataset.npz --onnx $< --baseline $(BAND)/baseline.bin --vocab $(BAND)/vocab.json --out $@ --sample_tokens 1024
# the band's transformer (the zoo's band in beat time: its attention and bar clock hold a groove bar to bar)
$(BAND)/band_tx.onnx: $(BAND)/checkpoints/transformer/best.pt $(call src,$(EXPORT_SRC))
	muse_export --ckpt $< --out $@ --config $(BAND_CONFIG)
$(BAND)/eval_tx.json: $(BAND)/band_tx.onnx $(BAND)/baseline.bin $(call src,eval metrics sampling conditioning)
	muse_eval --dataset $(BAND)/dataset.npz --onnx $< --baseline $(BAND)/baseline.bin --vocab $(BAND)/vocab.json --out $@ --sample_tokens 1024
# the band's transformer with conditioning (the zoo's band): it also plays a bass and drums under a given part and fills bars
band-cond: ## the band's transformer trained with conditioning: bass and drums under a melody or chords (muse_sample --model band --accompany), fills (--infill), scored on each task: artifacts/band-cond/
	$(MAKE) $(ART)/band-cond/eval_tx.json BAND=$(ART)/band-cond BAND_CONFIG=configs/band-cond.yaml
	@echo; $(PYTHON) -c "import json; from nomad_muse_trainer.eval import eval_table; print(eval_table(json.load(open('$(ART)/band-cond/eval_tx.json'))))"
# at the settings the zoo's sweep picked for this model (its card): asked for bass, drums and piano, 10 of 16 seeds bring in
# all three at temperature 1.2, top-p 1.0, against 5 of 16 at the export's defaults (1.0, 0.95)
$(BAND)/sample.mid: $(BAND)/band.onnx $(call src,runtime sampling)
	muse_sample --onnx $< --vocab $(BAND)/vocab.json --out $@ --length 1024 --instruments bass,drums,piano --seed 42 --temperature 1.2 --top_p 1.0

# ---------------------------------------------------------------- the model zoo that ships inside the package
IRISH     := $(ART)/irish
IRISH_DIR := data/irish
IRISH_CONFIG ?= $(BEAT_CONFIG)

# the zoo's models are in beat time (each card says why): the Bach GRU with conditioning of `make bach-cond`, the Bach
# transformer of `make beat`, the Irish tunes, and the band's transformer with conditioning of `make band-cond` in
# artifacts/band-cond (`make band` keeps its own folder, config and GRU)
zoo: beat bach-cond band-cond $(IRISH)/eval.json ## rebuild the model zoo in nomad_muse_trainer/zoo/ (Bach GRU and band transformer with conditioning, Bach transformer, Irish tunes; in beat time) with cards from the runs' figures
	$(PYTHON) tools/build_zoo.py

$(STAMPS)/irish: $(STAMPS)/install $(call src,corpus)
	muse_corpus --out $(IRISH_DIR) --name oneills
	@touch $@
$(IRISH)/.prep-done: $(STAMPS)/irish $(IRISH_CONFIG) $(call src,$(PREP_SRC)) $(call unless,$(IRISH)/dataset.npz)
	muse_prep --midi_dir $(IRISH_DIR) --out $(@D)/dataset.npz --config $(IRISH_CONFIG)
	@touch $@
$(IRISH)/baseline.bin: $(IRISH)/dataset.npz $(call src,markov baseline metrics)
	muse_baseline --dataset $< --out $@ --config $(IRISH_CONFIG)
$(IRISH)/checkpoints/gru/best.pt: $(IRISH)/dataset.npz $(call src,models train)
	muse_train --dataset $< --model gru --out_dir $(IRISH)/checkpoints --config $(IRISH_CONFIG)
$(IRISH)/muse_quantized.onnx: $(IRISH)/checkpoints/gru/best.pt $(call src,$(EXPORT_SRC))
	muse_export --ckpt $< --out $@ --config $(IRISH_CONFIG)
$(IRISH)/eval.json: $(IRISH)/muse_quantized.onnx $(IRISH)/baseline.bin $(call src,eval metrics)
	muse_eval --dataset $(IRISH)/dataset.npz --onnx $< --baseline $(IRISH)/baseline.bin --out $@

sync-check: $(STAMPS)/install ## nbdev_export, nbdev_clean, tools/media.py, tools/sidebar.py, make readme and the C++ header of the file formats must leave the tree unchanged; notebooks in dependency order (tools/check_order.py)
	@state() { git status --porcelain --untracked-files=all; git diff | sha1sum; }; \
	before="$$(state)"; mtime() { $(PYTHON) -c "import os; print(os.stat('config.yaml').st_mtime_ns)"; }; t0="$$(mtime)"; \
	nbdev_export; nbdev_clean; $(PYTHON) tools/media.py; $(PYTHON) tools/sidebar.py; $(PYTHON) tools/render_readme.py >/dev/null; \
	$(PYTHON) -c "from nomad_muse_trainer.formats import write_cpp_header; write_cpp_header()"; after="$$(state)"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "error: nbdev_export, nbdev_clean, tools/media.py, tools/sidebar.py, make readme or the C++ formats header changed the tree: edit the notebooks, export, clean, python tools/media.py, python tools/sidebar.py, make readme, write_cpp_header, commit"; \
	  git status --porcelain; exit 1; fi; \
	if [ "$$t0" != "$$(mtime)" ]; then \
	  echo "error: make readme rewrote config.yaml without changing it: every artifact depends on it, so make all would redo them all"; exit 1; fi; \
	$(PYTHON) tools/check_order.py; \
	echo "sync: notebooks, package and outputs are in sync"

test: install sync-check ## install, check notebooks and package are in sync, build and test the C++ example (when a compiler is present), run every notebook's tests, then render the docs
	@if command -v c++ >/dev/null || command -v g++ >/dev/null || command -v clang++ >/dev/null; then $(MAKE) --no-print-directory cpp-test; \
	 else echo "no C++ compiler: skipping the C++ example (examples/cpp)"; fi
	$(PYTHON) tools/nbtest.py
	$(MAKE) --no-print-directory docs < /dev/null

test-slow: install ## also run the cells marked slow (full corpus; minutes)
	$(PYTHON) tools/nbtest.py --flags slow

docs: $(STAMPS)/install ## render the docs site into _docs/ without Quarto (nbdev_proc_nbs, then smalldocs)
	@echo "nbdev_proc_nbs (it looks for Quarto, which is not needed here, and goes on)"
	rm -rf _proc
	-nbdev_proc_nbs > .make/proc.log 2>&1
	@missing=$$(for f in nbs/*.ipynb; do test -f _proc/$$(basename $$f) || echo $$f; done); if [ -n "$$missing" ]; then \
	  grep -E '^(Exception|[A-Za-z]*Error): ' .make/proc.log | sort -u | head -5; \
	  echo "error: nbdev_proc_nbs did not process" $$missing "(the whole log: .make/proc.log)"; exit 1; fi
	cp nbs/styles.css _proc/ 2>/dev/null || true
	rm -rf _docs
	cd _proc && smalldocs render .
	mv _proc/_docs _docs
	cp -r nbs/media _docs/media
	$(PYTHON) tools/localize_links.py
	@echo "docs: $$(ls _docs/*.html | wc -l) pages in _docs/ (open _docs/index.html)"

readme: $(STAMPS)/install ## regenerate README.md from nbs/index.ipynb (no Quarto needed)
	$(PYTHON) tools/render_readme.py

clean: ## remove artifacts, docs and build stamps (keeps data/midi)
	rm -rf $(ART) _docs _proc $(STAMPS) build dist *.egg-info
