#!/usr/bin/env python
"""Keep audio and large figures out of the notebooks: files beside the docs, linked by path.

A notebook cell that plays a sample (`listen`) or draws a piano roll saves its output inline (base64), and that is what
made `nbs/` 5.4 MB, 86% of it media, a notebook's diff unreadable and the repository grow with every rerun. This moves
each audio player's data and each PNG over `--min_kb` to `nbs/media/<notebook>/<cell id>-<n>.<ext>` and leaves the
output pointing at it (`<audio src="media/...">`, `<img src="media/...">`), so the docs site (`make docs` copies
`nbs/media/`) still plays and shows them. A file's name follows its cell, so a rerun rewrites the same files; files no
output points at any more are removed. Idempotent: `make sync-check` runs it and fails when it changes anything.

Usage: python tools/media.py [--check] [--min_kb 24] [NOTEBOOK ...]   (default: every notebook in nbs/)"""
import argparse, base64, json, re, sys
from pathlib import Path

NBS = Path(__file__).resolve().parent.parent/'nbs'
MEDIA = 'media'
_AUDIO = re.compile(r'src="data:audio/(mpeg|wav|ogg);base64,([A-Za-z0-9+/=]+)"')
_EXT = {'mpeg': 'mp3', 'wav': 'wav', 'ogg': 'ogg'}

def _text(v): return ''.join(v) if isinstance(v, list) else v

def _write(path:Path, data:bytes):
    if path.is_file() and path.read_bytes() == data: return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f'.{path.name}.tmp'); tmp.write_bytes(data); tmp.replace(path)

def externalize(nb_path:Path, min_kb:float=24, check:bool=False)->tuple:
    "Move `nb_path`'s inline audio and large PNGs to files under nbs/media/; (changed, files it links)"
    text = nb_path.read_text(encoding='utf-8')
    nb, changed = json.loads(text), False
    folder = Path(MEDIA)/nb_path.stem
    for cell in nb['cells']:
        for k, out in enumerate(cell.get('outputs', [])):
            data = out.get('data', {})
            name = f"{cell.get('id', 'cell')}-{k}"
            if 'text/html' in data:
                html, n = _text(data['text/html']), 0
                def audio(m):
                    nonlocal n
                    rel = folder/f"{name}{'-' + str(n) if n else ''}.{_EXT[m.group(1)]}"; n += 1
                    if not check: _write(NBS/rel, base64.b64decode(m.group(2)))
                    return f'src="{rel.as_posix()}"'
                new = _AUDIO.sub(audio, html)
                new = re.sub(r'src="(media/[^"/]+/[^"]+)"', lambda m: f'src="{_home(m.group(1), folder, check)}"', new)
                if new != html: data['text/html'], changed = new.splitlines(True), True
            png = data.get('image/png')
            if png and len(_text(png)) * 3 / 4 > min_kb * 1024:
                rel = folder/f"{name}.png"
                if not check: _write(NBS/rel, base64.b64decode(_text(png)))
                del data['image/png']
                data['text/html'] = [f'<img src="{rel.as_posix()}" alt="{_alt(data)}" style="max-width:100%"/>']
                changed = True
    if changed and not check:
        nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    links = {NBS/p for cell in nb['cells'] for out in cell.get('outputs', [])
             for p in re.findall(r'src="(media/[^"]+)"', _text(out.get('data', {}).get('text/html', '')))}
    return changed, links

def _home(rel:str, folder:Path, check:bool)->str:
    "A linked file kept under its notebook's own folder (moved there when the notebook was renamed or split)"
    src, dst = NBS/rel, NBS/folder/Path(rel).name
    if Path(rel).parent == folder or not src.is_file(): return rel
    if not check:
        dst.parent.mkdir(parents=True, exist_ok=True); src.replace(dst)
    return (folder/Path(rel).name).as_posix()

def _alt(data)->str:
    return _text(data.get('text/plain', 'figure')).replace('"', "'").replace('<', '').replace('>', '').strip()

def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('notebooks', nargs='*'); p.add_argument('--min_kb', type=float, default=24)
    p.add_argument('--check', action='store_true', help='change nothing; exit 1 when a notebook still holds inline media')
    a = p.parse_args(argv)
    nbs = [Path(x) for x in a.notebooks] or sorted(NBS.glob('*.ipynb'))
    linked, dirty = set(), []
    for f in nbs:
        changed, links = externalize(f, a.min_kb, a.check)
        linked |= links
        if changed: dirty.append(f.name)
    if a.check:
        if dirty: print(f"error: inline media in {', '.join(dirty)}: run python tools/media.py", file=sys.stderr); return 1
        return 0
    if not a.notebooks:                                      # a whole run: drop files that nothing links any more
        for f in sorted((NBS/MEDIA).rglob('*')) if (NBS/MEDIA).is_dir() else []:
            if f.is_file() and f not in linked: f.unlink()
        for d in sorted((NBS/MEDIA).glob('*'), reverse=True) if (NBS/MEDIA).is_dir() else []:
            if d.is_dir() and not any(d.iterdir()): d.rmdir()
    if dirty: print(f"media: moved audio and figures of {', '.join(dirty)}")
    return 0

if __name__ == '__main__': sys.exit(main())
