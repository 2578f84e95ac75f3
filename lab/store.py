"""Stored results: finished runs kept in the repository, so that a reader re-running a chapter loads in
seconds what took hours to train, and trains only what is missing.

A stored run is a folder ``STORE/<key>`` (the key of :func:`lab.runs.key`) holding
``stored.json`` (the run's whole configuration, its row of scores and where it was trained: commit,
device, budget, date, wall time), ``samples.npy`` (its first 64 scored samples, uint8) and ``log.csv``
(its training log). No weights, except for a chapter's recipe run (the run other chapters draw new
samples from: chapter 6 evaluates chapters 3, 5 and 11's models), which also keeps its sampling network
``generator.keras`` and its ``samples/`` grids saved during training (the arrays); and ``derived/``, what a
chapter computed from the run's networks before they were left behind (:func:`lab.runs.derived`).
Written only when asked
(``GENAI_STORE=1``, by the maintainer who trains the grid), read unless ``GENAI_RETRAIN=1``. With
``GENAI_READS=FILE`` every stored run read is listed in ``FILE`` (``read_by/<chapter>.txt`` lists what each
chapter reads, so that a test finds stored runs no one reads).
:func:`lab.runs.run` looks here after its own cache and before training.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time

import numpy as np

from helpers import runtime

STORE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "book", "stored_runs")
KEEP = 64  # samples kept per stored run
FILE = "stored.json"
WEIGHTS = "model.weights.h5"  # a run's whole model (lab.runs.load_model reads it)


def folder() -> str:
    """Where stored runs live: ``$GENAI_STORED``, else ``book/stored_runs`` of this checkout."""
    return os.environ.get("GENAI_STORED") or STORE


def reading() -> bool:
    """Stored runs are used unless ``GENAI_RETRAIN=1`` asks to train everything again."""
    return os.environ.get("GENAI_RETRAIN", "0") not in ("1", "true", "yes")


def writing() -> bool:
    """Finished runs are stored only when ``GENAI_STORE=1`` (a maintainer training a grid to commit)."""
    return os.environ.get("GENAI_STORE", "0") in ("1", "true", "yes")


def load(key: str) -> dict | None:
    """The row of the stored run ``key`` (with ``stored`` holding where it was trained and ``dir`` its
    folder), or ``None`` when there is none or stored runs are not read."""
    path = os.path.join(folder(), key, FILE)
    if not reading() or not os.path.exists(path):
        return None
    with open(path) as f:
        record = json.load(f)
    readers = os.environ.get("GENAI_READS")  # a maintainer listing what a chapter reads (tests/test_store.py)
    if readers:
        with open(readers, "a") as f:
            f.write(key + "\n")
    return {**record["row"], "stored": record["trained"], "dir": os.path.dirname(path)}


def _commit() -> str:
    """The commit the code came from: git's, else ``$GENAI_COMMIT`` (a tree exported without ``.git``)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=here, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True).stdout.strip()
        return head + ("+changes" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return os.environ.get("GENAI_COMMIT") or "unknown"


def save(key: str, cfg: dict, row: dict, samples, run: str, networks: bool = False, snapshots: bool = False) -> str:
    """Keep a finished run: its configuration, its row, the first :data:`KEEP` samples, its training log
    (``log.csv`` of the run folder ``run``, a few kB) and where it was trained; with ``networks`` also its
    sampling network and sample grids; with ``snapshots`` the grids saved during training (``samples/``:
    chapter 8 draws a toy run's point clouds over training). Returns the folder."""
    out = os.path.join(folder(), key)
    os.makedirs(out, exist_ok=True)
    trained = {"commit": _commit(), "device": str(runtime.detect_device()), "budget": runtime.budget(),
               "date": time.strftime("%Y-%m-%d"), "wall_s": row.get("wall_s")}
    if samples is not None:  # a diverged run has none
        np.save(os.path.join(out, "samples.npy"), np.asarray(samples)[:KEEP])
    log = os.path.join(run, "log.csv")
    if os.path.exists(log):
        shutil.copyfile(log, os.path.join(out, "log.csv"))
    if networks:
        shutil.copyfile(os.path.join(run, "generator.keras"), os.path.join(out, "generator.keras"))
    grids = os.path.join(run, "samples")
    if (networks or snapshots) and os.path.isdir(grids):  # a diverged run may have saved none
        shutil.copytree(grids, os.path.join(out, "samples"), dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("*.png"))  # the arrays, not the pictures
    record = {"config": cfg, "row": {k: v for k, v in row.items() if k not in ("dir", "cached")}, "trained": trained}
    tmp = os.path.join(out, FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(record, f, indent=1)
    os.replace(tmp, os.path.join(out, FILE))
    return out


def runs() -> list[tuple[str, dict]]:
    """Every stored run as ``(key, record)``, for the tests and for saying what a chapter loaded."""
    root = folder()
    out = []
    for key in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        path = os.path.join(root, key, FILE)
        if os.path.exists(path):
            with open(path) as f:
                out.append((key, json.load(f)))
    return out
