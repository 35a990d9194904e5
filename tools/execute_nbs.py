#!/usr/bin/env python
"""Execute notebooks in place (every cell but `#| eval: false`, slow cells included) so their saved outputs,
which the docs show, are fresh, with their audio and large figures moved to nbs/media/ (tools/media.py). Then run `nbdev_clean`. Usage: python tools/execute_nbs.py nbs/01b_tokenizer.ipynb ..."""
import os, sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
sys.path.insert(0, str(Path(__file__).parent))
from media import externalize

def _skip(cell): return '#| eval: false' in cell.get('source', '') or '#|eval: false' in cell.get('source', '')

def execute(path):
    path = Path(path).resolve()
    nb = read_nb(path)
    cwd = os.getcwd(); os.chdir(path.parent)
    try:
        sh = CaptureShell()
        sh.run_all(nb, exc_stop=True, preproc=_skip)
    finally: os.chdir(cwd)
    write_nb(nb, path)
    externalize(path)
    print(f"executed {path.name}")

if __name__ == '__main__':
    for p in sys.argv[1:]: execute(p)
