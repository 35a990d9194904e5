#!/usr/bin/env python
"""Run every notebook under nbs/ in a fresh kernel (as nbdev_test does), in parallel, and end with
one line `N passed, N failed` that CI reads. Usage: python tools/nbtest.py [--flags slow] [--workers 2] [names...]"""
import argparse, sys, time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

def _run(path, flags):
    from nbdev.config import get_config
    from nbdev.test import test_nb
    cfg = get_config()
    skip = [f for f in cfg.get('tst_flags', '').split() if f not in flags]
    t0 = time.time()
    ok, _ = test_nb(path, skip_flags=skip, force_flags=flags, showerr=True, basepath=cfg.config_path)
    return path, ok, time.time() - t0

def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument('names', nargs='*', help='notebook names (default: all)')
    p.add_argument('--flags', default='', help='test flags to run, e.g. slow')
    p.add_argument('--workers', type=int, default=2)
    a = p.parse_args()
    nbs = sorted(Path('nbs').glob('*.ipynb'))
    if a.names: nbs = [n for n in nbs if any(x in n.name for x in a.names)]
    flags = a.flags.split()
    passed, failed = [], []
    with ProcessPoolExecutor(a.workers) as ex:
        futs = [ex.submit(_run, str(n), flags) for n in nbs]
        for f in as_completed(futs):
            path, ok, secs = f.result()
            (passed if ok else failed).append(path)
            print(f"{'PASS' if ok else 'FAIL'} {Path(path).name} ({secs:.1f} s)", flush=True)
    if failed: print("failed notebooks: " + ' '.join(Path(f).name for f in sorted(failed)))
    print(f"{len(passed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)

if __name__ == '__main__': main()
