"""Write the chapter times of the committed runs, with and without bfloat16, into book/intro.md.

    python scripts/chapter_times.py [--from-git REV] [--check]

Each chapter's last cell prints ``wall time: T s with budget B on DEVICE`` (helpers.runtime.report); DEVICE
ends in ``(bfloat16 yes)`` or ``(bfloat16 no)``. This script reads those lines from the notebooks (or from
the notebooks of git revision ``--from-git``, to keep the times of an earlier run on the other kind of
machine), records them in book/chapter_times.json under their kind of machine, and rewrites the table
between the ``<!-- chapter-times -->`` markers of the introduction from that file and from
book/machine_speed.json (``benchmarks/machine_speed.py --save``). So the times there are measured, not typed.
``--check`` only reports whether the file and the table are up to date (the test suite runs it).
"""
import argparse
import glob
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INTRO = os.path.join(ROOT, "book", "intro.md")
TIMES = os.path.join(ROOT, "book", "chapter_times.json")
SPEED = os.path.join(ROOT, "book", "machine_speed.json")
START, END = "<!-- chapter-times -->", "<!-- /chapter-times -->"
LINE = re.compile(r"wall time: ([0-9.]+) s with budget (\w+) on (.+)")
KINDS = ("bfloat16 yes", "bfloat16 no")


def _notebooks(rev):
    paths = sorted(glob.glob(os.path.join(ROOT, "book", "[0-9][0-9]_*.ipynb")))
    for path in paths:
        name = os.path.relpath(path, ROOT)
        text = subprocess.run(["git", "show", f"{rev}:{name}"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout if rev else open(path).read()
        yield os.path.basename(path), json.loads(text)


def measured(rev=None) -> dict:
    """``{kind: {"device", "budget", "chapters": {title: seconds}}}`` from the notebooks' last cells."""
    out = {}
    for name, nb in _notebooks(rev):
        title = next("".join(c["source"]).split("\n")[0].lstrip("# ") for c in nb["cells"] if c["cell_type"] == "markdown")
        text = "".join("".join(o.get("text", "")) for o in nb["cells"][-1].get("outputs", []))
        match = LINE.search(text)
        if not match:
            raise SystemExit(f"{name}: its last cell has no 'wall time' line; run it top to bottom")
        device = match[3].strip()
        kind = next(k for k in KINDS if k in device)
        entry = out.setdefault(kind, {"device": device.split(" (")[0], "budget": match[2], "chapters": {}})
        entry["chapters"][title] = float(match[1])
    return out


def _when(seconds) -> str:
    if seconds is None:
        return "not measured"
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def table(times: dict, speed: dict | None) -> str:
    titles = sorted({t for entry in times.values() for t in entry["chapters"]}, key=lambda t: int(t.split(".")[0]))
    kinds = [k for k in KINDS if k in times]
    head = {"bfloat16 yes": "with bfloat16", "bfloat16 no": "without bfloat16 (like most laptops)"}
    lines = ["| chapter | " + " | ".join(head[k] for k in kinds) + " |", "|---" * (len(kinds) + 1) + "|"]
    for title in titles:
        lines.append(f"| {title} | " + " | ".join(_when(times[k]["chapters"].get(title)) for k in kinds) + " |")
    lines.append("")
    for k in kinds:
        lines.append(f"- {head[k].capitalize()}: {times[k]['device']}, budget `{times[k]['budget']}`.")
    if speed:
        rows = "; ".join(f"{name}: {v['float32']:.0f} images/s in float32, {v['mixed_bfloat16']:.0f} in "
                         f"mixed_bfloat16" for name, v in speed["images_per_s"].items())
        lines.append(f"- Speed of the machine {'with' if speed['bf16'] else 'without'} bfloat16 "
                     f"(`benchmarks/machine_speed.py`): {rows}.")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from-git", metavar="REV", help="read the notebooks of this git revision")
    ap.add_argument("--check", action="store_true", help="exit 1 if the file or the table is out of date")
    args = ap.parse_args()
    times = json.load(open(TIMES)) if os.path.exists(TIMES) else {}
    new = json.loads(json.dumps(times))  # a copy: a kind keeps the chapters this run does not measure again
    for kind, entry in measured(args.from_git).items():
        kept = new.setdefault(kind, {**entry, "chapters": {}})
        kept.update(device=entry["device"], budget=entry["budget"])
        kept["chapters"].update(entry["chapters"])
    speed = json.load(open(SPEED)) if os.path.exists(SPEED) else None
    text = open(INTRO).read()
    if START not in text or END not in text:
        raise SystemExit(f"{INTRO} has no {START} ... {END} block")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    page = f"{head}{START}\n{table(new, speed)}\n{END}{tail}"
    if args.check:
        if new != times or page != text:
            print("book/intro.md's chapter times are out of date: run python scripts/chapter_times.py")
            return 1
        return 0
    with open(TIMES, "w") as f:
        json.dump(new, f, indent=1)
    with open(INTRO, "w") as f:
        f.write(page)
    print(table(new, speed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
