"""The built book as a reader sees it: every page opened in headless Chromium with the network off.

Checks that MathJax (served from the build itself) typeset every formula, that no diagram is left as
source text, that every figure image is there and decodes, and that the browser logged no error (a
script or font that only a CDN could serve fails here), and that no code block or display equation is wider
than the page at a 1400-pixel window. Chromium comes from Debian's `chromium` package;
`.ci/run` installs it, and elsewhere the test is skipped with a message saying how to get it.
"""
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
BROWSER = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
OFFLINE = ["--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND"]  # no request leaves the machine

pytestmark = pytest.mark.skipif(
    BROWSER is None, reason="headless Chromium not found: `apt-get install chromium` (Debian) to check the rendered book")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    built = os.environ.get("GENAI_BUILT_BOOK")  # .ci/run builds the book once, before the tests, and says where
    if built and (Path(built) / "index.html").exists():
        return Path(built)
    out = tmp_path_factory.mktemp("book")
    r = subprocess.run(["jupyter-book", "build", str(ROOT / "book"), "--path-output", str(out)],
                       capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    html = out / "_build" / "html"
    assert (html / "_static" / "mathjax" / "tex-mml-chtml.js").exists(), "MathJax is not served from the build"
    return html


# Run in the page once MathJax has typeset it: every code block (code cells and code in the text; outputs such
# as wide tables may scroll) and display equation wider than its box (it would hide behind a horizontal
# scrollbar) is listed in the body's data-overflow attribute.
OVERFLOW = """<script>
window.addEventListener("load", () => {
  const ready = window.MathJax && MathJax.startup ? MathJax.startup.promise : Promise.resolve();
  ready.then(() => setTimeout(() => {
    const wide = [];
    const code = "div.cell_input div.highlight pre, div.highlight-python pre, div.highlight-ipython3 pre";
    document.querySelectorAll(code + ", div.highlight-bash pre, div.math, mjx-container[display='true']").forEach((el) => {
      if (el.scrollWidth > el.clientWidth + 1) wide.push((el.textContent || "").trim().slice(0, 70));
    });
    document.body.setAttribute("data-overflow", JSON.stringify(wide));
  }, 500));
});
</script>"""


def render(page: Path):
    """The page's DOM after its scripts ran (at a 1400-pixel window, with the overflow check), and the
    browser's log, with the network off."""
    checked = page.with_name(f"_checked_{page.name}")
    checked.write_text(page.read_text().replace("</body>", OVERFLOW + "</body>"))
    r = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", *OFFLINE, "--enable-logging=stderr",
                        "--v=0", "--window-size=1400,2000", "--virtual-time-budget=20000", "--dump-dom",
                        checked.as_uri()], capture_output=True, text=True, timeout=120)
    return r.stdout, r.stderr


def pages():
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]] + [c["file"] for part in toc["parts"] for c in part["chapters"]]
    return [f"{f}.html" for f in files]


@pytest.mark.parametrize("name", pages())
def test_page_renders_offline(site, name):
    dom, log = render(site / name)
    soup = BeautifulSoup(dom, "html.parser")
    assert soup.find("main") is not None, f"{name}: the page did not render"
    wide = json.loads(soup.body.get("data-overflow", "null") or "null")
    assert wide is not None, f"{name}: the overflow check did not run"
    assert not wide, f"{name}: {len(wide)} code blocks or equations wider than the page, e.g. {wide[:3]}"
    math = soup.select(".math")
    untypeset = [m.get_text()[:60] for m in math if m.find("mjx-container") is None]
    assert not untypeset, f"{name}: {len(untypeset)} formulas left as raw LaTeX, e.g. {untypeset[:2]}"
    for tag in soup(["script", "style", "pre", "code", "textarea"]):
        tag.decompose()
    text = soup.get_text(" ")
    raw = re.findall(r"\\\(|\\\[|\$\$", text)
    assert not raw, f"{name}: raw math delimiters in the rendered text: {raw[:3]}"
    assert not soup.select(".mermaid"), f"{name}: a diagram is left as source text"
    for img in soup.find_all("img"):
        src = img.get("src", "")
        if src.startswith("data:") or not src:
            continue
        path = (site / name).parent / src
        assert path.exists(), f"{name}: image {src} is missing"
        with Image.open(path) as im:
            assert im.size[0] > 0 and im.size[1] > 0, f"{name}: image {src} is empty"
    errors = [line for line in log.splitlines() if "CONSOLE" in line and ("Error" in line or "Uncaught" in line)
              or "Failed to load resource" in line]
    assert not errors, f"{name}: browser errors: {errors[:3]}"


