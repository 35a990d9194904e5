"""muse_demo end to end, checked by the Python package: the C++ sample is grammar-legal, its MIDI file holds
exactly the notes the Python decoder gives for the same tokens, the JSON has its keys, and user mistakes get
one `error:` line and exit code 2.   Usage: check_demo.py MUSE_DEMO FIXTURES_DIR"""
import json, subprocess, sys, tempfile
from pathlib import Path
import numpy as np
import pretty_midi

from nomad_muse_trainer.tokenizer import MuseTokenizer, decode_notes, load_vocab
from nomad_muse_trainer.grammar import Grammar, Controls
from nomad_muse_trainer.vocab import parse_instruments
from nomad_muse_trainer.zoo import zoo_model

demo, fix = sys.argv[1], Path(sys.argv[2])
tmp = Path(tempfile.mkdtemp())
failures = []

def run(*args):
    return subprocess.run([demo, *map(str, args)], capture_output=True, text=True, timeout=300)

def check(cond, msg):
    print(('ok   ' if cond else 'FAIL ') + msg)
    if not cond: failures.append(msg)

def same_notes(mid, ids, tempo, tok=MuseTokenizer()):
    "The C++ MIDI file against the Python decoder's notes for the same ids (times to within one tick; multi-track: each note's instrument too)"
    inst = lambda i: ((i.program, i.is_drum) if tok.multi else ())
    got = sorted((round(n.start, 3), n.pitch, n.velocity, *inst(i), round(n.end, 3)) for i in pretty_midi.PrettyMIDI(str(mid)).instruments for n in i.notes)
    want = sorted((round(n.start, 3), n.pitch, n.velocity, *inst(i), round(n.end, 3)) for i in tok.decode(ids, tempo=tempo).instruments for n in i.notes)
    tick = 60 / tempo / 480
    return len(got) == len(want) > 0 and all(g[1:-1] == w[1:-1] and abs(g[0] - w[0]) <= tick + 1e-3 and abs(g[-1] - w[-1]) <= tick + 1e-3
                                             for g, w in zip(got, want)), len(got), len(want)

vocab = fix/'vocab.json'
for name, model_args in (('gru_int8', ['--model', fix/'gru_int8.onnx', '--baseline', fix/'baseline.bin']),
                         ('gru_w8', ['--model', fix/'gru_w8.onnx']),
                         ('markov', ['--baseline', fix/'baseline.bin']),
                         ('tx', ['--model', fix/'tx.onnx']),
                         ('zoo_bach', ['--model', zoo_model('bach')/'model.onnx'])):   # the package's own Bach GRU, with its vocab.json
    mid, js, ids_path = tmp/f'{name}.mid', tmp/f'{name}.json', tmp/f'{name}.txt'
    r = run('--vocab', zoo_model('bach')/'vocab.json' if name == 'zoo_bach' else vocab, *model_args, '--out', mid, '--json', js, '--tokens', ids_path, '--length', 300, '--bench', 2000, '--tempo', 100, '--seed', 3)
    print(r.stdout.strip())
    check(r.returncode == 0, f"{name}: exit 0 ({r.stderr.strip()[:200]})")
    if r.returncode: continue
    ids = [int(x) for x in ids_path.read_text().split()]
    tok = load_vocab(zoo_model('bach')/'vocab.json') if name == 'zoo_bach' else MuseTokenizer()   # the zoo's Bach GRU counts time in beats
    check(tok.grammar.check(ids) == -1 and ids[0] == 1 and ids[-1] == 2, f"{name}: {len(ids)} sampled tokens are a legal piece")
    ok, ng, nw = same_notes(mid, ids, 100, tok)
    check(ok, f"{name}: the MIDI file has the Python decoder's notes ({ng} vs {nw})")
    res = json.loads(js.read_text())
    keys = {'model', 'model_type', 'sampling_us_p50', 'sample'} | ({'step_us_p50', 'step_us_p99', 'steps', 'onnxruntime_version'} if name != 'markov' else set())
    check(keys <= res.keys(), f"{name}: JSON keys {sorted(keys - res.keys()) or 'all present'}")
    if 'step_us_p50' in res: check(0 < res['step_us_p50'] <= res['step_us_p99'] and res['steps'] == 2000, f"{name}: step p50 {res['step_us_p50']} us, p99 {res['step_us_p99']} us")
    native = name in ('gru_w8', 'zoo_bach', 'tx')      # a GRU or transformer file the native step runs (INT8 weights or fp32) samples with the native step, and --bench times onnxruntime beside it
    check(res.get('runtime') == ('native' if native else 'onnxruntime' if name != 'markov' else None), f"{name}: runtime {res.get('runtime')}")
    if native:
        check(0 < res['ort_step_us_p50'] <= res['ort_step_us_p99'] and abs(res['native_over_ort_p50'] - res['native_step_us_p50'] / res['ort_step_us_p50']) < 1e-2,
              f"{name}: native p50 {res['native_step_us_p50']} us, onnxruntime p50 {res['ort_step_us_p50']} us, ratio {res['native_over_ort_p50']}")
        if res['native_kernel'] != 'fp32':                # an INT8 kernel is timed against the fp32 one of the same file too
            check(0 < res['fp32_kernel_step_us_p50'] <= res['fp32_kernel_step_us_p99'] and abs(res['native_over_fp32_kernel_p50'] - res['native_step_us_p50'] / res['fp32_kernel_step_us_p50']) < 1e-2,
                  f"{name}: {res['native_kernel']} p50 {res['native_step_us_p50']} us, fp32 kernel p50 {res['fp32_kernel_step_us_p50']} us")
        else: check('fp32_kernel_step_us_p50' not in res, f"{name}: an fp32 kernel is not timed against itself")

