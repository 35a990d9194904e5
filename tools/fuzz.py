#!/usr/bin/env python
"""make fuzz: every C++ reader's libFuzzer harness (examples/cpp/fuzz/) under AddressSanitizer and
UndefinedBehaviorSanitizer, and the Python readers under atheris (tools/fuzz_py.py), for --seconds each, from seeds that
are the repository's real files (models, vocabularies, .bin files, token streams, MIDI, datasets, configs). Prints, per harness, the executions, the coverage (edges) and the crashes; each crash is
kept in examples/cpp/fuzz/regressions/<harness>/, which ctest (fuzz_replay_*) replays on every `make test`.
Needs clang with compiler-rt (Debian: clang libclang-rt-14-dev). Usage: python tools/fuzz.py [--seconds 60] [--only vocab]"""
import argparse, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ = ROOT/'examples'/'cpp'/'fuzz'
HARNESSES = ('vocab', 'markov', 'model', 'tokens', 'midi', 'player', 'plugin', 'vst3')
PLUGIN = ('plugin', 'vst3')                               # the harnesses through DPF's CLAP and VST3 entry points
DPF = Path('/usr/share/dpf/cmake/DPF-plugin.cmake')     # Debian's dpf-source: the plugin harnesses build DPF's entry points

def seeds(h, fixtures:Path)->list:
    "The real files each harness starts from"
    zoo = ROOT/'nomad_muse_trainer'/'zoo'
    if h == 'vocab': return sorted(zoo.glob('*/vocab.json')) + sorted(fixtures.glob('vocab*.json'))
    if h == 'markov': return sorted((FUZZ/'seeds'/'markov').glob('*.bin'))              # small real .bins: a large one fuzzes at 20 runs a second
    if h == 'model': return [fixtures/f for f in ('gru_w8.onnx', 'tx_w8_step.onnx', 'gru_band_w8.onnx', 'tx_beat_w8.onnx') if (fixtures/f).exists()]
    if h == 'player': return sorted((FUZZ/'seeds'/'player').glob('*'))                  # sessions a host might drive a plugin through
    if h in PLUGIN: return sorted((FUZZ/'seeds'/'plugin').glob('*'))                    # saved states, then a host's MIDI, parameters and transport
    if h == 'midi': return [p for p in sorted((ROOT/'nbs'/'fixtures').glob('*.mid')) + sorted((ROOT/'nbs'/'fixtures_band').glob('*.mid')) if p.stat().st_size < 64_000]
    return sorted((FUZZ/'seeds'/'tokens').glob('*'))

def fail(msg): print(f"error: {msg}", file=sys.stderr); sys.exit(2)

DEBIAN = ['clang', 'libclang-rt-14-dev', 'dpf-source']    # clang, compiler-rt (libFuzzer and the sanitizers' runtimes), DPF

