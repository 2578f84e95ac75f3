"""Consistency of the book itself: toc <-> files, setup cells, Colab metadata, outputs, repository URL."""
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
REPO_URL = CONFIG["repository"]["url"]
NOTEBOOKS = sorted(p for p in BOOK.rglob("*.ipynb") if "_build" not in p.parts and ".ipynb_checkpoints" not in p.parts)


def toc_files():
    files = [TOC["root"]]

    def walk(entries):
        for e in entries:
            if "file" in e:
                files.append(e["file"])
            walk(e.get("sections", []))

    for part in TOC.get("parts", []):
        walk(part["chapters"])
    walk(TOC.get("chapters", []))
    return files


def resolve(entry):
    matches = [BOOK / f"{entry}{ext}" for ext in (".md", ".ipynb") if (BOOK / f"{entry}{ext}").exists()]
    return matches


def test_book_toc_is_the_top_level_toc():
    link = BOOK / "_toc.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "_toc.yml").resolve()


def test_every_toc_entry_exists_once():
    for entry in toc_files():
        assert len(resolve(entry)) == 1, f"toc entry {entry!r} has no (or two) files in book/"


def test_every_notebook_is_in_the_toc():
    listed = {str(resolve(e)[0].relative_to(BOOK)) for e in toc_files() if resolve(e)}
    for nb in NOTEBOOKS:
        assert str(nb.relative_to(BOOK)) in listed, f"{nb.name} is not in _toc.yml"


def test_there_are_chapters():
    assert len(NOTEBOOKS) >= 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    setup = "".join(code[0]["source"])
    assert "runtime.setup(" in setup, "the first code cell must be the setup cell"
    assert f"git+{REPO_URL}@main" in setup, "the setup cell must install helpers from the book's repository"
    assert nb["metadata"].get("accelerator") == "GPU", "Colab metadata must ask for a GPU"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    counts = [c.get("execution_count") for c in code]
    assert counts == list(range(1, len(code) + 1)), "outputs must come from one top-to-bottom run"
    assert code[0]["outputs"] and code[-1]["outputs"], "committed outputs are missing"
    assert "runtime.report()" in "".join(code[-1]["source"]), "the last cell reports wall time and budget"
    scaffolding = [line for c in code for line in "".join(c["source"]).splitlines() if line.lstrip().startswith("# NBVAL")]
    assert not scaffolding, f"use nbval cell tags (nbval-ignore-output, ...), not comment lines: {scaffolding[:2]}"
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"committed outputs contain an error: {errors[0]['ename'] if errors else ''}"
    budgets = re.findall(r"budget: (\w+)", "".join("".join(o.get("text", "")) for o in code[0]["outputs"]))
    assert budgets and budgets[0] in ("cpu", "full"), "committed outputs must come from a cpu or full run"


def test_repository_url_is_the_same_everywhere():
    pattern = re.compile(r"https://github\.com/[\w.-]+/[\w.-]+")
    files = [ROOT / "README.md", ROOT / "pyproject.toml", *NOTEBOOKS, *BOOK.rglob("*.md")]
    found = {}
    for f in files:
        for url in pattern.findall(f.read_text()):
            found.setdefault(url.removesuffix(".git"), []).append(f.name)
    assert set(found) <= {REPO_URL}, f"other repository URLs than {REPO_URL}: {found}"
    assert REPO_URL in found, "the README or the notebooks should name the repository"


def test_config_builds_as_documented():
    assert CONFIG["execute"]["execute_notebooks"] == "off"  # the build shows the committed cpu/full outputs
    assert CONFIG["repository"]["branch"] == "main"
    assert "book_html" in CONFIG["sphinx"]["local_extensions"]  # MathJax from the build, not a CDN
    assert "mathjax_path" not in CONFIG["sphinx"]["config"]
    assert (BOOK / CONFIG["bibtex_bibfiles"][0]).exists()


def test_intro_chapter_times_match_the_committed_runs():
    """The introduction's table of chapter times is written from the notebooks' last cells, not typed."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "chapter_times.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
