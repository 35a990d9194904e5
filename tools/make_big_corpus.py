"""Make a large corpus of distinct real MIDI files for scale tests: every file of a source folder, transposed and
time-stretched, with a fixed seed.

    python tools/make_big_corpus.py data/midi /tmp/big 20000

Each variant is a real piece moved by -6..+6 semitones and played 0.7x..1.4x as fast (its tempo map scaled), so its
tokens differ from every other variant's (the pairs (shift, stretch) are drawn without repetition per source). The
files are written with symusic; nothing is written into the source folder.
"""
import sys, random
from pathlib import Path
import symusic

def main(src, out, n, seed=0):
    files = sorted(p for p in Path(src).rglob('*') if p.suffix.lower() in ('.mid', '.midi'))
    out = Path(out); out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    combos = [(k, s) for k in range(-6, 7) for s in range(70, 141, 5)]       # 13 shifts x 15 stretches
    per = -(-n // len(files))
    if per > len(combos): raise SystemExit(f"error: {len(files)} files give at most {len(files) * len(combos)} variants")
    written = 0
    for f in files:
        score = symusic.Score(str(f))
        for k, s in rng.sample(combos, per):
            if written == n: break
            v = score.shift_pitch(k)
            for t in v.tempos: t.mspq = max(1, int(round(t.mspq * 100 / s)))
            v.dump_midi(str(out/f"{f.stem}_t{k:+d}_x{s}.mid")); written += 1
    print(f"{written} files from {len(files)} sources -> {out}")

if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 0)
