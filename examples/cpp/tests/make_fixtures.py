"""Reference data for the C++ tests, made with the Python package from the MIDI committed under nbs/fixtures.

Writes into OUT (the first argument):
  streams_{duration,performance}.seq   real tokenized pieces (and grammar random walks)
  masks_{duration,performance}.u8      the Python grammar's mask after every prefix of those streams
  gru.onnx gru_int8.onnx tx.onnx tx_w8.onnx (+ _step twins)  small models, trained for a few hundred steps on the fixtures
  gru_wrong_vocab.onnx                 gru.onnx with another vocab_sha256
  logits_{gru,gru_int8,gru_w8,tx,tx_w8}.f32  the Python runtime's logits, one streaming step at a time
  probe.seq                            the tokens those logits follow
  baseline.bin, markov_plain.f64, markov_rhythm.f64   a Markov model and its next-token probabilities
  vocab.json, vocab_other.json         the vocabulary (and one with another hash)
  *_bins.*                             the same for a vocabulary of other bins (16 shifts, 4 velocities, 12 durations
                                       up to 2 s: 292 ids): streams_bins.seq, masks_bins.u8, vocab_bins.json,
                                       baseline_bins.bin (format version 2), markov_bins_{plain,rhythm}.f64,
                                       gru_bins.onnx, logits_gru_bins.f32, probe_bins.seq
  *_band.*                             the same for the multi-track vocabulary (tracks: multi, 505 ids) on the groove
                                       fixtures (nbs/fixtures_band) and the orchestral ones: streams_band.seq, masks_band.u8,
                                       vocab_band.json, baseline_band.bin, markov_band_{plain,rhythm}.f64, gru_band.onnx,
                                       logits_gru_band.f32, probe_band.seq; streams_band_bd.seq and masks_band_bd.u8 are
                                       walks of the grammar allowed only the bass family (32-39) and drums; notes_band.i64 the
                                       Python decoder's notes of every band stream (stream, onset, end, pitch, velocity,
                                       program, drum)
  *_beat.*, *_band_beat.*              the same in beat time (time_unit: beat, 396 ids; a band, with its header, 579 ids):
                                       streams, masks and vocab.json of both, masks_band_beat_bd.u8 (bass and drums only),
                                       masks_band_beat_spec.u8 (the spec 'bass,drums,0': a header of one bass, piano 0, drums),
                                       notes_{beat,band_beat}.i64 (the decoder's notes in ticks), tempos_beat.f64 (stream,
                                       tick, bpm) and meters_beat.i64 (stream, tick, numerator, denominator), and the band's
                                       baseline_band_beat.bin (format version 3: over 512 ids, contexts of 10 bits an id);
                                       gru_beat.onnx and gru_beat_w8.onnx, a beat-time GRU for the LV2 host test
  controls.txt, streams_ctrl_*.seq,    grammar walks under a musician's controls (a scale, pitch ranges, polyphony and
  masks_ctrl_*.u8                      density caps; grammar.Controls) and the Python masks along them, per case: one
                                       line of controls.txt, tab-separated: name, vocabulary (duration, performance,
                                       beat, band, band_beat), scale, pitch range, polyphony, density, instruments
  *_cond.*, *_band_cond.*              conditioning (given parts as controls; 573 and 825 ids): vocab.json, streams of
                                       drawn tasks (`encode_given`) and walks with controls, until_*.i64 (the end a
                                       stream's grammar holds it to), masks (1 allowed, 2 insertable); given_*.json, the
                                       tasks of the oracle test (grid, given notes, controls, span, a fill's prefix, the
                                       encoder's stream, Python's `generate_given` of a model replaying it); the band's
                                       baseline_band_cond.bin (layout bit 3) with its probabilities; gru_cond_w8.onnx, a
                                       GRU with conditioning for the LV2 host test's accompany mode (gru_band_cond_w8.onnx: a band's, for muse_demo --infill), and the melody it
                                       plays there (melody_cond.i64: BWV 269's soprano, onset, end in ticks, pitch; soprano_bwv269.mid, the same as a file)

File formats (little-endian): .seq = u32 count, then per stream u32 length and i32 ids;
.f32/.f64/.u8 = u32 rows, u32 cols, then the values row by row.
"""
import json, shutil, struct, sys
import mido
from pathlib import Path
import numpy as np
import torch
import onnx

