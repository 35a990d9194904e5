"""Point the docs' links to symbols at this site's own pages.

nbdev links a backticked name to its page on the published (Quarto) site, where a notebook's page drops its number
(`04b_markov.ipynb` -> `markov.html`); smalldocs names pages after their notebooks (`04b_markov.html`). Rewrite every
such link in `_docs/` to the local page, and report a link whose anchor is missing there."""
import re, sys
from pathlib import Path
from nbdev.doclinks import _nbpath2html
sys.path.insert(0, str(Path(__file__).parent))
from render_readme import docs_url

def main(docs='_docs', nbs='nbs'):
    page = {_nbpath2html(nb).name: nb.stem + '.html' for nb in sorted(Path(nbs).glob('*.ipynb'))}
    pat = re.compile(re.escape(docs_url()) + r'([\w.-]+\.html)(#[\w.-]*)?')
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