# a model trained with conditioning accompanies a melody file: its parts under the soprano of BWV 269, the soprano
# written beside them note for note; the controls in the stream are Python's for that file (the C++ MIDI reader and
# grid against the tokenizer's `piece`); a model without conditioning, or a Markov .bin alone, is one `error:` line
cond = load_vocab(fix/'vocab_cond.json')
melody = fix/'soprano_bwv269.mid'
for ahead in (0, 2):
    mid, ids_path = tmp/f'acc{ahead}.mid', tmp/f'acc{ahead}.txt'
    r = run('--vocab', fix/'vocab_cond.json', '--model', fix/'gru_cond_w8.onnx', '--accompany', melody, '--ahead', ahead,
            '--out', mid, '--tokens', ids_path, '--bench', 0, '--seed', 4)
    print(r.stdout.strip())
    check(r.returncode == 0, f"accompany, {ahead} beats ahead: exit 0 ({r.stderr.strip()[:200]})")
    if r.returncode: continue
    ids = np.array([int(x) for x in ids_path.read_text().split()])
    check(cond.grammar.check(ids) == -1, f"accompany, {ahead} beats ahead: {len(ids)} tokens legal for the conditioning grammar")
    pc = cond.piece(melody)
    want = pc.controls(cond, np.ones(len(pc.q), bool), ahead * cond.resolution)
    got = [t for t in ids if t >= cond.ctrl_base]
    check(len(got) == len(want) and sorted(got) == sorted(want[:, 2].tolist()), f"accompany, {ahead} beats ahead: the stream holds the melody's {len(want)} notes as controls ({len(got)})")
    real = sorted((round(n.start, 3), n.pitch) for i in pretty_midi.PrettyMIDI(str(melody)).instruments for n in i.notes)
    notes = pretty_midi.PrettyMIDI(str(mid)).instruments
    mine = decode_notes(ids, cond)
    check(len(notes) == 2 and sorted((round(n.start, 3), n.pitch) for n in notes[1].notes) == real and len(notes[0].notes) == len(mine) > 20,
          f"accompany, {ahead} beats ahead: the file has the soprano as written ({len(real)} notes) and the model's {len(mine)} notes")