from nomad_muse_trainer.tokenizer import MuseTokenizer, decode_notes, decode_beat
from nomad_muse_trainer.grammar import Grammar, Controls, random_walk
from nomad_muse_trainer.vocab import parse_instruments, NOTE_ON, NOTE_OFF, TIME_SHIFT, EOS
from nomad_muse_trainer.markov import fit_markov
from nomad_muse_trainer.models import TinyGRU, MiniTransformer, clock_args
from nomad_muse_trainer.graphs import gru_to_onnx, gru_step_to_onnx, transformer_to_onnx, transformer_ring_step
from nomad_muse_trainer.export import model_metadata, step_metadata, set_metadata, quantize_int8, quantize_weights
from nomad_muse_trainer.runtime import OnnxModel
from nomad_muse_trainer.parallel import CpuShare

ROOT = Path(__file__).resolve().parents[3]
FIXTURES = ROOT/'nbs'/'fixtures'
GOOD = sorted(p for p in FIXTURES.glob('*.mid') if not p.name.startswith('bad_'))
BAND = sorted((ROOT/'nbs'/'fixtures_band').glob('*.mid')) + [FIXTURES/'orchestral_21_tracks.mid', FIXTURES/'mozart_k525_excerpt.mid']

def write_seqs(path, seqs):
    with open(path, 'wb') as f:
        f.write(struct.pack('<I', len(seqs)))
        for s in seqs: f.write(struct.pack('<I', len(s))); f.write(np.asarray(s, '<i4').tobytes())

def write_matrix(path, a, dtype):
    a = np.ascontiguousarray(a, dtype)
    with open(path, 'wb') as f: f.write(struct.pack('<II', *a.shape)); f.write(a.tobytes())

def masks_of(g, seq):
    st, rows = g.initial(), []
    for t in seq: rows.append(g.allowed(st)); g.advance(st, int(t))
    rows.append(g.allowed(st))
    return np.array(rows, np.uint8)

def train_briefly(m, seqs, steps=200, seq_len=64, seed=0):
    "A few hundred AdamW steps on the fixture pieces, so the logits are those of a model that has learned something"
    torch.manual_seed(seed); rng = np.random.default_rng(seed)
    data = np.concatenate(seqs).astype(np.int64)
    opt = torch.optim.AdamW(m.parameters(), 3e-3)
    m.train()
    for i in range(steps):
        if i % 20 == 0: torch.set_num_threads(SHARE.threads())     # two builds at once share the cores (each alone: all of them)
        starts = rng.integers(0, len(data) - seq_len - 1, 16)
        x = torch.from_numpy(np.stack([data[s:s + seq_len + 1] for s in starts]))
        out = m(x[:, :-1]); logits = out[0] if isinstance(out, tuple) else out
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
        opt.zero_grad(); loss.backward(); opt.step()
    m.eval()
    return float(loss.detach())

def export(m, tok, path, step=False, weights='fp32'):
    "`m` as muse_export writes it (fp32); `step`: its step-only graph (a transformer's: the ring step, `weights` as muse_export's INT8 twin)"
    if m.config['kind'] == 'gru': proto = gru_step_to_onnx(m) if step else gru_to_onnx(m)
    else: proto = transformer_ring_step(m, weights) if step else transformer_to_onnx(m)
    meta = model_metadata(m, tok.vocab, tok.sha256)
    set_metadata(proto, step_metadata(m, meta) if step else meta)
    onnx.save(proto, str(path))

def stream_logits(path, ids):
    "The Python runtime's logits, one token per step, as a host would run it"
    rt = OnnxModel(path)
    return np.concatenate([rt.step(np.array([[t]], np.int64))[0] for t in ids])

def markov_fixtures(out, suffix, tok, train, probe):
    "A baseline{suffix}.bin of `tok`'s layout fit on `train` (beta 1, to exercise the rhythm weights), and its plain and rhythm-weighted next-token probabilities along `probe`"
    mk = fit_markov(train, order=4, bars=np.tile([96.0, 0.0], (len(train), 1)), tok=tok)
    mk.beta = 1.0
    mk.save(out/f'baseline{suffix}.bin')
    for kind, bar in (('plain', None), ('rhythm', np.array([96.0, 0.0]))):
        write_matrix(out/f'markov{suffix}_{kind}.f64', np.array([mk.next_probs(list(probe[:i]), bar) for i in range(1, len(probe) + 1)]), np.float64)

