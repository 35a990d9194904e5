#!/usr/bin/env python
"""Run every notebook under nbs/ with `nbdev_test` (each in its own process, two at a time), print each one's
result and time, and end with one line `N passed, N failed` that CI reads.
Usage: python tools/nbtest.py [--flags slow] [--workers 2] [name ...]"""
import argparse, os, subprocess, sys, time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

def _run(path, flags):
    t0 = time.time()
    cmd = ['nbdev_test', '--path', str(path)] + (['--flags', flags] if flags else [])
    p = subprocess.run(cmd, capture_output=True, text=True, env=_ENV)
    return path, p.returncode == 0, time.time() - t0, (p.stdout + p.stderr).strip()

_ENV = dict(os.environ)

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument('names', nargs='*', help='notebook names or parts of names (default: all)')
    ap.add_argument('--flags', default='', help='test flags to run as well, e.g. slow')
    ap.add_argument('--workers', type=int, default=2)
    a = ap.parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count() or 1
    for k in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'):            # notebooks side by side share the cores: no oversubscription
        _ENV.setdefault(k, str(max(1, cores // a.workers)))
    nbs = sorted(Path('nbs').glob('*.ipynb'))
    if a.names: nbs = [n for n in nbs if any(x in n.name for x in a.names)]
    passed, failed = [], []
    with ThreadPoolExecutor(a.workers) as ex:
        for f in as_completed([ex.submit(_run, n, a.flags) for n in nbs]):
            path, ok, secs, out = f.result()
            (passed if ok else failed).append(path.name)
            print(f"{'PASS' if ok else 'FAIL'} {path.name} ({secs:.1f} s)", flush=True)
            if not ok: print(out, flush=True)
    if failed: print("failed notebooks: " + ' '.join(sorted(failed)))
    print(f"{len(passed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
