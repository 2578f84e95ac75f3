"""Write the wall time of every chapter's committed run into the table of book/intro.md.

    python scripts/chapter_times.py [--check]

Each chapter's last cell prints ``wall time: T s with budget B on DEVICE`` (helpers.runtime.report). This
script reads those lines from the committed notebooks and replaces the table between the
``<!-- chapter-times -->`` markers of the introduction, so the times there are measured, not typed.
``--check`` only reports whether the table is up to date (the test suite runs it).
"""
import argparse
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTRO = os.path.join(ROOT, "book", "intro.md")
START, END = "<!-- chapter-times -->", "<!-- /chapter-times -->"
LINE = re.compile(r"wall time: ([0-9.]+) s with budget (\w+) on (.+)")


def chapter_times():
    rows = []
    for path in sorted(glob.glob(os.path.join(ROOT, "book", "[0-9][0-9]_*.ipynb"))):
        nb = json.load(open(path))
        title = next("".join(c["source"]).split("\n")[0].lstrip("# ") for c in nb["cells"] if c["cell_type"] == "markdown")
        text = "".join("".join(o.get("text", "")) for o in nb["cells"][-1].get("outputs", []))
        match = LINE.search(text)
        if not match:
            raise SystemExit(f"{os.path.basename(path)}: its last cell has no 'wall time' line; run it top to bottom")
        seconds, budget, device = float(match[1]), match[2], match[3].strip()
        rows.append((title, seconds, budget, device))
    return rows


def table(rows) -> str:
    lines = ["| chapter | wall time of its committed run | budget | device |", "|---|---|---|---|"]
    for title, seconds, budget, device in rows:
        when = f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"
        lines.append(f"| {title} | {when} | `{budget}` | {device} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the table in intro.md is out of date")
    args = ap.parse_args()
    text = open(INTRO).read()
    if START not in text or END not in text:
        raise SystemExit(f"{INTRO} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{table(chapter_times())}\n{END}{tail}"
    if args.check:
        if new != text:
            print("book/intro.md's chapter times are out of date: run python scripts/chapter_times.py")
            return 1
        return 0
    with open(INTRO, "w") as f:
        f.write(new)
    print(table(chapter_times()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
