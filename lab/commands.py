"""What the command line's commands do (:mod:`lab.cli` reads and checks their arguments first, without
TensorFlow, and imports this module only then).
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from helpers import data, metrics, runtime

from . import experiments, fitting
from .cli import _fail


def train(args, given: dict, resumed: dict | None) -> int:
    """``train``: a new run in ``args.out`` with the ``given`` settings, or the ``resumed`` run's configuration."""
    out = args.out
    try:
        cfg = resumed or experiments.config(args.kind, **given)
        if args.kind != "toy":
            data.load_images(cfg["data"], verbose=True)  # says where the images come from
        now = data.mnist_source() if resumed and cfg["data"] == "mnist" else cfg.get("data_source")
        if now != cfg.get("data_source"):
            raise ValueError(f"--resume: {out} was trained on {cfg.get('data_source')}, but the digits now come "
                             f"from {now}; resume where the same data is available.")
        x_train = experiments.FAMILIES[args.kind].data(cfg)[0]
    except (ValueError, RuntimeError) as err:  # a bad value, or no way to get the data (no Fashion-MNIST...)
        raise _fail(str(err))
    print(
        f"training {args.kind} to step {cfg['steps']} with batch {cfg['batch_size']} on {len(x_train):,} examples "
        f"(budget {runtime.budget()}, {runtime.detect_device()}, policy {cfg['policy']}, "
        f"XLA {'on' if cfg['jit_compile'] else 'off'}"
        + (f", augment {cfg['augment']}" if cfg.get("augment") else "") + ")"
    )
    try:
        _, _, info = experiments.train(cfg, out, resume=args.resume, verbose=1 if sys.stdout.isatty() else 2)
    except KeyboardInterrupt:
        ckpt = os.path.join(out, "checkpoint")
        if os.path.isdir(ckpt) and any(f.startswith("ckpt") for f in os.listdir(ckpt)):
            print(f"\ninterrupted; the last checkpoint is in {ckpt}. Continue with "
                  f"`python -m lab train {args.kind} --out {out} --resume`.")
        else:
            print("\ninterrupted before the first checkpoint; nothing to resume from: start the run again.")
        return 130
    except fitting.TrainingDiverged as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 3
    except ValueError as err:  # the checkpoint does not fit, or it is past --steps
        raise _fail(str(err))
    done = info["steps"] - info["from_step"]
    if done == 0:
        print(f"{out} has already trained {info['steps']} steps; nothing to do (pass a larger --steps to extend it).")
    else:
        note = f" (resumed at step {info['from_step']})" if info["from_step"] else ""
        print(f"done: {done} steps{note} in {info['seconds']:.0f} s of training; the run in {out} is at step "
              f"{info['steps']}")
    return 0


def sample(args) -> int:
    """``sample``: generated images of the run in ``args.dir`` to a .npy file."""
    path = os.path.join(args.dir, "generator.keras")
    if not os.path.exists(path):
        raise _fail(f"{path} not found: train first, e.g. `python -m lab train dcgan --out {args.dir}`.")
    try:
        with open(os.path.join(args.dir, "config.json")) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as err:
        raise _fail(f"{args.dir}/config.json could not be read ({err}); `sample` needs the folder `train` wrote.")
    try:  # a label out of range, or one for an unconditional run, is a ValueError with the reason
        with runtime.precision(cfg.get("policy", "float32")):  # the run's precision, for this call
            if args.steps is not None:
                if cfg.get("kind") != "diffusion":
                    raise ValueError(f"--steps is the DDIM steps of a diffusion run; {args.dir} holds a "
                                     f"{cfg.get('kind')} run")
                cfg["sample_steps"] = args.steps
            images, labels = experiments.sample(experiments.load_sampler(args.dir), args.n, cfg, seed=args.seed,
                                                label=args.label)
    except ValueError as err:
        raise _fail(str(err))
    np.save(args.out, images)
    print(f"wrote {args.out}: {images.shape} {images.dtype}")
    if labels is not None:  # beside the images: FILE.labels.npy
        path = os.path.splitext(args.out)[0] + ".labels.npy"
        np.save(path, labels)
        print(f"wrote {path}: the class asked for, per image ({labels.shape} {labels.dtype})")
    return 0


def evaluate(args) -> int:
    """``evaluate``: the chapter 6 metrics of a .npy file of generated images."""
    if not os.path.isfile(args.file):
        raise _fail(f"{args.file} not found; write one with `python -m lab sample RUN_DIR --out {args.file}`.")
    try:
        array = np.load(args.file, allow_pickle=False)
    except (ValueError, OSError, EOFError):  # text, a pickle or a truncated file: numpy's advice does not apply
        raise _fail(f"{args.file} is not a NumPy array file; pass the uint8 (N, 28, 28) .npy that `python -m lab "
                    f"sample` writes.")
    try:
        fake = data.check_images(array)[..., 0]
    except ValueError as err:
        raise _fail(f"{args.file}: {err}")
    _, (real, _) = data.load_images(args.data, verbose=True)
    if len(fake) < 10:
        raise _fail(f"{args.file} holds {len(fake)} images; evaluate at least 10 (1,000 or more for stable numbers).")
    result = metrics.evaluate(fake, real, subset_size=args.subset_size, dataset=args.data)
    print(f"{len(fake)} generated vs {len(real)} real held-out digits, features: {result['features']}")
    for key in ("fid", "kid", "is", "precision", "recall", "density", "coverage"):
        print(f"  {key:9s} {result[key]:.6g}")
    print(json.dumps({"file": args.file, **result}))
    return 0