# The lab out of the reading path (#41): what a reader sees of the outputs (hidden ones excluded) holds no
# provenance commit, no folder of the machine that ran it, no Keras epoch log and no per-run progress line.
NOISE = {
    "commit id": re.compile(r"\bcommits? `?[0-9a-f]{7,40}\b|\b[0-9a-f]{7}\+changes\b"),
    "machine path": re.compile(r"(?<![\w.])/(?:tmp|home|root|work|Users)/"),
    "epoch log": re.compile(r"^Epoch \d+/\d+|━━|\d+/\d+ - \d+m?s - ", re.M),
    "per-run progress line": re.compile(r"^\[\d+/\d+\] ", re.M),
}
# Result figures each page showed when this check was written: a page may gain figures, not lose them.
FIGURES = {"01_concepts": 5, "02_gan_math": 3, "03_gan_mnist": 6, "04_vae_math": 4, "05_vae_mnist": 8,
           "06_evaluation": 5, "07_data": 12, "08_instability": 8, "09_applications": 7, "10_challenges": 4,
           "11_diffusion": 7, "tools": 2, "conclusion": 1}


def visible_outputs(html: str):
    """The cell outputs of a built page that a reader sees without opening anything."""
    soup = BeautifulSoup(html, "html.parser")
    for hidden in soup.select("details, .tag_hide-output .cell_output, .tag_remove-output .cell_output"):
        hidden.decompose()
    return soup.select(".cell_output")


def test_the_noise_patterns_find_what_they_are_for():
    assert NOISE["commit id"].search("trained on CPU, cpu budget, commit 72b0c46+changes, 2026-12-03")
    assert NOISE["machine path"].search("runs cached in /tmp/tmp.l5TGIqjeeq")
    assert not NOISE["machine path"].search("stored_runs/dcgan-97d7b1ef4845 and /content/genai-book")
    assert NOISE["epoch log"].search("Epoch 1/18\n100/100 - 14s - 138ms/step - d_loss: 0.69")
    assert NOISE["per-run progress line"].search("[3/6] dcgan the recipe seed 0: stored, FID 149.5")
    assert not any(p.search("60 runs: 0 trained now, 60 loaded from stored results") for p in NOISE.values())


# Pages whose committed outputs predate the one-line progress and summary (re-executing them is #41's work):
# strict, so that each fails here once it is clean, and must then leave this list.
NOT_YET_CLEAN: set[str] = set()  # every page has been re-executed clean


def _page(name):
    if name[:-5] in NOT_YET_CLEAN:
        return pytest.param(name, marks=pytest.mark.xfail(strict=True, reason="outputs not re-executed yet (#41)"))
    return name


@pytest.mark.parametrize("name", [_page(p) for p in pages() if p[:-5] in FIGURES])
def test_a_reader_sees_the_lesson_not_the_lab(site, name):
    outputs = visible_outputs((site / name).read_text())
    text = "\n".join(o.get_text("\n") for o in outputs)
    found = {what: p.findall(text)[:2] for what, p in NOISE.items() if p.search(text)}
    assert not found, f"{name}: {found}"
    figures = sum(len(o.find_all("img")) for o in outputs)
    assert figures >= FIGURES[name[:-5]], f"{name}: {figures} result figures, {FIGURES[name[:-5]]} before"