def main(out):
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    streams = {}
    bins = MuseTokenizer('duration', 20, False, time_shift_bins=16, velocity_bins=4, duration_bins=12, max_duration_ms=2000)
    for mode, tok in (('duration', MuseTokenizer('duration')), ('performance', MuseTokenizer('performance')), ('bins', bins)):
        g = tok.grammar
        real = [tok.encode(p) for p in GOOD]
        walks = [random_walk(g, 400, seed=s) for s in range(3)]
        write_seqs(out/f'streams_{mode}.seq', real + walks)
        write_matrix(out/f'masks_{mode}.u8', np.concatenate([masks_of(g, s) for s in real[:2] + walks]), np.uint8)
        streams[mode] = real
    tok = MuseTokenizer('duration')
    tok.save_vocab(out/'vocab.json')
    other = {**tok.vocab, 'sha256': 'f' * 64}
    (out/'vocab_other.json').write_text(json.dumps(other))

    train, held = streams['duration'][1:], streams['duration'][0]   # score on a piece the models did not see
    probe = held[:160]
    write_seqs(out/'probe.seq', [probe])

    torch.manual_seed(0)
    gru = TinyGRU(); loss = train_briefly(gru, train)
    export(gru, tok, out/'gru.onnx'); quantize_int8(out/'gru.onnx', out/'gru_int8.onnx'); quantize_weights(out/'gru.onnx', out/'gru_w8.onnx')
    export(gru, tok, out/'gru_step_fp32.onnx', step=True); quantize_weights(out/'gru_step_fp32.onnx', out/'gru_w8_step.onnx')   # its step twin
    torch.manual_seed(0)
    tx = MiniTransformer(d_model=64, n_heads=2, n_layers=2, ff_dim=128, max_context=48, time_buckets=64)   # a short window, so the test slides it; with the clock
    train_briefly(tx, train, steps=150)
    with torch.no_grad(): tx.time_bias.add_(torch.randn_like(tx.time_bias))   # a clock that matters, so parity must keep each token's time
    export(tx, tok, out/'tx.onnx'); quantize_weights(out/'tx.onnx', out/'tx_w8.onnx')
    export(tx, tok, out/'tx_step.onnx', step=True); export(tx, tok, out/'tx_w8_step.onnx', step=True, weights='int8')   # their ring step twins
    for name in ('gru', 'gru_int8', 'gru_w8', 'tx', 'tx_w8'):
        write_matrix(out/f'logits_{name}.f32', stream_logits(out/f'{name}.onnx', probe), np.float32)

    wrong = onnx.load(str(out/'gru.onnx'))
    for p in wrong.metadata_props:
        if p.key == 'vocab_sha256': p.value = '0' * 64
    onnx.save(wrong, str(out/'gru_wrong_vocab.onnx'))

    markov_fixtures(out, '', tok, train, probe)
    # the same, for a vocabulary of other bins: its own vocab.json, a .bin that records its layout, a GRU of its size
    bins.save_vocab(out/'vocab_bins.json')
    btrain = streams['bins'][1:]; bprobe = streams['bins'][0][:160]
    write_seqs(out/'probe_bins.seq', [bprobe])
    markov_fixtures(out, '_bins', bins, btrain, bprobe)
    torch.manual_seed(0)
    bgru = TinyGRU(vocab_size=bins.size); train_briefly(bgru, btrain, steps=60)
    export(bgru, bins, out/'gru_bins.onnx')
    write_matrix(out/'logits_gru_bins.f32', stream_logits(out/'gru_bins.onnx', bprobe), np.float32)
    # the multi-track vocabulary: grammar masks (also with only bass and drums allowed), decoding, a .bin, a GRU
    band = MuseTokenizer(tracks='multi')
    band.save_vocab(out/'vocab_band.json')
    g = band.grammar
    real = [band.encode(p) for p in BAND]
    walks = [random_walk(g, 400, seed=s) for s in range(3)]
    write_seqs(out/'streams_band.seq', real + walks)
    write_matrix(out/'masks_band.u8', np.concatenate([masks_of(g, s) for s in real[:2] + walks]), np.uint8)
    gbd = Grammar('duration', band, parse_instruments('bass,drums'))
    bd = [random_walk(gbd, 300, seed=s) for s in range(5)]
    write_seqs(out/'streams_band_bd.seq', bd)
    write_matrix(out/'masks_band_bd.u8', np.concatenate([masks_of(gbd, s) for s in bd]), np.uint8)
    rows = [np.column_stack([np.full(len(n), i), n]) for i, s in enumerate(real + walks) for n in [decode_notes(s, band)]]
    write_matrix(out/'notes_band.i64', np.concatenate(rows), np.int64)
    ntrain = real[1:]; nprobe = real[0][:200]
    write_seqs(out/'probe_band.seq', [nprobe])
    markov_fixtures(out, '_band', band, ntrain, nprobe)
    torch.manual_seed(0)
    ngru = TinyGRU(vocab_size=band.size); train_briefly(ngru, ntrain, steps=80)
    export(ngru, band, out/'gru_band.onnx'); quantize_int8(out/'gru_band.onnx', out/'gru_band_int8.onnx')
    quantize_weights(out/'gru_band.onnx', out/'gru_band_w8.onnx')
    for name in ('gru_band', 'gru_band_w8'): write_matrix(out/f'logits_{name}.f32', stream_logits(out/f'{name}.onnx', nprobe), np.float32)
    beat_fixtures(out)
    controls_fixtures(out)
    given_fixtures(out)
    print(f"fixtures in {out}: {len(GOOD)} pieces, GRU trained to loss {loss:.2f}, probe of {len(probe)} tokens")