def install_clang():
    "Debian's clang and compiler-rt where this runs as root with apt (as .ci/run installs the LV2 packages); else nothing"
    if not (shutil.which('apt-get') and hasattr(os, 'geteuid') and os.geteuid() == 0): return
    print(f"installing {' '.join(DEBIAN)} (apt-get)", flush=True)
    env = {**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'}
    subprocess.run(['apt-get', 'update', '-qq'], env=env, stdout=subprocess.DEVNULL)
    subprocess.run(['apt-get', 'install', '-y', '-qq', '--no-install-recommends', *DEBIAN], env=env, stdout=subprocess.DEVNULL)

def build(out:Path, harnesses:list, asked:bool)->list:
    "Build the harnesses (all but the plugin's where DPF is missing, unless they were asked for by name); the ones built"
    dpf = any(h in PLUGIN for h in harnesses)
    if not shutil.which('clang++') or dpf and not DPF.exists(): install_clang()
    if dpf and not DPF.exists():
        if asked: fail("the plugin harnesses need DPF (Debian: apt install dpf-source)")
        print("note: DPF not found (Debian: dpf-source): the plugin harnesses are left out", flush=True)
        harnesses = [h for h in harnesses if h not in PLUGIN]
    cxx = shutil.which('clang++')
    if not cxx: fail(f"make fuzz needs clang (Debian: apt install {' '.join(DEBIAN)})")
    with tempfile.TemporaryDirectory() as t:                     # compiler-rt's libFuzzer and sanitizer runtimes
        src = Path(t)/'probe.cpp'; src.write_text('#include <cstdint>\n#include <cstddef>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n')
        probe = lambda: subprocess.run([cxx, '-fsanitize=fuzzer,address,undefined', str(src), '-o', str(Path(t)/'probe')], capture_output=True).returncode
        if probe(): install_clang()
        if probe(): fail("clang cannot link a libFuzzer target here: install compiler-rt (Debian: apt install libclang-rt-14-dev)")
    cmake = shutil.which('cmake') or fail("cmake not found (make cpp installs it)")
    env = {**os.environ, 'CC': shutil.which('clang') or 'clang', 'CXX': cxx}
    subprocess.run([cmake, '-S', str(ROOT/'examples'/'cpp'), '-B', str(out), '-DCMAKE_BUILD_TYPE=RelWithDebInfo', '-DMUSE_FUZZ=ON',
                    f'-DPython3_EXECUTABLE={sys.executable}'], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([cmake, '--build', str(out), '-j2', '--target', *[f'fuzz_{h}' for h in harnesses]], check=True, env=env, stdout=subprocess.DEVNULL)
    return harnesses

def model_env(fixtures:Path)->dict:
    "The models the player and plugin harnesses open (as ctest sets them): the fixtures' band GRU with conditioning, the zoo"
    m = str((fixtures/'gru_band_cond_w8.onnx').resolve())
    return {'MUSE_FUZZ_PLAYER_MODEL': m, 'MUSE_MODEL': m, 'MUSE_ZOO': str(ROOT/'nomad_muse_trainer'/'zoo')}

def run(h, out:Path, fixtures:Path, seconds:int)->dict:
    corpus = out/'corpus'/h; corpus.mkdir(parents=True, exist_ok=True)
    for s in seeds(h, fixtures): shutil.copy(s, corpus/s.name)
    keep = FUZZ/'regressions'/h; keep.mkdir(parents=True, exist_ok=True)
    before = set(keep.iterdir())
    t0 = time.time()
    p = subprocess.run([str(out/f'fuzz_{h}'), str(corpus), f'-max_total_time={seconds}', '-print_final_stats=1', '-timeout=10',
                        '-rss_limit_mb=2048', '-malloc_limit_mb=1024', f'-artifact_prefix={keep}/', '-close_fd_mask=1'],
                       capture_output=True, text=True, errors='replace', cwd=out, env={**os.environ, **model_env(fixtures)})
    return result(h, p, out/f'fuzz_{h}.log', keep, before, t0)

def result(name, p, log_path:Path, keep:Path, before:set, t0:float)->dict:
    "A finished run's row: executions and edges from libFuzzer's final lines, the crash files it added to `keep`, its log kept"
    log = p.stdout + p.stderr
    log_path.write_text(log)
    execs, cov = re.findall(r'stat::number_of_executed_units:\s*(\d+)', log), re.findall(r'\bcov: (\d+)', log)
    found = sorted(set(keep.iterdir()) - before)
    return dict(harness=name, execs=int(execs[-1]) if execs else 0, edges=int(cov[-1]) if cov else 0, seconds=round(time.time() - t0),
                crashes=len(found), files=[f.name for f in found], rc=p.returncode,
                why=next((l.strip() for l in log.splitlines() if 'SUMMARY' in l or 'ERROR:' in l or 'Uncaught' in l), ''))

PY_READERS = ('midi', 'markov', 'dataset', 'config')

def run_py(reader, fixtures:Path, seconds:int)->dict:
    "One Python reader under atheris (tools/fuzz_py.py), as run() does a C++ harness"
    keep = FUZZ/'regressions'/f'py_{reader}'; keep.mkdir(parents=True, exist_ok=True)
    before, t0 = set(keep.iterdir()), time.time()
    p = subprocess.run([sys.executable, str(ROOT/'tools'/'fuzz_py.py'), reader, '--seconds', str(seconds), '--fixtures', str(fixtures)],
                       capture_output=True, text=True)
    return result(f'py_{reader}', p, ROOT/'build'/'fuzz'/f'fuzz_py_{reader}.log', keep, before, t0)

def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--seconds', type=int, default=int(os.environ.get('FUZZ_SECONDS', 60)), help='per harness (default 60, or $FUZZ_SECONDS)')
    ap.add_argument('--build', default=str(ROOT/'build'/'fuzz'), help='the sanitized build folder')
    ap.add_argument('--fixtures', default=str(ROOT/'build'/'cpp'/'fixtures'), help="make cpp's fixtures (seeds: small models and vocabularies)")
    ap.add_argument('--only', nargs='*', choices=HARNESSES, help='these harnesses only')
    a = ap.parse_args()
    if a.seconds < 1: fail(f"--seconds must be at least 1, got {a.seconds}")
    out, fixtures = Path(a.build), Path(a.fixtures)
    if not (fixtures/'vocab.json').exists():
        print(f"making the fixtures the seeds come from in {fixtures}", flush=True)
        subprocess.run([sys.executable, str(ROOT/'examples'/'cpp'/'tests'/'make_fixtures.py'), str(fixtures)], check=True, stdout=subprocess.DEVNULL)
    harnesses = build(out, list(a.only or HARNESSES), bool(a.only))
    rows = [run(h, out, fixtures, a.seconds) for h in harnesses]
    if not a.only: rows += [run_py(r, fixtures, a.seconds) for r in PY_READERS]
    print(f"\n{'harness':<10} {'seconds':>7} {'executions':>11} {'edges':>6} {'crashes':>7}")
    for r in rows: print(f"{r['harness']:<10} {r['seconds']:>7} {r['execs']:>11,} {r['edges']:>6} {r['crashes']:>7}" + (f"  {r['why']}: {', '.join(r['files'])}" if r['crashes'] else ''))
    if any(r['crashes'] for r in rows):
        print("\ncrashes are kept in examples/cpp/fuzz/regressions/<harness>/ (ctest replays them): fix them, then commit the files")
        sys.exit(1)

if __name__ == '__main__': main()