# --infill: bars 5-8 of BWV 269 rewritten (a single stream), and bars 2-3 of a groove with only the bass rewritten (a band)
from nomad_muse_trainer.tokenizer import decoded_notes
from nomad_muse_trainer.conditioning import bar_span
bandc = load_vocab(fix/'vocab_band_cond.json')
NBS = Path(__file__).resolve().parents[3]/'nbs'                     # the repository's fixtures
groove = sorted((NBS/'fixtures_band').glob('*.mid'))[0]
for name, voc, model, song, bars, inst in (('single', cond, 'gru_cond_w8.onnx', NBS/'fixtures'/'bach_bwv269.mid', '5-8', None),
                                          ('band', bandc, 'gru_band_cond_w8.onnx', groove, '2-3', 'bass')):
    mid, ids_path = tmp/f'fill_{name}.mid', tmp/f'fill_{name}.txt'
    r = run('--vocab', fix/f"vocab_{'cond' if name == 'single' else 'band_cond'}.json", '--model', fix/model, '--infill', song, '--bars', bars,
            *(['--instruments', inst] if inst else []), '--out', mid, '--tokens', ids_path, '--bench', 0, '--seed', 6)
    print(r.stdout.strip())
    check(r.returncode == 0, f"infill {name}: exit 0 ({r.stderr.strip()[:200]})")
    if r.returncode: continue
    ids = np.array([int(x) for x in ids_path.read_text().split()])
    pc = voc.piece(song)
    s0, e0 = bar_span(pc, bars)
    check(voc.grammar.check(ids) == -1, f"infill {name}: {len(ids)} tokens legal for the conditioning grammar")
    n = decoded_notes(ids, voc)[0]
    real = pc.notes(voc)
    before = lambda x: sorted(map(tuple, x[x[:, 0] < s0][:, [0, 2]].tolist()))
    check(before(n) == before(real), f"infill {name}: the bars before the span are the piece's own ({len(before(n))} notes)")
    span = n[n[:, 0] >= s0]
    inside = bool(((span[:, 0] < e0) & ((span[:, 1] <= e0) | (span[:, 5] == 1))).all())
    check(len(span) > 0 and inside, f"infill {name}: {len(span)} notes of the model's, all inside bars {bars} (ticks {s0}-{e0})")
    if inst: check(all(d == 0 and 32 <= p < 40 for p, d in span[:, 4:6]), f"infill {name}: only the bass plays in the span ({sorted({(int(p), int(d)) for p, d in span[:, 4:6]})})")
    after = sorted((round(x.start, 3), x.pitch) for i in pretty_midi.PrettyMIDI(str(mid)).instruments for x in i.notes)
    check(len(after) > len(n), f"infill {name}: the file holds the model's {len(n)} notes and the piece's given ones ({len(after)} in all)")
for args, why in ((['--infill', fix/'soprano_bwv269.mid'], '--infill needs --bars'),
                  (['--bars', '2-3', '--accompany', melody], '--bars goes with --infill'),
                  (['--infill', melody, '--bars', '3-2'], 'the first comes before the last'),
                  (['--infill', melody, '--bars', 'x'], 'expected first-last'),
                  (['--infill', melody, '--bars', '28'], 'nothing after it'),
                  (['--infill', melody, '--bars', '30-31'], 'the piece has 28 bars'),
                  (['--infill', melody, '--accompany', melody, '--bars', '2'], 'two jobs')):
    r = run('--model', fix/'gru_cond_w8.onnx', '--vocab', fix/'vocab_cond.json', *args, '--out', tmp/'bad.mid')
    check(r.returncode == 2 and r.stderr.startswith('error:') and why in r.stderr and r.stderr.count('\n') == 1, f"infill mistake: {r.stderr.strip()[:150]}")