def beat_fixtures(out):
    "Beat time: grammar masks, decoded notes, tempi and meters, and a band's .bin of format version 3"
    for name, tok, files in (('beat', MuseTokenizer(time_unit='beat'), GOOD), ('band_beat', MuseTokenizer(time_unit='beat', tracks='multi'), BAND)):
        g = tok.grammar
        tok.save_vocab(out/f'vocab_{name}.json')
        real = [tok.encode(p) for p in files]
        walks = [random_walk(g, 400, seed=s) for s in range(3)]
        write_seqs(out/f'streams_{name}.seq', real + walks)
        write_matrix(out/f'masks_{name}.u8', np.concatenate([masks_of(g, s) for s in real[:2] + walks]), np.uint8)
        rows, tempos, meters = [], [], []
        for i, s in enumerate(real + walks):
            n, tp, mt = decode_beat(s, tok)
            n = n if n.shape[1] == 6 else np.column_stack([n, np.zeros((len(n), 2), np.int64)])
            rows.append(np.column_stack([np.full(len(n), i), n])); tempos.append(np.column_stack([np.full(len(tp), i), tp]))
            meters.append(np.column_stack([np.full(len(mt), i), mt]))
        write_matrix(out/f'notes_{name}.i64', np.concatenate(rows), np.int64)
        write_matrix(out/f'tempos_{name}.f64', np.concatenate(tempos), np.float64)
        write_matrix(out/f'meters_{name}.i64', np.concatenate(meters), np.int64)
        if name == 'beat':                                                # a beat-time GRU for the LV2 host test on the host's grid
            torch.manual_seed(0)
            bg = TinyGRU(vocab_size=tok.size); train_briefly(bg, real, steps=120)
            export(bg, tok, out/'gru_beat.onnx'); quantize_weights(out/'gru_beat.onnx', out/'gru_beat_w8.onnx')
            # a beat-time transformer whose clock jumps to the next bar at each BAR (buckets past one bar, a window of 47 tokens)
            torch.manual_seed(0)
            btx = MiniTransformer(vocab_size=tok.size, d_model=64, n_heads=2, n_layers=2, ff_dim=128, max_context=48, time_buckets=320, **clock_args(tok))
            train_briefly(btx, real[1:], steps=150)
            with torch.no_grad(): btx.time_bias.add_(torch.randn_like(btx.time_bias)); btx.bar_position.weight.add_(torch.randn_like(btx.bar_position.weight))
            export(btx, tok, out/'tx_beat.onnx'); quantize_weights(out/'tx_beat.onnx', out/'tx_beat_w8.onnx')
            export(btx, tok, out/'tx_beat_step.onnx', step=True); export(btx, tok, out/'tx_beat_w8_step.onnx', step=True, weights='int8')
            write_seqs(out/'probe_beat.seq', [real[0][:240]])
            for m in ('tx_beat', 'tx_beat_w8'): write_matrix(out/f'logits_{m}.f32', stream_logits(out/f'{m}.onnx', real[0][:240]), np.float32)
        if name == 'band_beat':
            gbd = Grammar('duration', tok, parse_instruments('bass,drums'))
            bd = [random_walk(gbd, 300, seed=s) for s in range(5)]
            write_seqs(out/f'streams_{name}_bd.seq', bd)
            write_matrix(out/f'masks_{name}_bd.u8', np.concatenate([masks_of(gbd, s) for s in bd]), np.uint8)
            gsp = Grammar('duration', tok, 'bass,drums,0')               # a spec: its header names one bass and piano 0, then the drums
            sp = [random_walk(gsp, 300, seed=s) for s in range(5)]
            write_seqs(out/f'streams_{name}_spec.seq', sp)
            write_matrix(out/f'masks_{name}_spec.u8', np.concatenate([masks_of(gsp, s) for s in sp]), np.uint8)
            probe = real[0][:200]
            write_seqs(out/f'probe_{name}.seq', [probe])
            markov_fixtures(out, f'_{name}', tok, real[1:], probe)

