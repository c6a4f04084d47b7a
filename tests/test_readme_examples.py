"""The README's and the documentation site's shell examples that need no cluster, run as
written from the repository's root with `castslice` on PATH: each block marked
`<!-- example: exit N ... -->` runs line by line and must end with one of the exit codes it
names, so an example cannot rot."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = re.compile(r"<!-- example: exit ([0-9 ]+) -->\n```sh\n(.*?)```", re.DOTALL)


def examples() -> list[tuple[str, set[int]]]:
    found = []
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
    for codes, block in (match for page in pages
                         for match in EXAMPLE.findall(page.read_text())):
        for line in block.splitlines():
            if line.strip() and not line.startswith("#"):
                found.append((line, {int(c) for c in codes.split()}))
    return found


def test_the_readme_has_runnable_examples():
    assert len(examples()) >= 6


@pytest.mark.parametrize(("line", "codes"), examples(), ids=lambda x: str(x)[:60])
def test_a_readme_example_runs_as_written(line, codes):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASTSLICE_")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '')}"
    done = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode in codes, (done.returncode, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
