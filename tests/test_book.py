"""Consistency of the book itself: toc <-> files, setup cells, Colab metadata, outputs, repository URL."""
import ast
import json
import re
import shutil
import subprocess
import sys
import tempfile
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


def test_there_are_the_chapters_the_toc_lists():
    chapters = [p for p in NOTEBOOKS if re.match(r"\d\d_", p.name)]
    assert [int(p.name[:2]) for p in chapters] == list(range(1, 12)), [p.name for p in chapters]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    setup = "".join(code[0]["source"])
    assert "runtime.setup(" in setup, "the first code cell must be the setup cell"
    chapter = path.name[:2] if path.name[0].isdigit() else path.stem
    assert f'runtime.setup(seed=0, chapter="{chapter}")' in setup, "the setup cell prints its chapter's T4 estimate"
    assert f"git clone -q --depth 1 --branch main {REPO_URL} /content/genai-book" in setup and \
        "%pip install -q -e /content/genai-book" in setup and 'sys.path.insert(0, "/content/genai-book")' in setup, \
        "on Colab the setup cell must fetch the book's repository (helpers and its stored results) and install it"
    assert 'drive.mount("/content/drive")' in setup and 'os.environ["GENAI_CACHE"]' in setup, \
        "the setup cell must say how to keep the run cache on Google Drive (Colab)"
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


def test_the_provenance_page_matches_the_stored_runs():
    """#41: where stored results were trained (machine, budget, dates, commits) is on one back-matter page,
    generated from book/stored_runs; the chapters print none of it."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "provenance.py"), "--check"], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr[-2000:]


def test_intro_chapter_times_match_the_committed_runs():
    """The introduction's table of chapter times is written from the notebooks' last cells, not typed."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "chapter_times.py"), "--check"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_intro_answer_is_the_one_the_conclusion_printed():
    """The introduction's answer to the title is copied from the conclusion page's printed lines, not typed."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "answer.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------------------------ the printed listings
import ast
import builtins
import importlib
import inspect
import textwrap

MODULES = {"tf", "np", "keras", "layers", "math", "warnings", "data"}  # modules a listing may use by name


def _text(cell) -> str:
    out = "".join(cell["source"])
    for o in cell.get("outputs", []):
        out += "".join(o.get("text", ""))
    return out


def listings():
    """(notebook, cell index, dotted name) of every ``inspect.getsource(...)`` a chapter prints."""
    for path in NOTEBOOKS:
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                for name in re.findall(r"getsource\(([\w.]+)\)", "".join(cell["source"])):
                    yield path, i, name


def _resolve(dotted):
    module, *attrs = dotted.split(".")
    obj = importlib.import_module(f"helpers.{module}")
    for a in attrs:
        obj = getattr(obj, a)
    return obj


def _names_used(source: str) -> set[str]:
    """Names a listing uses but does not define: free variables, and attributes of self and super()."""
    tree = ast.parse(textwrap.dedent(source))
    bound, used = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            bound.add(node.name)
        if isinstance(node, ast.arg):
            bound.add(node.arg)
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store) else used).add(node.id)
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        if isinstance(node, ast.Attribute) and isinstance(node.value, (ast.Name, ast.Call)):
            base = node.value
            if (isinstance(base, ast.Name) and base.id == "self") or (
                    isinstance(base, ast.Call) and getattr(base.func, "id", None) == "super"):
                used.add(node.attr)
    return used - bound - set(dir(builtins)) - MODULES - {"self"}


LISTINGS = list(listings())


def test_the_chapters_print_listings():
    assert len(LISTINGS) >= 15 and {p.name[:2] for p, _, _ in LISTINGS} >= {"03", "04", "05", "07", "08", "09"}


@pytest.mark.parametrize("path, index, name", LISTINGS, ids=[f"{p.name[:2]}:{n}" for p, _, n in LISTINGS])
def test_every_listing_is_one_idea_the_reader_can_follow(path, index, name):
    """At most 40 lines; the committed output is the code as it is now; every name it uses is defined in
    it, is Python's, or appears in this chapter before the listing or in an earlier chapter."""
    source = inspect.getsource(_resolve(name))
    lines = source.rstrip("\n").splitlines()
    assert len(lines) <= 40, f"{name} is {len(lines)} lines; a listing shows one idea in at most 40"
    cells = json.loads(path.read_text())["cells"]
    shown = "".join("".join(o.get("text", "")) for o in cells[index].get("outputs", []))
    assert source.strip() in shown, f"{path.name} prints an older {name}: re-run the chapter"
    known = "".join(_text(c) for c in cells[:index])
    known += "".join(_text(c) for p in NOTEBOOKS if p.name[:2] < path.name[:2]
                     for c in json.loads(p.read_text())["cells"])
    unknown = sorted(n for n in _names_used(source) if not re.search(rf"\b{re.escape(n)}\b", known))
    assert not unknown, f"{name} uses names the reader has not met: {unknown}"


