#!/usr/bin/env python
"""What pays at this size: train the models with one setting changed at a time (the real `muse_train` loop, the shipped
config, the same seed) and record each run's best validation bits per token and its test bits per token (whole
pieces, fp32). Appends one JSON line per run to nbs/ablation.jsonl, which 04_train shows as a table; runs already in
the file are skipped. Usage: python tools/ablate.py [--dataset artifacts/dataset.npz] [name ...]
On 2 cores each run takes 5 to 15 minutes."""
import argparse, json, math, sys, tempfile, time
from pathlib import Path
import torch
from nomad_muse_trainer.config import load_config
from nomad_muse_trainer.data import load_dataset
from nomad_muse_trainer.train import train, load_model, score_model

RUNS = {  # name: (model, config overrides, what it tests)
    'gru': ('gru', {}, 'TinyGRU, the shipped config'),
    'gru, no transposition': ('gru', {'training.augment_transpose': 0}, 'the same without pitch transposition'),
    'gru, transpose 3': ('gru', {'training.augment_transpose': 3}, 'transposition up to 3 semitones instead of 6'),
    'gru, dropout 0': ('gru', {'models.gru.dropout': 0.0}, 'no dropout'),
    'gru, dropout 0.2': ('gru', {'models.gru.dropout': 0.2}, 'more dropout'),
    'gru, half the steps': ('gru', {'training.max_steps': 0.5}, 'half the planned steps'),
    'gru, one thread': ('gru', {'threads': 1}, 'the shipped config on one thread instead of two: how far another machine may land'),
    'transformer': ('transformer', {}, 'MiniTransformer, the shipped config'),
    'transformer, no transposition': ('transformer', {'training.augment_transpose': 0}, 'the same without pitch transposition'),
    'transformer, no clock': ('transformer', {'models.transformer.time_buckets': 0}, 'attention without the time-distance bias'),
}

def record(name, dataset, out, folder):
    "A row for a default run that `make all` already trained (the same config and seed: the same model)"
    ck = torch.load(folder/'best.pt', map_location='cpu', weights_only=True)
    test = score_model(load_model(folder/'best.pt'), load_dataset(dataset)['test'])
    kind, over, what = RUNS[name]
    row = {'run': name, 'what': what, 'model': kind, 'changes': over, 'steps': ck['total_steps'],
           'best_val_bits': round(ck['best_val'] / math.log(2), 4), 'test_bits': round(test['bits_per_token'], 4),
           'test_bits_per_note': round(test['bits_per_note'], 3), 'minutes': round(ck['seconds'] / 60, 1), 'threads': ck.get('threads')}
    with open(out, 'a') as f: f.write(json.dumps(row) + '\n')
    print(json.dumps(row), flush=True)

def run(name, dataset, out):
    kind, over, what = RUNS[name]
    cfg = load_config('config.yaml')
    for k, v in over.items():
        if k == 'threads': torch.set_num_threads(v); continue
        sect, *rest = k.split('.'); node = cfg[sect]
        for r in rest[:-1]: node = node[r]
        node[rest[-1]] = int(node[rest[-1]] * v) if k == 'training.max_steps' else v
    t0 = time.time()
    with tempfile.TemporaryDirectory() as d:
        r = train(dataset, kind, cfg, d, quiet=True)
        test = score_model(load_model(r['best']), load_dataset(dataset)['test'])
    row = {'run': name, 'what': what, 'model': kind, 'changes': over, 'steps': r['state']['step'],
           'best_val_bits': round(r['state']['best_val'] / math.log(2), 4), 'test_bits': round(test['bits_per_token'], 4),
           'test_bits_per_note': round(test['bits_per_note'], 3), 'minutes': round((time.time() - t0) / 60, 1),
           'threads': torch.get_num_threads()}
    with open(out, 'a') as f: f.write(json.dumps(row) + '\n')
    print(json.dumps(row), flush=True)

if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('names', nargs='*', help=f"runs (default: all): {', '.join(RUNS)}")
    ap.add_argument('--dataset', default='artifacts/dataset.npz')
    ap.add_argument('--out', default='nbs/ablation.jsonl')
    ap.add_argument('--artifacts', help="record the 'gru' and 'transformer' rows from the checkpoints `make all` wrote here instead of training them again")
    a = ap.parse_args()
    done = {json.loads(l)['run'] for l in open(a.out)} if Path(a.out).exists() else set()
    if a.artifacts:
        for name in ('gru', 'transformer'):
            if name not in done: record(name, a.dataset, a.out, Path(a.artifacts)/'checkpoints'/name); done.add(name)
    for n in a.names or RUNS:
        if n not in RUNS: sys.exit(f"error: no run named {n!r}")
        if n not in done: run(n, a.dataset, a.out)
