"""The README is a front page and the rest a documentation site (mkdocs.yml): the README's
links resolve, the reference covers every command, setting, annotation and chart value (it is
generated: scripts/render-docs), and the built home page shows its pictures in Chromium.
`make docs` builds the site strictly (a broken link or anchor fails) before pytest runs."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from castslice.cli import parser
from castslice.functions import annotations
from castslice.settings.config import Config

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SITE = ROOT / ".local" / "site"
LINK = re.compile(r"\]\(([^)#\s]+)(?:#([^)\s]+))?\)")


def slug(heading: str) -> str:
    """The anchor Python-Markdown's toc gives a heading."""
    text = re.sub(r"[^\w\s-]", "", heading.strip().lower())
    return re.sub(r"[-\s]+", "-", text).strip("-")


def test_the_readme_is_a_front_page():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250


def test_the_readmes_links_and_anchors_resolve():
    for target, anchor in LINK.findall((ROOT / "README.md").read_text()):
        if target.startswith("http"):
            continue
        path = ROOT / target
        assert path.exists(), target
        if anchor:
            headings = re.findall(r"^#+ (.+)$", path.read_text(), re.M)
            assert anchor in {slug(h) for h in headings}, f"{target}#{anchor}"


def test_the_reference_is_current():
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "render-docs"), "--check"],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, "run scripts/render-docs and commit docs/"


def test_every_command_setting_and_annotation_has_its_reference_entry():
    commands = (DOCS / "reference" / "commands.md").read_text()
    choices = next(a for a in parser()._actions if a.choices is not None).choices
    assert {f"## castslice {name}" for name in choices} <= set(commands.splitlines())
    settings = (DOCS / "reference" / "configuration.md").read_text()
    assert all(f"| `{name}` |" in settings for name in Config().as_env())
    written = (DOCS / "reference" / "annotations.md").read_text()
    names = [v for k, v in vars(annotations).items() if k.isupper() and "/" in str(v)]
    assert names and all(f"| `{name}` |" in written for name in names)


def test_every_page_is_in_the_sites_navigation():
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md")}
    assert {page for page in pages if page not in nav} == set()


def test_the_built_home_page_shows_both_pictures_in_chromium(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium is not installed (.ci/run installs it: apt-get install chromium)")
    if not (SITE / "index.html").exists():
        pytest.skip("the site is not built: make docs (make test builds it first)")
    home = (SITE / "index.html").read_text()
    assert 'src="admission-flow.svg"' in home and 'src="loop.svg"' in home
    probe = SITE / "castslice-image-probe.html"
    probe.write_text("<html><body><script>const names=['admission-flow.svg','loop.svg'];"
                     "let done=0;names.forEach(n=>{const i=new Image();i.onload=()=>{"
                     "document.body.insertAdjacentHTML('beforeend',`<p>${n} ${i.naturalWidth}"
                     "x${i.naturalHeight}</p>`)};i.onerror=()=>document.body.insertAdjacentHTML"
                     "('beforeend',`<p>${n} broken</p>`);i.src=n;});</script></body></html>")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--allow-file-access-from-files", f"--user-data-dir={tmp_path / 'profile'}"]
    try:
        dom = subprocess.run([chromium, *flags, "--virtual-time-budget=5000", "--dump-dom",
                              probe.as_uri()], capture_output=True, text=True, timeout=60,
                             check=True).stdout
    finally:
        probe.unlink()
    shot = Path("test-artifacts") / "docs-home.png"
    shot.parent.mkdir(exist_ok=True)
    subprocess.run([chromium, *flags, f"--screenshot={shot.resolve()}", "--window-size=1200,900",
                    (SITE / "index.html").as_uri()], capture_output=True, timeout=60, check=True)
    sizes = dict(re.findall(r"<p>(\S+\.svg) (\S+)</p>", dom))
    assert set(sizes) == {"admission-flow.svg", "loop.svg"}, dom[-500:]
    assert all(re.fullmatch(r"[1-9]\d+x[1-9]\d+", size) for size in sizes.values()), sizes
    assert shot.stat().st_size > 20_000