for args, why in ((['--model', fix/'gru_w8.onnx', '--vocab', vocab], 'trained without conditioning'),
                  (['--model', fix/'gru_beat_w8.onnx', '--vocab', fix/'vocab_beat.json'], 'trained without conditioning'),
                  (['--model', fix/'gru_cond_w8.onnx', '--vocab', fix/'vocab_cond.json', '--accompany', fix/'vocab.json'], 'not a MIDI file'),
                  (['--baseline', fix/'baseline.bin', '--vocab', vocab], '--accompany needs --model'),
                  (['--model', fix/'gru_cond_w8.onnx', '--vocab', fix/'vocab_cond.json', '--ahead', 5], 'expected a number in [0'),
                  (['--model', fix/'gru_cond_w8.onnx', '--vocab', fix/'vocab_cond.json', '--accompany', fix/'nowhere.mid'], 'not found')):
    extra = [] if '--accompany' in args else ['--accompany', melody]
    r = run(*args, *extra, '--out', tmp/'bad.mid')
    check(r.returncode == 2 and r.stderr.startswith('error:') and why in r.stderr and r.stderr.count('\n') == 1, f"accompany mistake: {r.stderr.strip()[:150]}")

# a multi-track model asked for bass and drums: a band piece with those two only, drums on channel 10, and the
# C++ file read back by the Python tokenizer gives the very tokens the demo sampled
band = MuseTokenizer(tracks='multi')
for name, model_args in (('band_gru', ['--model', fix/'gru_band_int8.onnx']), ('band_markov', ['--baseline', fix/'baseline_band.bin'])):
    mid, ids_path = tmp/f'{name}.mid', tmp/f'{name}.txt'
    r = run('--vocab', fix/'vocab_band.json', *model_args, '--instruments', 'bass,drums', '--out', mid, '--tokens', ids_path,
            '--length', 400, '--bench', 500, '--seed', 5)
    print(r.stdout.strip())
    check(r.returncode == 0, f"{name}: exit 0 ({r.stderr.strip()[:200]})")
    if r.returncode: continue
    ids = [int(x) for x in ids_path.read_text().split()]
    check(Grammar('duration', band, parse_instruments('bass,drums')).check(ids) == -1, f"{name}: {len(ids)} tokens legal for bass and drums")
    check(len(ids) >= 400 // 2 + 2, f"{name}: no <EOS> before half of --length ({len(ids)} tokens)")
    n = decode_notes(ids, band)
    check(len(n) and all(d or 32 <= p < 40 for p, d in n[:, 4:6]), f"{name}: instruments {sorted({(int(p), int(d)) for p, d in n[:, 4:6]})} (bass family and drums)")
    ok, ng, nw = same_notes(mid, ids, 120, band)
    check(ok, f"{name}: the MIDI file has the Python decoder's notes and instruments ({ng} vs {nw})")
    pm = pretty_midi.PrettyMIDI(str(mid))
    kit = [i for i in pm.instruments if i.is_drum]
    check(len(kit) == 1 and len(kit[0].notes) == int(n[:, 5].sum()) > 0, f"{name}: {int(n[:, 5].sum())} drum hits, read back from channel 10")
    check(list(band.encode(mid)) == ids, f"{name}: the C++ file encodes back to the sampled tokens")
r = run('--vocab', vocab, '--baseline', fix/'baseline.bin', '--instruments', 'drums', '--out', tmp/'x.mid')
check(r.returncode == 2 and r.stderr.startswith('error: --instruments needs a multi-track model'), f"--instruments on a single-stream model: {r.stderr.strip()}")
r = run('--vocab', fix/'vocab_band.json', '--baseline', fix/'baseline_band.bin', '--instruments', 'kazoo', '--out', tmp/'x.mid')
check(r.returncode == 2 and "unknown instrument 'kazoo'" in r.stderr, f"an unknown instrument: {r.stderr.strip()}")

# a musician's controls: the C++ sample is legal for the Python grammar under the same controls (and its notes keep to them)
for name, args, inst, ctl in (
        ('gru_w8', ['--vocab', vocab, '--model', fix/'gru_w8.onnx'], None, ('D dorian', 'C3-C6', 3, 2)),
        ('zoo_band', ['--vocab', zoo_model('band')/'vocab.json', '--model', zoo_model('band')/'model.onnx'], 'bass,drums', ('A minor', 'bass:E1-A2', 2, 4))):
    tok = load_vocab(zoo_model('band')/'vocab.json') if name == 'zoo_band' else MuseTokenizer()
    g = Grammar(tok.mode, tok, inst, Controls(*ctl, multi=tok.multi))
    extra, most = ['--instruments', inst] if inst else [], 0
    for seed in (4, 5, 6):                       # every sample legal; the notes checked in at least one (a band may play only its drums for 500 tokens)
        ids_path = tmp/f'{name}_ctl{seed}.txt'
        r = run(*args, *extra, '--scale', ctl[0], '--pitch-range', ctl[1], '--polyphony', ctl[2], '--density', ctl[3], '--out', tmp/f'{name}_ctl.mid',
                '--tokens', ids_path, '--length', 500, '--bench', 0, '--seed', seed)
        check(r.returncode == 0, f"{name} with controls, seed {seed}: exit 0 ({r.stderr.strip()[:200]})")
        if r.returncode: break
        ids = [int(x) for x in ids_path.read_text().split()]
        n = decode_notes(ids, tok)
        pitched = n[n[:, 5] == 0] if n.shape[1] == 6 else n
        check(g.check(ids) == -1, f"{name}, seed {seed}: {len(ids)} tokens ({len(pitched)} pitched notes) legal under Python's {g.controls}")
        most = max(most, len(pitched))
        if most > 30: break
    check(most > 30, f"{name}: a sample under the controls has {most} pitched notes (over 30)")
r = run('--vocab', vocab, '--baseline', fix/'baseline.bin', '--scale', 'H major', '--out', tmp/'x.mid')
check(r.returncode == 2 and r.stderr.strip() == "error: scale: expected a note name such as C, F# or Bb, got 'H'", f"a bad scale: {r.stderr.strip()}")
r = run('--vocab', vocab, '--baseline', fix/'baseline.bin', '--pitch-range', 'bass:E1-G2', '--out', tmp/'x.mid')
check(r.returncode == 2 and 'instruments are named only for multi-track models' in r.stderr, f"a named range on a single stream: {r.stderr.strip()}")
r = run('--vocab', vocab, '--baseline', fix/'baseline.bin', '--scale', 'C major', '--pitch-range', '61-61', '--out', tmp/'x.mid')
check(r.returncode == 2 and r.stderr.strip() == "error: Controls(scale 'C major', range '61-61') leaves no note to play", f"controls that leave nothing: {r.stderr.strip()}")

# the same seed gives the same piece
a, b = tmp/'a.txt', tmp/'b.txt'
run('--vocab', vocab, '--model', fix/'gru_int8.onnx', '--out', tmp/'a.mid', '--tokens', a, '--bench', 0, '--seed', 11)
run('--vocab', vocab, '--model', fix/'gru_int8.onnx', '--out', tmp/'b.mid', '--tokens', b, '--bench', 0, '--seed', 11)
check(a.exists() and a.read_text() == b.read_text(), "the same seed samples the same piece")

# the native step and onnxruntime sample the same piece from the same file and seed (their logits agree to ~1e-6)
for dump, name in ((fix/'gru_w8.onnx', 'gru'), (fix/'gru_band_w8.onnx', 'band'), (fix/'tx_w8.onnx', 'tx')):
    got = {}
    for rt in ('native', 'onnxruntime'):
        p = tmp/f'{name}_{rt}.txt'
        extra = ['--vocab', fix/'vocab_band.json', '--instruments', 'bass,drums'] if name == 'band' else ['--vocab', vocab]
        r = run(*extra, '--model', dump, '--runtime', rt, '--out', tmp/f'{name}_{rt}.mid', '--tokens', p, '--bench', 0, '--length', 600, '--seed', 7)
        got[rt] = p.read_text() if r.returncode == 0 and p.exists() else f'failed: {r.stderr.strip()}'
    check(got['native'] == got['onnxruntime'] and len(got['native'].split()) > 100,
          f"{name}: --runtime native and --runtime onnxruntime sample the same {len(got['native'].split())} tokens")
r = run('--vocab', vocab, '--model', fix/'gru_int8.onnx', '--runtime', 'native', '--out', tmp/'x.mid')
check(r.returncode == 2 and r.stderr.startswith('error:') and '--quantization dynamic' in r.stderr, f"--runtime native on a dynamic INT8 file: {r.stderr.strip()}")

# user mistakes: one `error:` line, exit 2, nothing written
trunc = tmp/'trunc.bin'; trunc.write_bytes((fix/'baseline.bin').read_bytes()[:5000])
trunc_onnx = tmp/'trunc.onnx'; trunc_onnx.write_bytes((fix/'gru_w8.onnx').read_bytes()[:50000])
huge_onnx, huge_json = tmp/'huge.onnx', tmp/'huge.json'                          # sparse files past limits::MODEL_BYTES and VOCAB_BYTES: refused by their size, unread
with open(huge_onnx, 'wb') as f: f.truncate((1 << 30) + 1)
with open(huge_json, 'wb') as f: f.truncate((16 << 20) + 1)
out = tmp/'never.mid'
for what, args, expect in [
    ('a model file past 1 GB, native', ['--vocab', vocab, '--model', huge_onnx, '--runtime', 'native'], 'bytes, more than the 1073741824 a model may have here'),
    ('a vocab.json past 16 MB', ['--vocab', huge_json, '--baseline', fix/'baseline.bin'], 'bytes, more than the 16777216 a vocab may have here'),
    ('missing model', ['--vocab', vocab, '--model', tmp/'nope.onnx'], 'not found'),
    ('model for another vocab', ['--vocab', vocab, '--model', fix/'gru_wrong_vocab.onnx'], 'vocab'),
    ('vocab.json of another vocab', ['--vocab', fix/'vocab_other.json', '--model', fix/'gru.onnx'], 'vocab'),
    ('truncated .bin', ['--vocab', vocab, '--baseline', trunc], 'CRC mismatch'),
    ('missing vocab', ['--vocab', tmp/'nope.json', '--baseline', fix/'baseline.bin'], 'not found'),
    ('no model', ['--vocab', vocab], '--model or --baseline'),
    ('bad number', ['--vocab', vocab, '--baseline', fix/'baseline.bin', '--top-p', 'lots'], '--top-p'),
    ('unknown flag', ['--vocab', vocab, '--baseline', fix/'baseline.bin', '--frobnicate', '1'], 'unknown argument'),
    ('bad runtime', ['--vocab', vocab, '--model', fix/'gru_w8.onnx', '--runtime', 'gpu'], '--runtime must be'),
    ('damaged model, native', ['--vocab', vocab, '--model', trunc_onnx, '--runtime', 'native'], 'not a loadable ONNX model'),
]:
    r = run(*args, '--out', out)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2 and len(lines) == 1 and lines[0].startswith('error:') and expect in lines[0] and not out.exists(),
          f"{what}: exit {r.returncode}, {lines}")

mine = tmp/'mine.onnx'; mine.write_bytes((fix/'gru_w8.onnx').read_bytes())        # --out naming the model it reads
r = run('--vocab', vocab, '--model', mine, '--out', mine)
lines = r.stderr.strip().splitlines()
check(r.returncode == 2 and len(lines) == 1 and lines[0].startswith('error: --out must name a .mid/.midi file')
      and mine.read_bytes() == (fix/'gru_w8.onnx').read_bytes(), f"--out over the model: exit {r.returncode}, {lines}")

print(f"{len(failures)} failed")
sys.exit(1 if failures else 0)
