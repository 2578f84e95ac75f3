"""Score cached runs again from their kept samples, after a change to how samples are scored (not to
how they are trained), and update their stored results to match.

    python scripts/rescore.py [--cache DIR] [--data fashion]

For every finished image run in the cache (``samples.npy`` beside its ``result.json``) on the given data
set, recompute the sample-based scores with lab.experiments.score_samples (the training images come
from the run's configuration), keep everything else (its wall time, a VAE's ELBO), and rewrite
``result.json``; a stored copy (book/stored_runs) gets the same row, its provenance noting the rescoring.
Idempotent: scoring the same samples twice gives the same row.
"""
import argparse
import json
import os
import time

import numpy as np

from lab import experiments, store


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cache", default=None, help="default: lab.experiments.cache_dir()")
    ap.add_argument("--data", default="fashion")
    args = ap.parse_args()
    root = experiments.cache_dir(args.cache)
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        result, samples = os.path.join(folder, "result.json"), os.path.join(folder, "samples.npy")
        if not (os.path.exists(result) and os.path.exists(samples)):
            continue
        row = json.load(open(result))
        if row.get("kind") == "toy" or row.get("data") != args.data or row.get("status") != "ok":
            continue
        cfg = experiments.run_config(folder)
        labels = os.path.join(folder, "samples.labels.npy")
        x_train = experiments.FAMILIES[cfg["kind"]].data(cfg)[0]
        new = experiments.score_samples(np.load(samples), np.load(labels) if os.path.exists(labels) else None,
                                        cfg, x_train)
        changed = {k: (row.get(k), v) for k, v in new.items() if row.get(k) != v}
        print(f"{name}: {len(changed)} scores changed" + (f", e.g. {dict(list(changed.items())[:3])}" if changed else ""))
        if not changed:  # nothing to rewrite, and a stored run keeps its provenance as it was
            continue
        row.update(new)
        experiments._write_json(result, row)
        key = experiments.key(cfg)
        kept = os.path.join(store.folder(), key, store.FILE)
        if os.path.exists(kept):
            record = json.load(open(kept))
            record["row"].update(new)
            record["trained"]["rescored"] = time.strftime("%Y-%m-%d")
            experiments._write_json(kept, record)


if __name__ == "__main__":
    main()