CONTROLS = [  # name, vocabulary, scale, pitch range, polyphony, density, instruments: every kind of stream, every control
    ('duration', 'duration', 'D dorian', '55-79', 2, 3, ''), ('performance', 'performance', 'F# minor', '40-70', 3, 0, ''),
    ('beat', 'beat', 'G blues', 'C3-C5', 1, 2, ''), ('band', 'band', 'Eb major', 'bass:E1-G2, piano:C4-C6', 4, 4, 'bass,drums,piano'),
    ('band_beat', 'band_beat', 'A minor pentatonic', 'bass:28-50', 2, 2, ''), ('band_beat_dense', 'band_beat', '', '', 0, 1, 'bass,drums'),
    ('duration_range', 'duration', '', '60-60, 64-72', 0, 0, '')]

def controls_fixtures(out):
    "Random walks of each grammar under controls and its masks along them, for the C++ Grammar::set_controls"
    toks = {'duration': MuseTokenizer('duration'), 'performance': MuseTokenizer('performance'), 'beat': MuseTokenizer(time_unit='beat'),
            'band': MuseTokenizer(tracks='multi'), 'band_beat': MuseTokenizer(time_unit='beat', tracks='multi')}
    lines = []
    for name, voc, scale, rng, poly, dens, inst in CONTROLS:
        t = toks[voc]
        g = Grammar(t.mode, t, inst or None, Controls(scale or None, rng or None, poly, dens, t.multi))
        walks = [random_walk(g, 300, seed=s) for s in range(3)]
        write_seqs(out/f'streams_ctrl_{name}.seq', walks)
        write_matrix(out/f'masks_ctrl_{name}.u8', np.concatenate([masks_of(g, w) for w in walks]), np.uint8)
        lines.append('\t'.join(map(str, (name, voc, scale, rng, poly, dens, inst))))
    (out/'controls.txt').write_text('\n'.join(lines) + '\n')

class Replay:
    "An oracle model: it predicts the next token of `ids` while what it was fed follows `ids`, and nothing in particular after (all ids equal)"
    def __init__(self, tok, ids): self.tokenizer, self.ids, self.fed, self.sampling = tok, [int(t) for t in ids], [], None
    def reset(self): self.fed = []
    def feed(self, ids):
        self.fed += [int(t) for t in ids]
        p, n = np.full(self.tokenizer.size, 1e-12), len(self.fed)
        if n < len(self.ids) and self.fed == self.ids[:n]: p[self.ids[n]] = 1.0
        return p / p.sum()