# ------------------------------------------------------------------ docstrings name the chapter that uses them
def _introduced():
    for module in ("helpers.data", "helpers.models", "helpers.training", "helpers.variants", "helpers.metrics",
                   "helpers.plotting", "helpers.runtime", "helpers.callbacks", "helpers.diffusion", "helpers.privacy",
                   "lab.runs", "lab.families", "lab.grids", "lab.designs", "lab.settings", "lab.fitting"):
        mod = importlib.import_module(module)
        for name, obj in vars(mod).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            doc = inspect.getdoc(obj) or ""
            found = re.search(r"Introduced in (chapter (\d+)|the introduction)", doc)
            if found:
                yield module, name, int(found.group(2)) if found.group(2) else 0


INTRODUCED = list(_introduced())


def test_docstrings_say_where_they_are_introduced():
    assert len(INTRODUCED) >= 40


@pytest.mark.parametrize("module, name, chapter", INTRODUCED, ids=[f"{m}.{n}" for m, n, _ in INTRODUCED])
def test_the_chapter_a_docstring_names_uses_it(module, name, chapter):
    if chapter == 0:
        text = (BOOK / "intro.md").read_text()
    else:
        path = next(p for p in NOTEBOOKS if p.name.startswith(f"{chapter:02d}_"))
        text = "".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])
    assert re.search(rf"\b{name}\b", text), f"{module}.{name} says chapter {chapter}, which never mentions it"


def test_every_printed_listing_lives_in_helpers():
    """What a chapter prints is lesson code: it comes from the teaching package, not from lab."""
    for path, _, name in LISTINGS:
        assert _resolve(name).__module__.startswith("helpers."), f"{path.name} prints {name} from outside helpers"


def test_helpers_never_imports_lab():
    for path in (ROOT / "helpers").glob("*.py"):
        assert not re.search(r"^\s*(from|import)\s+lab\b", path.read_text(), re.M), f"{path.name} imports lab"



def test_helpers_stays_small_plain_and_imports_at_the_top():
    """#40's figures: helpers at most 2,500 lines as ruff formats it (so that joining lines does not count), no
    function over 40 lines; in both packages at most 10 function-local imports, each with its reason."""
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(ROOT / "helpers", Path(tmp) / "helpers", ignore=shutil.ignore_patterns("assets", "__pycache__"))
        subprocess.run([sys.executable, "-m", "ruff", "format", "-q", "--line-length", "110", tmp], check=True)
        lines = sum(len(f.read_text().splitlines()) for f in (Path(tmp) / "helpers").glob("*.py"))
    assert lines <= 2500, f"helpers is {lines} lines formatted"
    local = []
    for package in ("helpers", "lab"):
        for path in (ROOT / package).glob("*.py"):
            lines_of = path.read_text().splitlines()
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                size = node.end_lineno - node.lineno + 1
                assert package == "lab" or size <= 40, f"{path.name}: {node.name} is {size} lines"
                for inner in node.body:  # statements of the function itself (nested defs are walked on their own)
                    for imp in ast.walk(inner):
                        if isinstance(imp, (ast.Import, ast.ImportFrom)):
                            local.append(f"{path.name}:{imp.lineno}")
                            above = lines_of[max(0, node.lineno - 3) : imp.lineno]
                            why = any("#" in line and "import" in line.lower() for line in above)
                            assert why, f"{path.name}: {node.name} imports at line {imp.lineno} without saying why"
    assert len(local) <= 10, f"{len(local)} function-local imports: {local}"


# ------------------------------------------------------------------- numbers in the prose were printed
NUMBER = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)(?:\s?(%)|\s?([x×])(?!\w))?(?!\w|\.\d)")
REFERENCE = re.compile(r"(§|\bsections?\s|\bchapters?\s)$", re.I)
LISTED = re.compile(r"(\band\s|\bto\s|,\s)$")  # "sections 3.1, 4.1 and 4.3.1"


