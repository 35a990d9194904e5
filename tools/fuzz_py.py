#!/usr/bin/env python
"""The Python readers under atheris (libFuzzer for Python): MIDI (load_midi, then the tokenizer in four layouts), the
Markov .bin (load_markov), datasets (load_dataset) and config files (load_config). A reader may refuse an input with one
clear error (UserError, which MidiError is); anything else that escapes is a crash, kept in
examples/cpp/fuzz/regressions/py_<reader>/.
  python tools/fuzz_py.py midi --seconds 60 [--fixtures build/cpp/fixtures]   fuzz one reader (make fuzz runs all four)
  python tools/fuzz_py.py --replay [--fixtures DIR]                             every seed and regression, each reader"""
import argparse, contextlib, io, os, random, sys, tempfile, warnings, zipfile, zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))                           # this checkout's package, whatever else is installed
KEEP = ROOT/'examples'/'cpp'/'fuzz'/'regressions'
READERS = ('midi', 'markov', 'dataset', 'config')
SCRATCH = Path(tempfile.mkdtemp(prefix='muse_fuzz_py_'))

def seeds(reader, fixtures:Path)->list:
    if reader == 'midi': return sorted((ROOT/'nbs'/'fixtures').glob('*.mid'))[:12] + sorted((ROOT/'nbs'/'fixtures_band').glob('*.mid'))[:4]
    if reader == 'markov': return sorted((ROOT/'examples'/'cpp'/'fuzz'/'seeds'/'markov').glob('*.bin'))
    if reader == 'dataset': return sorted((ROOT/'examples'/'cpp'/'fuzz'/'seeds'/'dataset').glob('*.npz'))
    return sorted((ROOT/'configs').glob('*.yaml')) + [ROOT/'config.yaml']

def reader_fn(reader):
    "The function that reads one input's bytes the way a user's file is read"
    from nomad_muse_trainer.core import UserError
    if reader == 'midi':
        from nomad_muse_trainer.midi import load_midi
        from nomad_muse_trainer.tokenizer import MuseTokenizer
        toks = [MuseTokenizer(), MuseTokenizer('performance'), MuseTokenizer(time_unit='beat'), MuseTokenizer(time_unit='beat', tracks='multi')]
        def read(data):
            m = load_midi(bytes(data))
            for t in toks: t.encode(m)
    else:
        from nomad_muse_trainer.markov import load_markov
        from nomad_muse_trainer.data import load_dataset
        from nomad_muse_trainer.config import load_config
        fn, suffix = {'markov': (load_markov, '.bin'), 'dataset': (load_dataset, '.npz'), 'config': (load_config, '.yaml')}[reader]
        path = SCRATCH/f'input{suffix}'
        def read(data):
            path.write_bytes(bytes(data))
            out = fn(path)
            if reader == 'markov': out.next_probs([1])
    def one(data):
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                warnings.simplefilter('ignore')
                read(data)
        except UserError: pass                         # refused with one clear message: what a reader may do
    return one

def replay(fixtures:Path)->int:
    n = 0
    for r in READERS:
        one = reader_fn(r)
        for f in seeds(r, fixtures) + sorted(p for p in (KEEP/f'py_{r}').glob('*') if p.name != '.gitkeep'):
            one(f.read_bytes()); n += 1
    print(f"{n} inputs through the Python readers ({', '.join(READERS)}) without a crash")
    return 0

def fuzz(reader, seconds:int, fixtures:Path, corpus:Path=None):
    import atheris
    corpus = corpus or ROOT/'build'/'fuzz'/'corpus'/f'py_{reader}'; corpus.mkdir(parents=True, exist_ok=True)
    for s in seeds(reader, fixtures): (corpus/s.name).write_bytes(s.read_bytes())
    (KEEP/f'py_{reader}').mkdir(parents=True, exist_ok=True)
    with atheris.instrument_imports(include=['nomad_muse_trainer']):   # coverage of this package's code (not torch's or numpy's)
        one = reader_fn(reader)
    def crc_kept(data, max_size, seed):                 # a .bin ends with the CRC32 of the rest: rewrite it, so mutations reach the tables
        data = bytearray(atheris.Mutate(data, max_size))
        if len(data) >= 8: data[-4:] = zlib.crc32(bytes(data[:-4])).to_bytes(4, 'little')
        return bytes(data)
    def zip_kept(data, max_size, seed):                 # a dataset.npz is a zip (a CRC and sizes per member, a directory): mutate
        rng = random.Random(seed)                       # one member's bytes, its name, or which members there are, and write the
        if rng.random() < 0.25: return atheris.Mutate(data, max_size)   # zip again, so mutations reach the .npy headers and arrays
        try:                                            # (a quarter of the time the zip itself is damaged, byte by byte)
            with zipfile.ZipFile(io.BytesIO(bytes(data))) as z: members = [[i.filename, z.read(i)] for i in z.infolist()]
        except Exception: return atheris.Mutate(data, max_size)
        if not members: return atheris.Mutate(data, max_size)
        k, op = rng.randrange(len(members)), rng.random()
        if op < 0.6: members[k][1] = atheris.Mutate(members[k][1][:128], 192) + members[k][1][128:]   # the .npy header and the first entries
        elif op < 0.8: members[k][1] = atheris.Mutate(members[k][1], len(members[k][1]) + 64)          # anywhere in the member
        elif op < 0.9: members[k][0] = atheris.Mutate(members[k][0].encode(), 64).decode('utf-8', 'replace').split('\0')[0] or 'x'   # (zip names end at a NUL)
        elif op < 0.95: del members[k]
        else: members.append(list(members[k]))
        out = io.BytesIO()
        with warnings.catch_warnings(), zipfile.ZipFile(out, 'w', zipfile.ZIP_STORED) as z:
            warnings.simplefilter('ignore')             # (a duplicate name)
            for name, body in members: z.writestr(name, body)
        return out.getvalue() if len(out.getvalue()) <= max_size else atheris.Mutate(data, max_size)
    mutator = {'markov': crc_kept, 'dataset': zip_kept}.get(reader)
    if os.environ.get('MUSE_FUZZ_BYTES_ONLY'): mutator = None         # (to measure against: libFuzzer's mutator alone)
    atheris.Setup([sys.argv[0], str(corpus), f'-max_total_time={seconds}', '-print_final_stats=1', '-timeout=20', '-rss_limit_mb=3072',
                   f'-artifact_prefix={KEEP}/py_{reader}/', '-close_fd_mask=1'], one, **({'custom_mutator': mutator} if mutator else {}))
    atheris.Fuzz()

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('reader', nargs='?', choices=READERS)
    ap.add_argument('--seconds', type=int, default=60)
    ap.add_argument('--replay', action='store_true', help='replay the seeds and regressions of every reader, then stop')
    ap.add_argument('--fixtures', default=str(ROOT/'build'/'cpp'/'fixtures'))
    ap.add_argument('--corpus', help='the corpus folder (default build/fuzz/corpus/py_READER)')
    a = ap.parse_args()
    if a.replay: sys.exit(replay(Path(a.fixtures)))
    if not a.reader: print("error: name a reader (midi, markov, dataset, config) or --replay", file=sys.stderr); sys.exit(2)
    fuzz(a.reader, a.seconds, Path(a.fixtures), Path(a.corpus) if a.corpus else None)