def walk_given(g, n, seed):
    "`n` legal tokens from `<BOS>` (fewer where only `<EOS>` is left), controls among them: at each step a random kind among the legal kinds (a control a sixth of the time it may come), then a random id of that kind"
    kinds = np.searchsorted([NOTE_ON, NOTE_OFF, TIME_SHIFT, g.VEL, g.DUR, g.DEND, g.PROG, g.DRUM, g.DRUM_END], np.arange(g.size), side='right')
    rng, st, out = np.random.default_rng(seed), g.initial(), []
    for _ in range(n):
        a, c = np.flatnonzero(g.allowed(st)), np.flatnonzero(g.insertable(st))
        if len(a) > 1: a = a[a != EOS]
        if len(c) and (not len(a) or rng.random() < 1/6): t = int(rng.choice(c))
        elif len(a) == 1 and a[0] == EOS: break
        else: kind = rng.choice(np.unique(kinds[a])); t = int(rng.choice(a[kinds[a] == kind]))
        g.advance(st, t); out.append(t)
    return np.array(out)

def legal_masks(g, seq):
    "Per prefix of `seq`, a byte per id: 1 where a model may sample it (`allowed`), 2 where a control may come (`insertable`)"
    st, rows = g.initial(), []
    for t in list(seq) + [None]:
        rows.append(g.allowed(st).astype(np.uint8) | 2 * g.insertable(st).astype(np.uint8))
        if t is not None: g.advance(st, int(t))
    return np.array(rows, np.uint8)