def _prose(text: str) -> str:
    """Markdown without formulas, code, links and URLs (numbers there are not claims about a run)."""
    for pattern in (r"\$\$.*?\$\$", r"\$[^$\n]*\$", r"`[^`]*`", r"\]\([^)]*\)", r"https?://\S+"):
        text = re.sub(pattern, " ", text, flags=re.S)
    return text


def _printed(cells) -> list[float]:
    """Every number in the code (settings) and in the outputs (results) of a notebook."""
    texts = []
    for c in cells:
        if c["cell_type"] == "code":
            texts.append("".join(c["source"]))
            texts += ["".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", "")) for o in c.get("outputs", [])]
    return [float(m.replace(",", "")) for t in texts for m in re.findall(r"\d+(?:,\d{3})*(?:\.\d+)?", t)]


def _shown(value: float, decimals: int, printed, percent: bool) -> bool:
    targets = [(value, decimals)] + ([(value / 100, decimals + 2)] if percent else [])
    return any(abs(abs(q) - v) <= 0.5 * 10 ** -d + 1e-12 for q in printed for v, d in targets)


def unprinted_numbers(cells, headings=frozenset()) -> list[str]:
    """Decimals, percentages and "Nx" in the markdown that no code cell set or printed. Exempt: section
    numbers (after "§", "section", "chapter", ... or equal to a heading's number), and any sentence that
    cites its source (published figures)."""
    printed, found = _printed(cells), []
    for c in cells:
        if c["cell_type"] != "markdown":
            continue
        for para in re.split(r"\n\s*\n|\n(?=\s*[|*-] )", _prose("".join(c["source"]))):
            for sentence in re.split(r"(?<=[.!?])\s+(?=[A-Z*(])", para):
                if "{cite" in sentence or re.match(r"\s*#", sentence):
                    continue
                for m in NUMBER.finditer(sentence):
                    num, percent, times = m.groups()
                    before = sentence[:m.start()][-12:]
                    listed = LISTED.search(before) and re.search(r"§|section", sentence, re.I)
                    if not (percent or times) and ("." not in num or num in headings
                                                   or REFERENCE.search(before) or listed):
                        continue
                    decimals = len(num.split(".")[1]) if "." in num else 0
                    if not _shown(float(num), decimals, printed, bool(percent)):
                        found.append(f"{m.group(0).strip()!r} in: {sentence.strip()[:160]}")
    return found


HEADINGS = frozenset(m for p in NOTEBOOKS for c in json.loads(p.read_text())["cells"]
                     for m in re.findall(r"^#+\s+(\d+\.\d+)", "".join(c["source"]), re.M))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_number_in_the_prose_was_printed_by_the_notebook(path):
    found = unprinted_numbers(json.loads(path.read_text())["cells"], HEADINGS)
    assert not found, "numbers typed in the prose that the notebook did not print (print them, or cite " \
                      "their source):\n" + "\n".join(found)


def test_the_prose_number_check_finds_a_typed_result():
    def nb(prose, printed):
        return [{"cell_type": "code", "source": ["x = 1"], "outputs": [{"text": [printed]}]},
                {"cell_type": "markdown", "source": [prose]}]
    assert unprinted_numbers(nb("The FID fell to 33.8 on 12% of the data.", "fid 33.79, share 0.121")) == []
    found = unprinted_numbers(nb("The FID fell to 31.2, a 2.5x gain, for 40% of it.", "fid 33.79"))
    assert [f.split("'")[1] for f in found] == ["31.2", "2.5x", "40%"]
    assert unprinted_numbers(nb("The paper reports 14.50 {cite:p}`x`. See section 6.5 and §9.4.", "")) == []


def test_every_chapter_has_a_full_budget_estimate_within_30_minutes_on_a_t4():
    """#23: the full budget fits 30 minutes per chapter on a Colab T4. No GPU has measured it yet, so the
    estimate of scripts/estimate_t4.py (measured CPU cost per step, the networks' FLOPs, stated T4
    assumptions) is what the setup cells print; its pessimistic end must be within 30 minutes."""
    estimates = json.loads((ROOT / "helpers" / "assets" / "t4_estimate.json").read_text())
    for path in NOTEBOOKS:
        chapter = path.name[:2] if path.name[0].isdigit() else path.stem
        assert chapter in estimates, f"{path.name}: run scripts/estimate_t4.py --chapters {chapter}"
        lo, hi = estimates[chapter]["t4_minutes"]
        assert 0 < lo <= hi <= 30, f"{path.name}: the full budget is estimated at {lo}-{hi} min on a T4"
