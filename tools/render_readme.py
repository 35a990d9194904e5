#!/usr/bin/env python
"""Render README.md from nbs/index.ipynb and its saved outputs, without Quarto (which nbdev_readme needs).
Hidden cells and `#|` directives are dropped; inline figures are written to assets/ and linked, figures already in
nbs/media/ (tools/media.py) are linked there."""
import base64, re
from pathlib import Path
from execnb.nbio import read_nb
from nbdev.config import get_config
from nbdev.doclinks import _nbpath2html   # the page name nbdev gives a notebook on the published site

def docs_url():
    "The published docs site, from settings.ini"
    c = get_config(); return f"{c.doc_host}{c.doc_baseurl}".rstrip('/') + '/'

def write_if_changed(path, data) -> bool:
    "Write `data` (str or bytes) to `path` only when its content differs (atomically): an unchanged file keeps its mtime, so make does not rebuild what depends on it (config.yaml is a prerequisite of every artifact)"
    from nomad_muse_trainer.core import atomic_path
    path, data = Path(path), data.encode() if isinstance(data, str) else data
    if path.exists() and path.read_bytes() == data: return False
    with atomic_path(path) as tmp: Path(tmp).write_bytes(data)
    return True

def _directives(src): return [l.strip() for l in src.splitlines() if l.strip().startswith('#|')]

def render(nb_path='nbs/index.ipynb', out='README.md', assets='assets'):
    nb, parts, n_img = read_nb(nb_path), [], 0
    Path(assets).mkdir(exist_ok=True)
    written = set()
    for c in nb.cells:
        src = c.source
        d = _directives(src)
        if any(x.replace(' ', '') in ('#|hide', '#|include:false') for x in d): continue
        body = '\n'.join(l for l in src.splitlines() if not l.strip().startswith('#|')).strip()
        if c.cell_type == 'markdown':
            # links between notebooks become links to the docs pages
            body = re.sub(r'\]\((\w+\.ipynb)\)', lambda m: f"]({docs_url()}{_nbpath2html(Path(m.group(1))).name})", body)
            parts.append(re.sub(r'\]\((images/[^)]+)\)', r'](nbs/\1)', body)); continue
        if body and not any(x.replace(' ', '') == '#|echo:false' for x in d): parts.append(f"```python\n{body}\n```")
        for o in c.get('outputs', []):
            data = o.get('data', {})
            if 'image/png' in data:
                n_img += 1
                name = f"{assets}/readme_{n_img}.png"
                write_if_changed(name, base64.b64decode(data['image/png'])); written.add(Path(name))
                parts.append(f"![]({name})")
            elif (img := re.match(r'<img src="(media/[^"]+)"', ''.join(data.get('text/html', '')))):   # a figure tools/media.py moved out
                parts.append(f"![](nbs/{img.group(1)})")
            elif 'text/markdown' in data: parts.append(''.join(data['text/markdown']))
            elif 'text/plain' in data: parts.append("```\n" + ''.join(data['text/plain']).rstrip() + "\n```")
            elif o.get('output_type') == 'stream': parts.append("```\n" + ''.join(o.get('text', '')).rstrip() + "\n```")
    text = "<!-- generated from nbs/index.ipynb by `make readme`: edit the notebook, not this file -->\n\n" + '\n\n'.join(parts) + '\n'
    for old in Path(assets).glob('readme_*.png'):
        if old not in written: old.unlink()
    changed = write_if_changed(out, text)
    print(f"{'wrote' if changed else 'unchanged:'} {out} ({n_img} figures in {assets}/)")

def render_config(out='config.yaml'):
    "The shipped config.yaml, written from the package's schema (nomad_muse_trainer.config.SCHEMA)"
    from nomad_muse_trainer.config import config_yaml
    changed = write_if_changed(out, config_yaml())
    print(f"{'wrote' if changed else 'unchanged:'} {out} (from the schema)")

if __name__ == '__main__': render(); render_config()
