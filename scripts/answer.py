"""Write the book's answer to its title, as the conclusion page printed it, into book/intro.md.

    python scripts/answer.py [--check]

book/conclusion.ipynb gathers the data results of chapters 7, 10 and 11 and prints one line per result
(the cell that defines ``span``). This script copies those printed lines, as a list with a link to the
chapter that measures each, between the ``<!-- answer -->`` markers of the introduction, so the numbers
there are measured, not typed. ``--check`` only reports whether the introduction is up to date (the test
suite runs it).
"""
import argparse
import json
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTRO = os.path.join(ROOT, "book", "intro.md")
PAGE = os.path.join(ROOT, "book", "conclusion.ipynb")
START, END = "<!-- answer -->", "<!-- /answer -->"
CHAPTERS = {"7": "07_data", "10": "10_challenges", "11": "11_diffusion"}


def printed_lines() -> list[str]:
    """The lines the conclusion's summary cell printed."""
    cells = json.load(open(PAGE))["cells"]
    cell = next(c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).startswith("def span("))
    text = "".join("".join(o.get("text", "")) for o in cell["outputs"] if o.get("output_type") == "stream")
    return [line for line in text.splitlines() if line.strip()]


def block(lines) -> str:
    """The printed lines as a Markdown list, each linked to its chapter and the conclusion page."""
    items = []
    for line in lines:
        chapter = re.search(r"\(chapter (\d+)\)", line)
        link = f" ({{doc}}`chapter {chapter[1]} <{CHAPTERS[chapter[1]]}>`)" if chapter else ""
        text = re.sub(r" ?[(]chapter \d+[)]", "", line)
        items.append(f"- {text}{link}")
    return "\n".join(items + ["", "All four side by side, with error bars: {doc}`conclusion`."])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the introduction is out of date")
    args = ap.parse_args()
    text = open(INTRO).read()
    if START not in text or END not in text:
        raise SystemExit(f"{INTRO} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    answer = block(printed_lines())
    page = f"{head}{START}\n{answer}\n{END}{tail}"
    if args.check:
        if page != text:
            print("book/intro.md's answer is out of date: run python scripts/answer.py")
            return 1
        return 0
    with open(INTRO, "w") as f:
        f.write(page)
    print(answer)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
