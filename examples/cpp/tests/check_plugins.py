"""The DPF builds (VST3 and LV2) in a host this project did not write: PyPI's minihost (JUCE's plugin hosting, headless).
Usage: python check_plugins.py BIN_DIR ZOO_DIR   (BIN_DIR: build/cpp/bin, where DPF puts NomadMuse.vst3 and NomadMuse.lv2)

For each format: MIDI comes out while the transport rolls, every event inside its block, note-ons and note-offs balanced
(the transport's stop sends the offs of what sounds), only legal notes, each note-on on its tick of the host's beat
(a beat-time model), the same transport and settings give the same notes on a second instance, the two formats give the
same notes, and a model file that cannot be read leaves the plugin silent (no crash of the host). Prints one line per
check and `all passed` or exits 1."""
import os, subprocess, sys, json, tempfile
from pathlib import Path

RATE, BLOCK = 48000, 512
failed = 0
def check(ok, what):
    global failed
    print(('ok   ' if ok else 'FAIL ') + what, flush=True)
    failed += not ok

def play(path, model, bpm=100.0, per_bar=4, unit=4, blocks=1200, start_beat=0.0, params=None, midi_in=None, state=None, saved=None):
    "Run the plugin in a fresh process (a model is chosen through $MUSE_MODEL when the plugin opens it): its MIDI as (block, frame, status, a, b); `state`: a saved state (hex) to load first; `saved`: a file its state is written to at the end"
    code = f"""
import json, sys, time, numpy as np, minihost
p = minihost.Plugin({str(path)!r}, sample_rate={RATE}, max_block_size={BLOCK}, in_channels=0, out_channels=2)
if {state!r}: p.set_state(bytes.fromhex({state!r}))
for name, v in {params or {}!r}.items(): p.set_param_by_name(name, v)

inp, out = np.zeros((0, {BLOCK}), np.float32), np.zeros((2, {BLOCK}), np.float32)
midi_in = {midi_in or {}!r}
rows, us = [], []
for b in range({blocks} + 20):
    playing = b < {blocks}
    pos = b * {BLOCK}
    beat = {start_beat} + pos / {RATE} * {bpm} / 60 * {unit} / 4
    p.set_transport(bpm={bpm}, time_sig_num={per_bar}, time_sig_denom={unit}, position_samples=pos, position_beats=beat, is_playing=playing)
    t0 = time.perf_counter()
    ev = p.process_midi(inp, out, midi_in.get(str(b), []), 1024)
    if playing and b: us.append((time.perf_counter() - t0) * 1e6)
    rows += [(b, *e) for e in ev]
    assert not np.any(out), 'the audio output is silent'
if {str(saved) if saved else ''!r}: open({str(saved)!r}, 'w').write(p.get_state().hex())   # (after processing: a VST3 host delivers a parameter change with the next block)
print(json.dumps(rows)); print(json.dumps([float(np.percentile(us, 50)), float(np.percentile(us, 99)), max(us)]), file=sys.stderr)
"""
    env = {**os.environ, 'MUSE_MODEL': str(model)}
    r = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, timeout=600)
    return r.returncode, (json.loads(r.stdout.strip().splitlines()[-1]) if r.returncode == 0 and r.stdout.strip() else None), r.stderr

def legal(rows):
    "Note-ons and note-offs balanced per (channel, key), every event inside its block, only notes, offs of sounding notes"
    on, bad = {}, []
    for b, f, st, a, v in rows:
        if not 0 <= f < BLOCK: bad.append(f'frame {f} outside its block'); continue
        kind, ch = st & 0xF0, st & 0x0F
        if kind == 0x90 and v > 0:
            if not (0 <= a < 128 and 1 <= v < 128): bad.append(f'note-on {a} {v}')
            on[ch, a] = on.get((ch, a), 0) + 1
        elif kind == 0x80 or (kind == 0x90 and v == 0):
            if on.get((ch, a), 0) <= 0: bad.append(f'off of a silent note {ch} {a}')
            else: on[ch, a] -= 1
        elif kind != 0xC0: bad.append(f'status {st:#x}')
    return bad, sum(on.values())

def on_grid(rows, bpm, unit, res=12, start_beat=0.0):
    "The worst distance, in frames, from a note-on to its tick of the host's beat (res ticks a quarter)"
    fpb = RATE * 60 / bpm
    ticks = res * 4 / unit
    worst = 0.0
    for b, f, st, a, v in rows:
        if st & 0xF0 != 0x90 or v == 0: continue
        beat = start_beat + (b * BLOCK + f) / fpb
        t = beat * ticks
        worst = max(worst, abs(t - round(t)) * fpb / ticks)
    return worst

