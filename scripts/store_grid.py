"""Train a grid of the book and keep its finished runs in book/stored_runs (lab.store), to commit.

    python scripts/store_grid.py NAME [--seeds 0 1] [--workers 2] [--list] [--tests-only]

The grids are the ones the chapters load (the same settings give the same keys, so a chapter finds
them); a run already in the store or in your cache is not trained again, so the script can be stopped
and started again at any time, and a grid too long for one sitting is trained across several. Runs go
in the order listed, so the first rows of a grid are ready first.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from helpers import runtime  # noqa: E402
from lab import experiments  # noqa: E402
from lab.designs import stored_grids  # noqa: E402

def store_tests(rows):
    """Chapter 10's three tests of finished privacy runs, computed where their networks are and stored."""
    for i, row in enumerate(rows):
        for test in ("copying", "canary", "membership"):
            experiments.privacy(row, test)
        print(f"chapter 10's tests of {os.path.basename(row['dir'])} stored ({i + 1}/{len(rows)})", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("name", choices=sorted(stored_grids()))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--list", action="store_true", help="print the conditions and stop")
    ap.add_argument("--tests-only", action="store_true",
                    help="privacy grids: store chapter 10's tests of the runs finished in your cache, train nothing")
    args = ap.parse_args()
    if args.list:
        for name, settings in stored_grids()[args.name].items():
            print(name, settings)
        return
    os.environ["GENAI_STORE"] = "1"
    runtime.setup(seed=0)
    if args.tests_only:  # e.g. before a session ends with the grid half trained: the networks are in the cache
        jobs = [experiments.config(**{**settings, "seed": seed}) for settings in stored_grids()[args.name].values()
                for seed in args.seeds]
        done = [cfg for cfg in jobs if os.path.exists(os.path.join(experiments.run_dir(cfg), "result.json"))]
        store_tests([experiments.run(cfg) for cfg in done])
        return
    table = experiments.grid(stored_grids()[args.name], seeds=args.seeds, workers=args.workers)
    if args.name.startswith("privacy"):  # chapter 10's tests need the networks, which stored runs leave behind
        store_tests([row for _, row in table.iterrows()])
    cols = [c for c in ("fid", "confidence", "readers_agree", "memorised", "modes", "high_quality") if c in table]
    print(experiments.summarize(table, cols, text=True).to_string())


if __name__ == "__main__":
    main()
