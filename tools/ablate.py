#!/usr/bin/env python
"""What pays at this size: train the models with one setting changed at a time (the real `muse_train` loop, the shipped
config, the same seed) and record each run's best validation bits per token and its test bits per token (whole
pieces, fp32). Appends one JSON line per run to nbs/ablation.jsonl, which 04_train shows as a table; runs already in
the file are skipped. Usage: python tools/ablate.py [--dataset artifacts/dataset.npz] [name ...]
On 2 cores each run takes 5 to 15 minutes."""
import argparse, json, math, sys, tempfile
from pathlib import Path
import torch
from nomad_muse_trainer.config import load_config
from nomad_muse_trainer.data import load_dataset
from nomad_muse_trainer.train import train, load_model, score_model

OLD_LR = {'training.learning_rate': 0.003}   # the shared peak before `learning_rate: auto`: the GRU rows below it ran at it
RUNS = {  # name: (model, config overrides, what it tests)
    'gru': ('gru', {}, 'TinyGRU, the shipped config'),
    'gru, learning rate 0.003': ('gru', OLD_LR, 'the peak both models shared before learning_rate: auto (the GRU rows below ran at it)'),
    'gru, no transposition': ('gru', {**OLD_LR, 'training.augment_transpose': 0}, 'the same without pitch transposition'),
    'gru, transpose 3': ('gru', {**OLD_LR, 'training.augment_transpose': 3}, 'transposition up to 3 semitones instead of 6'),
    'gru, dropout 0': ('gru', {**OLD_LR, 'models.gru.dropout': 0.0}, 'no dropout'),
    'gru, dropout 0.2': ('gru', {**OLD_LR, 'models.gru.dropout': 0.2}, 'more dropout'),
    'gru, half the steps': ('gru', {**OLD_LR, 'training.max_steps': 1000}, 'half the planned steps'),
    'gru, one thread': ('gru', {**OLD_LR, 'threads': 1}, 'gru, learning rate 0.003 on one thread instead of two: how far another machine may land'),
    'transformer': ('transformer', {}, 'MiniTransformer, the shipped config'),
    'transformer, no transposition': ('transformer', {'training.augment_transpose': 0}, 'the same without pitch transposition'),
    'transformer, no clock': ('transformer', {'models.transformer.time_buckets': 0}, 'attention without the time-distance bias'),
}

def _row(name, dataset, out, folder):
    "Append the row of the run whose checkpoints are in `folder` (its state from latest.pt, its test bits from best.pt)"
    kind, over, what = RUNS[name]
    ck = torch.load(folder/'latest.pt', map_location='cpu', weights_only=True)
    test = score_model(load_model(folder/'best.pt'), load_dataset(dataset)['test'])
    row = {'run': name, 'what': what, 'model': kind, 'changes': over, 'steps': ck['step'],
           'best_val_bits': round(ck['best_val'] / math.log(2), 4), 'test_bits': round(test['bits_per_token'], 4),
           'test_bits_per_note': round(test['bits_per_note'], 3), 'minutes': round(ck['seconds'] / 60, 1), 'threads': ck.get('threads')}
    with open(out, 'a') as f: f.write(json.dumps(row) + '\n')
    print(json.dumps(row), flush=True)

def run(name, dataset, out):
    "Train run `name` with its changes to the shipped config, and append its row"
    kind, over, _ = RUNS[name]
    if 'threads' in over: torch.set_num_threads(over['threads'])
    cfg = load_config('config.yaml', {k: v for k, v in over.items() if k != 'threads'})
    with tempfile.TemporaryDirectory() as d: _row(name, dataset, out, train(dataset, kind, cfg, d, quiet=True)['latest'].parent)

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
            if name not in done: _row(name, a.dataset, a.out, Path(a.artifacts)/'checkpoints'/name); done.add(name)
    for n in a.names or ([] if a.artifacts else RUNS):     # --artifacts alone records those two rows and trains nothing
        if n not in RUNS: print(f"error: no run named {n!r}", file=sys.stderr); sys.exit(2)
        if n not in done: run(n, a.dataset, a.out)
