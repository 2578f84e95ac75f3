"""Grids of runs: every condition with every seed, one tidy table back (a row per run), trained in worker
processes where that helps; the statistics of such a table (mean and standard error per condition, the
difference of two conditions) and the samples of one of its runs.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor, as_completed

import numpy as np
import pandas as pd
import tensorflow as tf


from . import store, worker
from .fitting import Line
from .runs import cache_dir, config, key, run, run_dir


def grid(conditions: dict, seeds=(0, 1, 2), cache: str | None = None, progress: bool = True, workers: int = 1):
    """Run every condition with every seed and return one tidy ``pandas.DataFrame`` (a row per run, a
    ``condition`` column with the condition's name). ``conditions`` maps a name to the settings of
    :func:`config`, e.g. ``{"n=500": {"kind": "dcgan", "train_size": 500}}``. Cached runs load in
    milliseconds. With ``progress``, a line says what is being trained or loaded while the grid runs (in a
    notebook one line, updated in place), and one summary line stays: how many runs were trained now and
    how many loaded.

    ``workers=2`` trains two runs at a time in separate processes, one thread each: small networks use
    two CPU cores better that way (measured about 1.3x on a 2-core machine). Keep 1 on a GPU.
    """
    tf.get_logger().setLevel("ERROR")  # every run builds new models: TensorFlow's retracing notice is expected
    jobs = []
    for name, settings in conditions.items():
        settings = dict(settings)
        kind = settings.pop("kind")
        jobs += [(name, config(kind, **{**settings, "seed": seed})) for seed in seeds]
    rows, start = [None] * len(jobs), time.perf_counter()
    show = Line() if progress else None

    def report(i, name, cfg, row):
        rows[i] = {"condition": name, **row}
        if show:
            done = sum(r is not None for r in rows)
            show(f"[{done}/{len(jobs)}] {_progress(name, cfg, row)} ({time.perf_counter() - start:.0f} s so far)")

    todo = []
    for i, (name, cfg) in enumerate(jobs):
        done_before = os.path.exists(os.path.join(run_dir(cfg, cache), "result.json")) or store.load(key(cfg))
        if workers > 1 and not done_before:
            todo.append(i)
        else:
            report(i, name, cfg, run(cfg, cache))
    if todo:
        todo.sort(key=lambda i: -jobs[i][1].get("steps", 0))  # longest first: no long run left alone at the end

        futures = {_pool(workers).submit(run, jobs[i][1], cache_dir(cache)): i for i in todo}
        for future in as_completed(futures):
            i = futures[future]
            report(i, jobs[i][0], jobs[i][1], future.result())
    if show and rows:  # an empty grid has nothing to report
        show.close(summary(rows))
    return pd.DataFrame(rows)


def _progress(name: str, cfg: dict, row: dict) -> str:
    """What :func:`grid` did with one run (trained, loaded) and its headline result."""
    what = ("stored" if row.get("stored") else "cached" if row["cached"] else "stopped" if row["status"] != "ok" else
            f"trained {cfg['steps']} steps in {row['wall_s']:.1f} s")
    result = ("DIVERGED" if row["status"] != "ok" else f"FID {row['fid']:.1f}" if "fid" in row else
              f"{row['modes']} modes, {row['high_quality']:.0%} high quality")
    return f"{cfg['kind']} {name} seed {cfg['seed']}: {what}, {result}"


def summary(rows) -> str:
    """One line: how many runs a grid trained now, loaded from the cache, or loaded from the book's stored
    results, and how many diverged. Where stored runs were trained is on the book's provenance page."""
    stored = sum(bool(r.get("stored")) for r in rows)
    cached = sum(bool(r["cached"]) for r in rows) - stored
    trained = [r for r in rows if not r["cached"]]
    parts = [f"{len(trained)} trained now" + (f" ({sum(r.get('wall_s', 0) for r in trained):.0f} s)" if trained else "")]
    parts += [f"{cached} loaded from the cache"] if cached else []
    parts += [f"{stored} loaded from stored results"] if stored else []
    diverged = sum(r.get("status", "ok") != "ok" for r in rows)
    parts += [f"{diverged} diverged"] if diverged else []
    return f"{len(rows)} run{'s' * (len(rows) != 1)}: " + ", ".join(parts)


_pools: dict = {}


def _pool(workers: int):
    """One pool of worker processes per size, kept for the session (TensorFlow starts once per worker)."""
    if workers not in _pools:
        context = multiprocessing.get_context("spawn")  # a fresh TensorFlow in each worker
        _pools[workers] = ProcessPoolExecutor(workers, mp_context=context, initializer=worker.quiet, initargs=(1,))
    return _pools[workers]


def summarize(table, metrics=("fid",), by="condition", text: bool = False):
    """Mean and standard error (std / sqrt(runs)) of ``metrics`` per ``by`` group, in the order the
    groups first appear (pandas ``groupby(...).agg(["mean", "sem", "count"])``). ``text=True`` gives
    strings ``"mean ± se"`` for display."""
    stats = table.groupby(by, sort=False)[list(metrics)].agg(["mean", "sem", "count"])
    frame = stats.copy()
    if text:
        frame = stats.xs("mean", axis=1, level=1).copy()
        for m in metrics:
            frame[m] = [f"{a:.3g} ± {b:.2g}" for a, b in zip(stats[(m, "mean")], stats[(m, "sem")])]
    else:
        frame.columns = [f"{m}_{'se' if s == 'sem' else s}" for m, s in stats.columns]
        frame = frame[[c for c in frame.columns if not c.endswith("_count")]]
    frame["runs"] = stats[(metrics[0], "count")].values
    return frame


def difference(table, a: str, b: str, metric: str = "fid", by: str = "condition") -> tuple[float, float]:
    """Mean of ``metric`` in group ``b`` minus its mean in group ``a``, with the standard error of that
    difference (independent runs: the two standard errors added in quadrature)."""
    s = summarize(table, [metric], by=by)
    return (float(s.loc[b, f"{metric}_mean"] - s.loc[a, f"{metric}_mean"]),
            float(np.hypot(s.loc[a, f"{metric}_se"], s.loc[b, f"{metric}_se"])))


def load_samples(table, condition: str, seed: int = 0) -> np.ndarray:
    """The scored samples of one run of a grid's table: 1,000 uint8 images ``(N, 28, 28)``, or for a toy
    run 2,500 float32 points ``(N, 2)``. A conditional run's classes are beside them, in
    ``samples.labels.npy`` (0, 1, ..., 9, 0, 1, ...)."""
    row = table[(table["condition"] == condition) & (table["seed"] == seed)]
    if row.empty:
        raise KeyError(f"no run of condition {condition!r} with seed {seed} in this table")
    return np.load(os.path.join(row["dir"].iloc[0], "samples.npy"))
