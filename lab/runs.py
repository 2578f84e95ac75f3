"""Runs as data: a run's whole configuration (:func:`config`) and its key, training it into a folder
(:func:`train`, resumable), scoring and caching it (:func:`run`, :func:`record`), the stored results it
loads instead where they exist, and what is computed once from a finished run's networks (:func:`derived`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import keras
import numpy as np

from helpers import callbacks as shown, data, runtime, variants

from . import fitting, settings, store
from .families import FAMILIES, build

# Bump when the training or scoring code changes what a cached run would contain.
CACHE_VERSION = 4
DEFAULT_CACHE = os.path.join("runs", "experiments")
WEIGHTS = store.WEIGHTS


def config(kind: str, source: str | None = None, **overrides) -> dict:
    """The whole configuration of one run: every setting of :data:`lab.settings.SETTINGS` that applies
    to ``kind`` (the recipe for the budget in force where not given), the pixel ``scale`` and where the
    digits come from (``data_source``: a run on the offline subset is not the run on the full MNIST).
    Unknown or inapplicable settings and bad values are errors, so a typo cannot silently train the
    default. ``source`` says where MNIST comes from (default: the budget's, :func:`helpers.runtime.data_source`).
    Introduced in chapter 3."""
    cfg = settings.validate(kind, overrides)
    family = FAMILIES[kind]
    if "augment" in cfg:
        cfg["augment"] = ",".join(variants.parse_augment(cfg["augment"]))
    family.check(cfg)
    cfg["scale"] = family.scale
    if cfg["data"] == "mnist":  # the offline subset or the whole MNIST (Fashion-MNIST is whole either way)
        cfg["data_source"] = data.mnist_source(source)
    return json.loads(json.dumps(cfg))  # tuples become lists: equal to the configuration read back from disk


def load_sampler(folder: str):
    """The sampling network of the run in ``folder`` (``generator.keras``)."""
    _not_stored(folder, "generator.keras")
    return keras.models.load_model(os.path.join(folder, "generator.keras"), compile=False)


def _not_stored(folder: str, network: str = "model.weights.h5") -> None:
    if os.path.exists(os.path.join(folder, store.FILE)) and not os.path.exists(os.path.join(folder, network)):
        raise FileNotFoundError(f"{folder} is a stored run: its scores and {store.KEEP} samples, no networks; "
                                f"train it here (GENAI_RETRAIN=1, or a cache of your own) to sample it again")


def _callbacks(cfg, out, sampler, per_step, extra):
    ckpt, rows = os.path.join(out, "checkpoint"), max(1, cfg["steps"] // cfg["log_every"])
    family = FAMILIES[cfg["kind"]]
    n = family.grid_size if hasattr(family, "grid_size") else 100 if family.conditional else 64
    return [fitting.NaNGuard(ckpt), fitting.CSVLog(os.path.join(out, "log.csv"), per_step),
            shown.SampleGrid(n=n, out_dir=os.path.join(out, "samples"), every=cfg["log_every"] * max(1, rows // 10)),
            fitting.Checkpoint(ckpt, sampler, os.path.join(out, "generator.keras")), *extra]


def train(cfg: dict, out: str, resume: bool = False, verbose: int | str = "line", callbacks=()):
    """Train the run ``cfg`` into the folder ``out`` (config.json, log.csv, samples/, checkpoint/,
    generator.keras) up to ``cfg["steps"]`` steps and return ``(model, x_train, info)``, ``info`` holding
    ``labels`` (of the training images), ``from_step``, ``steps``, ``seconds`` (training time of this call),
    ``history`` (this call's log rows) and ``sampler`` (the network saved as ``generator.keras``).
    ``resume=True`` continues from the last checkpoint in ``out`` (or extends a finished run);
    ``callbacks`` run after the run's own (NaN guard, CSV log, sample grids, checkpoint). Raises
    :class:`lab.fitting.TrainingDiverged` if a loss becomes NaN, ``ValueError`` if the checkpoint
    does not fit ``cfg``. Introduced in chapter 3."""
    family = FAMILIES[cfg["kind"]]
    x_train, y_train, x_test = family.data(cfg)
    per_step = cfg["batch_size"] * cfg.get("d_steps", 1)  # real images per step: a batch per D update
    labels, shares = family.train_labels(cfg, x_train, y_train)
    # a set smaller than one step's images (chapter 11's N = 10) is repeated until it fills a step; each image
    # stays equally likely, and x_train (what the scores compare with) keeps one copy of each
    reps = -(-per_step // len(x_train))
    fill = lambda a: a if a is None or reps == 1 else np.concatenate([a] * reps)  # noqa: E731
    saved = os.path.join(out, "generator.keras")
    with runtime.precision(cfg["policy"]):
        runtime.seed_everything(cfg["seed"])
        model, sampler = family.build(cfg, shares)
        start = fitting.restore(model, os.path.join(out, "checkpoint")) if resume else 0
        if resume and verbose:
            print(f"continuing from step {start}" if start else "no checkpoint yet: starting from step 0")
        if start > cfg["steps"]:
            raise ValueError(f"{out} has already trained {start} steps, more than the {cfg['steps']} asked for")
        os.makedirs(out, exist_ok=True)
        _write_json(os.path.join(out, "config.json"), cfg)
        t0 = time.perf_counter()
        dataset = family.dataset(cfg, fill(x_train), fill(y_train), fill(labels), per_step)
        history = fitting.fit_steps(model, dataset, cfg["steps"], cfg["log_every"],
                                     _callbacks(cfg, out, sampler, per_step, callbacks),
                                     validation_data=family.held_out(cfg, x_train, x_test, labels), verbose=verbose)
        seconds = time.perf_counter() - t0
        if start == cfg["steps"] and os.path.exists(saved):  # nothing trained: keep what the run saved
            sampler = load_sampler(out)
        sampler = family.finish(model, sampler, cfg, x_train, saved)
        if not os.path.exists(saved):  # steps == 0
            sampler.save(saved)
    return model, x_train, {"labels": y_train, "from_step": start, "steps": cfg["steps"], "seconds": seconds,
                            "history": history.history, "sampler": sampler}


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def sample(sampler, n: int, cfg: dict, seed: int = 1234, label: int | None = None):
    """``n`` uint8 samples ``(n, 28, 28)`` of a run's sampler from seeded standard normal noise, and their
    labels: for a conditional run every sample of class ``label``, or (``None``) the classes spread evenly
    (``0, 1, ..., 9, 0, 1, ...``); ``None`` for an unconditional run (which takes no ``label``)."""
    return FAMILIES[cfg["kind"]].sample(sampler, n, cfg, seed, label)


def score(model, cfg: dict, x_train, sampler, n: int = 1000, seed: int = 1234, y_train=None):
    """Score a trained run against the real held-out digits: FID, KID, IS, precision/recall and the class
    shares of ``n`` samples (shipped classifier), the copy check (median nearest-training-image distance
    of the samples and of held-out digits), a VAE's negative ELBO on the training and held-out images, a
    conditional run's ``agreement`` with the class asked for, a toy run's mode coverage of 2,500 samples.
    Returns ``(row, samples, labels)``."""
    return FAMILIES[cfg["kind"]].score(model, cfg, x_train, y_train, sampler, n, seed)


def key(cfg: dict) -> str:
    """The cache key of a configuration: a hash of all its settings (and of :data:`CACHE_VERSION`)."""
    text = json.dumps({"v": CACHE_VERSION, **cfg}, sort_keys=True)
    return f"{cfg['kind']}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def cache_dir(path: str | None = None) -> str:
    """Where runs are cached: ``path``, else ``$GENAI_CACHE``, else ``runs/experiments`` (relative to
    the working directory, i.e. beside the notebook)."""
    return path or os.environ.get("GENAI_CACHE") or DEFAULT_CACHE


# Chapter 11's memorisation grid: two diffusion models per N on disjoint halves of Fashion-MNIST (seed =
# half, so they share neither an image nor their initial weights), the same steps for every N. Trained once

def images_seen(cfg: dict) -> int:
    """Real training images a run draws: steps x batch size (x d_steps for a GAN whose discriminator
    makes several updates per step)."""
    return cfg["steps"] * cfg["batch_size"] * cfg.get("d_steps", 1)


def run_dir(cfg: dict, cache: str | None = None) -> str:
    """The folder a run of ``cfg`` is kept in: ``cache_dir(cache)/key(cfg)``."""
    return os.path.join(cache_dir(cache), key(cfg))


def run(cfg: dict, cache: str | None = None, verbose: int = 0, stored: bool = True) -> dict:
    """Train and score one configuration, or load it from the cache if it was done before. Returns the
    run's row: its settings, ``images`` (training images), ``images_seen`` (steps x batch), ``wall_s``
    (training seconds, when it was trained), ``status`` (``"ok"`` or ``"diverged"``), the scores of
    :func:`score`, ``cached`` and ``dir`` (the run folder, with ``samples.npy`` and ``generator.keras``).
    ``stored=False`` leaves the stored results alone: neither loaded nor written (:func:`derived` trains a
    stored run again for its networks)."""
    folder = run_dir(cfg, cache)
    result_path = os.path.join(folder, "result.json")
    if os.path.exists(result_path):
        with open(result_path) as f:
            row = json.load(f)
        if stored and store.writing() and store.load(key(cfg)) is None:  # trained before GENAI_STORE was set
            samples = os.path.join(folder, "samples.npy")
            _store(cfg, row, np.load(samples) if os.path.exists(samples) else None, folder)
        return {**row, "cached": True, "dir": folder}
    kept = store.load(key(cfg)) if stored else None  # trained before and kept in the repository (lab.store)
    if kept is not None:
        return {**kept, "cached": True}
    try:
        # an interrupted run left a checkpoint: continue it
        model, x_train, info = train(cfg, folder, resume=True, verbose=verbose)
    except fitting.TrainingDiverged as err:
        row = {**cfg, "images_seen": images_seen(cfg), "status": "diverged", "error": str(err)}
        _write_json(result_path, row)  # the checkpoint before the divergence stays, as the message says
        if stored and store.writing():
            _store(cfg, row, None, folder)
        return {**row, "cached": False, "dir": folder}
    return record(cfg, model, x_train, info, cache, stored=stored)


def record(cfg: dict, model, x_train, info: dict, cache: str | None = None, stored: bool = True) -> dict:
    """Score a model trained with the settings ``cfg`` (by :func:`train`, which returned ``info``, e.g. in
    a chapter that shows the training) and keep it in the cache as :func:`run` would: ``samples.npy``,
    the whole model's weights (``model.weights.h5``, read by :func:`load_model`) and ``result.json`` in
    :func:`run_dir`, the checkpoint removed. Returns the run's row (``wall_s``: the
    training time in the run's log, across resumes). Introduced in chapter 3, so that later chapters load the chapter's run instead of training it again."""
    folder = run_dir(cfg, cache)
    scores, samples, labels = score(model, cfg, x_train, info["sampler"], y_train=info.get("labels"))
    log = os.path.join(folder, "log.csv")  # its wall_s adds up the training time across resumes
    wall = float(np.atleast_1d(np.genfromtxt(log, delimiter=",", names=True)["wall_s"])[-1]) \
        if os.path.exists(log) else info["seconds"]
    row = {**cfg, "images_seen": images_seen(cfg), "images": len(x_train), "wall_s": wall,
           "status": "ok", **scores}
    np.save(os.path.join(folder, "samples.npy"), samples)
    model.save_weights(os.path.join(folder, WEIGHTS))  # for load_model: the discriminator, the encoder, ...
    if labels is not None:
        np.save(os.path.join(folder, "samples.labels.npy"), labels)
    _write_json(os.path.join(folder, "result.json"), row)  # the run counts as done only once its row is written
    shutil.rmtree(os.path.join(folder, "checkpoint"), ignore_errors=True)  # finished: keep the results only
    if stored and store.writing():
        _store(cfg, row, samples, folder)
    return {**row, "cached": False, "dir": folder}


def _store(cfg: dict, row: dict, samples, folder: str) -> None:
    """Keep a finished run in the repository's stored results (lab.store); a recipe run (the budget's
    ``config(kind)`` with any seed, which other chapters sample again) keeps its sampling network too."""
    recipe = row.get("status") == "ok" and {**cfg, "seed": 0} == config(cfg["kind"])
    store.save(key(cfg), cfg, row, samples, folder, networks=recipe, snapshots=FAMILIES[cfg["kind"]].keep_snapshots)


def run_config(folder: str) -> dict:
    """The configuration a run folder was trained with (its ``config.json``, or a stored run's)."""
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path) and os.path.exists(os.path.join(folder, store.FILE)):
        with open(os.path.join(folder, store.FILE)) as f:
            return json.load(f)["config"]
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: {folder} is not a run folder")
    with open(path) as f:
        return json.load(f)


def derived(row: dict, name: str, compute, cache: str | None = None, needs: str = WEIGHTS) -> dict:
    """What ``compute(folder)`` finds in the folder of a finished run (its whole model, its 1,000 scored
    samples), a dict of numbers and arrays, kept beside the run as ``derived/<name>.npz``: computed once;
    with ``GENAI_STORE=1`` also kept beside the run's stored results, so that a reader who loads the run
    from there (no networks, 64 samples) loads this too. ``needs`` is the file ``compute`` reads: where
    neither the cache nor the stored folder has it, the run is trained again into the cache (a recipe
    run's stored folder keeps ``generator.keras``, so what is drawn from its sampler needs no training).
    Give ``name`` a new version when ``compute`` changes (chapter 10's tests)."""
    cfg = run_config(row["dir"])
    folder, kept = run_dir(cfg, cache), os.path.join(store.folder(), key(cfg))
    places = (folder, kept if store.reading() else None)
    for place in places:
        path = os.path.join(place or "", "derived", f"{name}.npz")
        if place and os.path.exists(path):
            with np.load(path) as f:
                return {k: f[k] if f[k].ndim else f[k].item() for k in f.files}
    source = next((p for p in places if p and os.path.exists(os.path.join(p, needs))), None)
    if source is None:
        again = run(cfg, cache, stored=False)  # a stored run keeps no networks: train it again here
        if "fid" in row and not np.isclose(again.get("fid", np.nan), row["fid"], rtol=1e-6):
            print(f"note: {name} is measured on a network trained again here (FID {again.get('fid', np.nan):.1f}), "
                  f"not the stored run's (FID {row['fid']:.1f}): threads or hardware differ", flush=True)
        source = folder
    result = compute(source)
    for place in (folder, kept if store.writing() and os.path.isdir(kept) else None):
        if place:
            os.makedirs(os.path.join(place, "derived"), exist_ok=True)
            with open(os.path.join(place, "derived", f"{name}.npz.tmp"), "wb") as f:
                np.savez_compressed(f, **{k: np.asarray(v) for k, v in result.items()})
            os.replace(os.path.join(place, "derived", f"{name}.npz.tmp"), os.path.join(place, "derived", f"{name}.npz"))
    return result


def load_model(folder: str):
    """The whole trained model of a cached run (a GAN with its discriminator, a VAE with its encoder), as
    :func:`record` saved it, and the run's configuration: ``(model, cfg)``. Introduced in chapter 10, whose membership inference needs the discriminator and the encoder, not only the sampler."""
    path = os.path.join(folder, WEIGHTS)
    _not_stored(folder)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: this run was cached before whole models were kept "
                                f"(or is not finished); delete {folder} and run it again to keep its model")
    cfg = run_config(folder)
    with runtime.precision(cfg["policy"]):
        model, _ = build(cfg)
        model.load_weights(path)
    return model, cfg


