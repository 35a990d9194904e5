#!/usr/bin/env python
"""Write the docs sidebar from the notebooks' file order (which is dependency order, tools/check_order.py).

Every notebook in nbs/ is listed once, in file order, under the section its number starts: the stages first, the guides
after them. The sidebar is written into `nbs/_quarto.yml` (what nbdev, Quarto and `make docs` read) and the copy at the
repository's root, between its `contents:` and `metadata-files:`. `make sync-check` runs it and fails when it changes
anything, so a new notebook cannot be left out. Usage: python tools/sidebar.py"""
import re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SECTIONS = [   # (first two digits of a notebook's number, section)
    ('00', 'Foundations'), ('01', 'Music as tokens'), ('02', 'Music as tokens'), ('03', 'Data'),
    ('04', 'Baseline and sampling'), ('05', 'Models and training'), ('06', 'Models and training'),
    ('07', 'Shipping a model'), ('08', 'Shipping a model'), ('09', 'Shipping a model'), ('10', 'Shipping a model'),
    ('11', 'Guides'), ('12', 'Guides'), ('13', 'Guides'), ('14', 'Guides'), ('15', 'Guides'),
]

def sidebar()->str:
    "The `sidebar:` block of _quarto.yml"
    names = {k: v for k, v in SECTIONS}
    lines = ['  sidebar:', '    style: floating', '    contents:', '      - index.ipynb']
    last = None
    for nb in sorted((ROOT/'nbs').glob('[0-9]*.ipynb')):
        sec = names.get(nb.name[:2])
        if sec is None: sys.exit(f"error: {nb.name}: no sidebar section for notebooks numbered {nb.name[:2]} (add one to tools/sidebar.py)")
        if sec != last: lines += [f'      - section: "{sec}"', '        contents:']; last = sec
        lines.append(f'          - {nb.name}')
    return '\n'.join(lines) + '\n'

def write(path:Path)->bool:
    text = path.read_text()
    new = re.sub(r'  sidebar:\n(?:    .*\n|\n)*?(?=\S|\Z)', lambda m: sidebar() + '\n', text, count=1)
    new = new.replace('metadata-files: [nbdev.yml, sidebar.yml]', 'metadata-files: [nbdev.yml]')
    if new == text: return False
    path.write_text(new); return True

if __name__ == '__main__':
    changed = [p for p in (ROOT/'nbs'/'_quarto.yml', ROOT/'_quarto.yml') if p.exists() and write(p)]
    if changed: print(f"sidebar: wrote {', '.join(str(p.relative_to(ROOT)) for p in changed)}")
