"""Write book/provenance.md: where the book's stored results come from, generated from book/stored_runs.

    python scripts/provenance.py [--check]

Each stored run keeps the machine, budget, date and commit it was trained on (lab.store). The chapters
print none of that: this back-matter page gathers it, one row per grid of lab.designs.stored_grids (the
grids' runs with any seed) plus one for the runs no grid names. ``--check`` only reports whether the page is
up to date (the test suite runs it).
"""
import argparse
import collections
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

os.environ["GENAI_BUDGET"] = "cpu"  # the stored runs are the cpu budget's
from lab import designs, experiments, store  # noqa: E402

PAGE = os.path.join(os.path.dirname(__file__), "..", "book", "provenance.md")
SEEDS = range(10)
INTRO = """# Where the stored results come from

Long grids of training runs would keep a reader waiting for hours, so the book keeps their finished results
in the repository (`book/stored_runs`: each run's scores, 64 of its samples and its training log, under a
key computed from its whole configuration) and the chapters load them. Loading needs no particular machine:
a run's key depends only on what the run is (its data, model, steps and the precision it was trained in).
To train any of them again on your machine, run a chapter with `GENAI_RETRAIN=1`, or a whole grid with
`python scripts/store_grid.py NAME`.

The table lists, for each grid the chapters load, the machine, budget, dates and code version (git commit)
of its stored runs. It is generated from the stored runs by `scripts/provenance.py`.

"""


def grid_keys() -> dict:
    """The stored keys of each grid of lab.designs.stored_grids, with any of the first ten seeds."""
    stored = {key for key, _ in store.runs()}
    out = {}
    for name, conditions in designs.stored_grids().items():
        keys = {experiments.key(experiments.config(**{**settings, "seed": seed}))
                for settings in conditions.values() for seed in SEEDS}
        out[name] = sorted(keys & stored)
    return out


def page() -> str:
    records = dict(store.runs())
    groups = grid_keys()
    named = {k for keys in groups.values() for k in keys}
    groups["(the other grids, set in the chapters)"] = sorted(set(records) - named)
    lines = ["| grid | runs | trained on | budget | dates | commits |", "|---|---|---|---|---|---|"]
    for name, keys in groups.items():
        if not keys:
            continue
        trained = [records[k]["trained"] for k in keys]
        values = {field: sorted(collections.Counter(t[field] for t in trained)) for field in
                  ("device", "budget", "date", "commit")}
        dates = values["date"][0] + (f" to {values['date'][-1]}" if len(values["date"]) > 1 else "")
        lines.append(f"| {name} | {len(keys)} | {'; '.join(values['device'])} | {', '.join(values['budget'])} | "
                     f"{dates} | {', '.join(f'`{c}`' for c in values['commit'])} |")
    return INTRO + "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if book/provenance.md is out of date")
    args = ap.parse_args()
    text = page()
    if args.check:
        current = open(PAGE).read() if os.path.exists(PAGE) else ""
        if current != text:
            print("book/provenance.md is out of date: run python scripts/provenance.py")
            return 1
        return 0
    with open(PAGE, "w") as f:
        f.write(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
