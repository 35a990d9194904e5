#!/usr/bin/env python
"""Check that the notebooks read in order: file order is dependency order.

- A notebook imports (in export cells, example and test cells, and scripts it runs) only modules exported by itself or
  by a notebook before it; the front page (index.ipynb) may import any.
- A module of the package imports (at the top or inside a function) only modules of its own or an earlier notebook,
  and no private name (`_x`) of another module.
- Every module has a notebook, and every console script in settings.ini names a function its module defines.

Usage: python tools/check_order.py [--graph]   (--graph prints each module, its notebook and what it imports)
Exit 1 with one line per violation; `make sync-check` runs it."""
import ast, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS, PKG = ROOT/'nbs', ROOT/'nomad_muse_trainer'
_EXP = re.compile(r'^#\|\s*(?:default_exp|export|exports)\s+([\w.]+)', re.M)
_USE = re.compile(r'(?:from|import)\s+nomad_muse_trainer\.(\w+)')

def notebooks()->list:
    "(notebook, modules it exports, the source of its code cells), in file order; index.ipynb last"
    out = []
    for p in sorted(NBS.glob('*.ipynb'), key=lambda p: (p.stem == 'index', p.name)):
        cells = [''.join(c['source']) for c in json.loads(p.read_text())['cells'] if c['cell_type'] == 'code']
        mods = [m.split('.')[0] for s in cells for m in _EXP.findall(s)]
        out.append((p, list(dict.fromkeys(mods)), cells))
    return out

def module_imports(path:Path)->list:
    "(module, names) for every import of the package in `path`, function-level ones included"
    out = []
    for n in ast.walk(ast.parse(path.read_text())):
        if isinstance(n, ast.ImportFrom) and n.level == 1 and n.module: out.append((n.module.split('.')[0], [a.name for a in n.names]))
        elif isinstance(n, ast.ImportFrom) and (n.module or '').startswith('nomad_muse_trainer.'): out.append((n.module.split('.')[1], [a.name for a in n.names]))
        elif isinstance(n, ast.Import):
            out += [(a.name.split('.')[1], []) for a in n.names if a.name.startswith('nomad_muse_trainer.')]
    return out

def check(nbs:list, graph:bool=False)->list:
    errors = []
    rank = {}
    for i, (p, mods, _) in enumerate(nbs):
        for m in mods: rank.setdefault(m, (i, p.name))
    for i, (p, mods, cells) in enumerate(nbs):
        if p.stem == 'index': continue
        for m in sorted({m for s in cells for m in _USE.findall(s)}):
            if m not in rank: errors.append(f"{p.name} imports nomad_muse_trainer.{m}, which no notebook exports")
            elif rank[m][0] > i: errors.append(f"{p.name} imports {m}, exported later by {rank[m][1]}")
    for f in sorted(PKG.glob('*.py'), key=lambda f: rank.get(f.stem, (len(nbs), ''))):
        m = f.stem
        if m.startswith('_'): continue
        if m not in rank: errors.append(f"nomad_muse_trainer/{f.name} has no notebook"); continue
        uses = module_imports(f)
        for dep, names in uses:
            if dep not in rank: errors.append(f"{m} imports {dep}, which no notebook exports")
            elif rank[dep][0] > rank[m][0]: errors.append(f"{m} ({rank[m][1]}) imports {dep}, exported later by {rank[dep][1]}")
            private = [n for n in names if n.startswith('_')]
            if private and dep != m: errors.append(f"{m} imports private names of {dep}: {', '.join(private)}")
        if graph:
            lines = len(f.read_text().splitlines())
            print(f"{rank[m][1]:22} {m:10} {lines:4} lines  imports: {' '.join(sorted({d for d, _ in uses})) or '-'}")
    errors += console_scripts()
    return errors

def console_scripts()->list:
    "A line for each console script of settings.ini whose `module:function` the package does not define"
    import configparser
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT/'settings.ini')
    out = []
    for line in cfg['DEFAULT'].get('console_scripts', '').split():
        name, target = line.split('=', 1)
        mod, fn = target.split(':')
        f = PKG/(mod.split('.', 1)[1].replace('.', '/') + '.py')
        defined = f.is_file() and any(isinstance(n, (ast.FunctionDef, ast.ClassDef)) and n.name == fn for n in ast.parse(f.read_text()).body)
        if not defined: out.append(f"console script {name} names {target}, which the package does not define")
    return out

if __name__ == '__main__':
    nbs = notebooks()
    errors = check(nbs, '--graph' in sys.argv)
    for e in errors: print(f"error: {e}", file=sys.stderr)
    if errors: sys.exit(1)
    print(f"order: {len(nbs)} notebooks in dependency order, no private name crosses a module")
