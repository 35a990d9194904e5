"""Point the docs' links to symbols at this site's own pages.

nbdev links a backticked name to its page on the published (Quarto) site, named after the module (`tokenizer.html`);
smalldocs names pages after their notebooks (`00_tokenizer.html`). Rewrite every such link in `_docs/` to the local
page, and report a link whose anchor is missing there."""
import json, re, sys
from pathlib import Path

def main(docs='_docs', nbs='nbs', settings='settings.ini'):
    cfg = dict(l.split('=', 1) for l in Path(settings).read_text().splitlines() if '=' in l and not l.startswith('#'))
    cfg = {k.strip(): v.strip() for k, v in cfg.items()}
    host = f"https://{cfg['user']}.github.io/{cfg['repo']}/"
    page = {}
    for nb in sorted(Path(nbs).glob('*.ipynb')):
        cells = json.loads(nb.read_text())['cells']
        m = re.search(r'#\|\s*default_exp\s+(\S+)', ''.join(cells[0]['source'])) if cells else None
        if m: page[m.group(1).split('.')[-1]] = nb.stem + '.html'
    pat = re.compile(re.escape(host) + r'([\w.]+)\.html(#[\w.-]*)?')
    n, missing = 0, []
    for f in Path(docs).glob('*.html'):
        text = f.read_text()
        def local(m):
            nonlocal n
            target = page.get(m.group(1))
            if target is None: return m.group(0)
            anchor, ids = m.group(2) or '', (Path(docs)/target).read_text()
            if anchor and f'id="{anchor[1:]}"' not in ids:           # a method without its own entry: its class's
                cls = anchor.split('.')[0]
                if f'id="{cls[1:]}"' in ids: anchor = cls
                else: missing.append(f"{f.name} -> {target}{anchor}"); anchor = ''
            n += 1
            return target + anchor
        new = pat.sub(local, text)
        if new != text: f.write_text(new)
    print(f"docs: {n} links to symbols point at local pages" + (f"; anchors not found (linked to the page): {missing}" if missing else ''))
    return 0

if __name__ == '__main__': sys.exit(main(*sys.argv[1:]))