def main():
    bin_dir, zoo = Path(sys.argv[1]), Path(sys.argv[2])
    work = Path(tempfile.mkdtemp())                     # saved states and a broken model (nothing is written beside the plugins)
    bach = zoo/'bach'/'model.onnx'
    fmts = {'VST3': bin_dir/'NomadMuse.vst3', 'LV2': bin_dir/'NomadMuse.lv2'}
    notes = {}
    for name, path in fmts.items():
        rc, rows, err = play(path, bach)
        check(rc == 0 and rows is not None, f"{name}: minihost loads {path.name} and runs 1220 blocks ({err.strip().splitlines()[-1] if rc else 'exit 0'})")
        if rc: continue
        p50, p99, most = json.loads([l for l in err.splitlines() if l.startswith('[')][-1])
        print(f"     {name}: process_midi of {BLOCK} frames (the plugin with minihost's Python binding around it): p50 {p50:.0f} us, p99 {p99:.0f} us, max {most:.0f} us, against the block's {BLOCK / RATE * 1e6:.0f} us")
        ons = [r for r in rows if r[2] & 0xF0 == 0x90 and r[4] > 0]
        check(len(ons) > 50, f"{name}: the zoo's bach plays along the transport: {len(ons)} note-ons in {1200 * BLOCK / RATE:.1f} s at 100 bpm")
        bad, left = legal(rows)
        check(not bad and left == 0, f"{name}: every event inside its block, legal notes, ons and offs balanced after the stop ({bad[:3]}, {left} left sounding)")
        w = on_grid(rows, 100.0, 4)
        check(w <= 1.0, f"{name}: every note-on within a frame of its tick of the host's beat (worst {w:.3f} frames)")
        check(max(r[0] for r in ons) >= 1180, f"{name}: it plays to the end of the transport (last note-on in block {max(r[0] for r in ons)})")
        rc2, again, _ = play(path, bach)
        check(rc2 == 0 and again == rows, f"{name}: a second instance with the same transport and settings plays the same {len(rows)} events")
        notes[name] = rows
        # a state saved with temperature 0.5 and loaded into a fresh instance plays what the first played
        saved = work/f'state_{name}.hex'
        rc, cool, _ = play(path, bach, params={'Temperature': 0.5}, saved=saved)
        rc2, loaded, _ = play(path, bach, state=saved.read_text() if saved.exists() else '')
        check(rc == 0 and rc2 == 0 and cool != rows and loaded == cool,
              f"{name}: a state saved at temperature 0.5 ({len(bytes.fromhex(saved.read_text())) if saved.exists() else 0} bytes) restores in a fresh instance: the same {len(cool or [])} events, not the default's")
        # 3/4 at 140 bpm, from the middle of a bar: the piece starts on the host's next bar line. (minihost's LV2 hosting
        # says bar 1, beat 1 in every block's time:Position, whatever the song position: there the plugin keeps its own
        # clock from the host's first report, and the piece starts where the host said it was)
        rc, rows34, _ = play(path, bach, bpm=140, per_bar=3, unit=4, start_beat=1.5)
        ons = [r for r in (rows34 or []) if r[2] & 0xF0 == 0x90 and r[4] > 0]
        first = 1.5 + (ons[0][0] * BLOCK + ons[0][1]) / (RATE * 60 / 140) if ons else -1
        want = 3.0 if name == 'VST3' else 1.5
        check(rc == 0 and len(ons) > 50 and on_grid(rows34, 140, 4, start_beat=1.5) <= 1.0 and abs(first - want) <= 1 / (RATE * 60 / 140),
              f"{name}: 140 bpm in 3/4 from beat 1.5: {len(ons)} note-ons on the grid, the first at beat {first:.4f} (the host's next bar line: {want:g})")
        rc, rows_bad, err = play(path, work/'no_such_model.onnx', blocks=40)
        said = [l for l in err.splitlines() if 'nomad_muse' in l]
        check(rc == 0 and rows_bad == [] and any('model not found' in l for l in said), f"{name}: a missing model: the host goes on, the plugin is silent and says why ({said[0] if said else 'nothing on stderr'})")
        broken = work/'broken_model.onnx'
        broken.write_bytes(bach.read_bytes()[:5000])
        rc, rows_bad, err = play(path, broken, blocks=40)
        said = [l for l in err.splitlines() if 'nomad_muse: error' in l]
        check(rc == 0 and rows_bad == [] and said, f"{name}: a truncated model file: silent, and says so ({said[0][:140] if said else 'nothing on stderr'})")
    if len(notes) == 2:
        check(notes['VST3'] == notes['LV2'], f"VST3 and LV2 play the same {len(notes['VST3'])} events for the same transport")
    print('all passed' if not failed else f'{failed} failed')
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