def given_fixtures(out):
    """Conditioning (given parts as controls): vocab_{cond,band_cond}.json; streams_{name}.seq (tasks as `encode_given` writes
    them, then walks with controls) with until_{name}.i64 (the span's end a stream's grammar holds it to, -1 none) and
    masks_{name}.u8 (1 allowed, 2 insertable, along the first 400 tokens of each); given_{name}.json, the tasks of the
    oracle test: the grid, the given notes and their controls, the span, a fill's prefix, the instruments, the stream the
    encoder writes and what `generate_given` with a model replaying it wrote; baseline_band_cond.bin and its probabilities"""
    from nomad_muse_trainer.conditioning import draw_task
    from nomad_muse_trainer.sampling import generate_given, _end_line
    from nomad_muse_trainer.grammar import complete
    for name, tok, files in (('cond', MuseTokenizer(time_unit='beat', conditioning=True), [p for p in GOOD if 'orchestral' not in p.name]),
                             ('band_cond', MuseTokenizer(time_unit='beat', tracks='multi', conditioning=True), BAND[:-2] + BAND[-1:])):
        tok.save_vocab(out/f'vocab_{name}.json')
        streams, until, tasks = [], [], []
        for i, path in enumerate(files):
            piece = tok.piece(path)
            for j, (kind, beats) in enumerate([('accompany', 0), ('fill', 2), ('accompany', 1), ('fill', 0), ('fill', 4)]):
                t = draw_task(piece, np.random.default_rng(100 * i + j), kind, tok.resolution, ahead=beats)
                ids = None if t is None else tok.encode_given(piece, **t)
                if ids is None: continue
                span = t['span']
                lines = piece.grid[0]
                if span is None: s, e = 0, _end_line(piece, int(piece.q[t['given'], 4].max()), tok.resolution)
                else: s, e = span
                streams.append(ids); until.append(-1 if span is None else e)
                inst = None
                if j == 2 and tok.multi:                                  # who the model plays: the parts not given, named
                    mine = sorted({int(x) for x in piece.q[~t['given'], 6]})
                    inst = ','.join('drums' if x < 0 else str(x) for x in mine)
                model = Replay(tok, ids)
                got = generate_given(model, piece, t['given'], t['ahead'], span, seed=7, instruments=inst)
                n_notes = int(np.flatnonzero(np.isin(ids, np.r_[np.arange(tok.duration_base, tok.duration_end), np.arange(tok.drum_base, tok.drum_end)]))[-1]) + 1
                assert list(got[:n_notes]) == list(ids[:n_notes]), (path.name, kind, beats)   # the loop writes what the encoder writes, up to its last note
                cut = int(np.flatnonzero(ids == tok.bar)[int(np.searchsorted(lines, s))]) if span is not None else 1
                c = piece.controls(tok, t['given'], t['ahead'], span)
                gn = piece.q[~piece.mine(t['given'], span)]
                tasks.append(dict(file=path.name, kind=kind, ahead=int(t['ahead']), start=int(s), end=int(e), fill=span is not None,
                                  lines=piece.grid[0].tolist(), meters=piece.grid[1].tolist(), tempo_ticks=piece.grid[2].tolist(), tempo_bins=piece.grid[3].tolist(),
                                  given=[[int(a), int(b), int(x < 0)] for a, b, x in zip(gn[:, 0], gn[:, 2], gn[:, 6])],
                                  given_end=int(piece.q[t['given'], 4].max()) if t['given'].any() else -1,
                                  controls=c.tolist(), prefix=[int(x) for x in ids[1:cut]], instruments=inst or '',
                                  given_any=bool(t['given'].any()), given_insts=sorted({int(x) for x in piece.q[t['given'], 6]}),
                                  expected=[int(x) for x in ids], notes_end=n_notes, python=[int(x) for x in got]))
        g = tok.grammar
        for s in range(4):                                               # walks with controls, the last two held to an end
            gw = Grammar(tok.mode, tok); e = -1
            if s >= 2: e = 3 * 48 + 7 * s; gw.until, gw.ring = e, s == 3
            streams.append(walk_given(gw, 400, seed=s)); until.append(e if s < 3 else -2 - e)   # -2 - e: held to e, notes may ring
        write_seqs(out/f'streams_{name}.seq', streams)
        write_matrix(out/f'until_{name}.i64', np.array(until, np.int64)[:, None], np.int64)
        rows = []
        for ids, u in zip(streams, until):
            gm = Grammar(tok.mode, tok)
            if u != -1: gm.until, gm.ring = (u, False) if u >= 0 else (-2 - u, True)
            rows.append(legal_masks(gm, ids[:400]))
        write_matrix(out/f'masks_{name}.u8', np.concatenate(rows), np.uint8)
        (out/f'given_{name}.json').write_text(json.dumps(tasks))
        whole = []                                                        # each file given whole, as muse_demo --accompany reads one
        for path in files:
            piece = tok.piece(path)
            every = np.ones(len(piece.q), bool)
            whole.append(dict(path=str(path), lines=piece.grid[0].tolist(), meters=piece.grid[1].tolist(), tempo_ticks=piece.grid[2].tolist(),
                              tempo_bins=piece.grid[3].tolist(), controls=piece.controls(tok, every, 0).tolist(), last_end=int(piece.q[:, 4].max()),
                              encoded=[int(x) for x in tok.encode(path)]))
        (out/f'given_files_{name}.json').write_text(json.dumps(whole))
        if name == 'cond':                                                # a GRU with conditioning for the LV2 host's accompany mode
            torch.manual_seed(0)
            cg = TinyGRU(vocab_size=tok.size); train_briefly(cg, streams[:len(tasks)], steps=150)
            export(cg, tok, out/'gru_cond.onnx'); quantize_weights(out/'gru_cond.onnx', out/'gru_cond_w8.onnx')
            from nomad_muse_trainer.conditioning import parts_named          # the melody the host plays into it: BWV 269's soprano
            pc = tok.piece(FIXTURES/'bach_bwv269.mid')
            top = pc.q[pc.rows(parts_named(pc, 'top'))]
            write_matrix(out/'melody_cond.i64', np.column_stack([top[:, 0], top[:, 4], top[:, 2]]).astype(np.int64), np.int64)
            mf = mido.MidiFile(FIXTURES/'bach_bwv269.mid')                # the same soprano as a file: its conductor track and its own
            mf.tracks = [t for t in mf.tracks if not any(m.type == 'note_on' for m in t) or t.name == 'Soprano']
            mf.save(out/'soprano_bwv269.mid')
        if name == 'band_cond':                                           # a band GRU with conditioning for muse_demo --infill --instruments
            torch.manual_seed(0)
            bg = TinyGRU(vocab_size=tok.size); train_briefly(bg, streams[:len(tasks)], steps=80)
            export(bg, tok, out/'gru_band_cond.onnx'); quantize_weights(out/'gru_band_cond.onnx', out/'gru_band_cond_w8.onnx')
        if name == 'band_cond':                                           # a .bin with conditioning (bit 3 of its layout), fit on the tasks
            write_seqs(out/f'probe_{name}.seq', [streams[0][:200]])
            markov_fixtures(out, f'_{name}', tok, streams[1:len(tasks)], streams[0][:200])

SHARE = CpuShare()

if __name__ == '__main__':
    with SHARE: main(sys.argv[1] if len(sys.argv) > 1 else 'fixtures')
