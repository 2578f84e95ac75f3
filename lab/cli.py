"""Command line for long runs outside notebooks.

    python -m lab train dcgan|cgan|vae|cvae|diffusion|toy --out DIR [--steps N] [--SETTING VALUE ...]
    python -m lab train KIND --out DIR --resume [--steps N]
    python -m lab sample DIR --n N --out FILE.npy [--seed S] [--label K] [--steps S]
    python -m lab evaluate FILE.npy [--subset-size K] [--data mnist|fashion]

``--data fashion`` trains on Fashion-MNIST instead of MNIST. The flags of ``train`` are the run settings
of :mod:`lab.settings`, one flag each (``--train-size`` for ``train_size``); ``python -m lab
train -h`` lists them with their defaults and the models that take them. Introduced in chapter 3.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from helpers import data, metrics, runtime

from . import experiments, fitting, settings
from .settings import RECIPES

TRAIN_EPILOG = """files written in --out:
  config.json      every setting of the run (--resume reads them from here)
  log.csv          a row every --log-every steps and at the end: step, the losses (the VAE's rows add
                   the held-out losses, val_*), images_per_s, wall_s (training seconds, across resumes)
  samples/*.png    grids from 64 fixed noise vectors (conditional models: 100, one row per class),
                   about ten over the run
  checkpoint/      the whole training state at the last two log rows (for --resume)
  generator.keras  the network `sample` loads (the VAE's decoder with a sigmoid), after every log row

--resume continues an interrupted run from its last checkpoint, or extends a finished one to a larger
--steps, with the settings of its config.json (other flags may repeat them, not change them). The
result equals an uninterrupted run of the same length.

exit codes: 0 done (or nothing left to do), 2 bad arguments or a run that does not fit them,
3 training diverged (a loss became NaN; nothing saved from the diverged state), 130 interrupted
(Ctrl-C; continue with --resume)."""

EXIT_CODES = """exit codes: 0 done, 2 bad arguments or a missing or unreadable file."""


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


class UsageError(SystemExit):
    """Exit status 2 with a message (printed to stderr when raised through :func:`_fail`)."""

    def __init__(self, message: str):
        super().__init__(2)
        self.message = message

    def __str__(self) -> str:
        return self.message


def _fail(message: str) -> UsageError:
    print(f"error: {message}", file=sys.stderr)
    return UsageError(message)


def _given(args) -> dict:
    """The settings given on the command line (``None`` where a flag was not given), parsed as
    :mod:`lab.settings` declares them."""

    out = {}
    for s in settings.SETTINGS:
        text = getattr(args, s.name, None)
        if text is None or not s.cli:
            continue
        try:
            out[s.name] = text if isinstance(text, bool) else s.parse(text)
        except ValueError as err:
            raise _fail(f"--{s.name.replace('_', '-')}: could not read {text!r} ({err})")
    return out


def _resumed_config(args, given: dict) -> dict:
    """The configuration of the run in ``args.out``: its config.json, with ``--steps`` if given. A flag
    that changes another setting, or digits from another source than the run's, is an error."""

    path = os.path.join(args.out, "config.json")
    if not os.path.exists(path):
        raise _fail(f"--resume: {args.out} holds no run (no config.json); drop --resume to start one there.")
    with open(path) as f:
        cfg = json.load(f)
    if cfg.get("kind") != args.kind:
        raise _fail(f"--resume: {args.out} holds a {cfg.get('kind')} run, not {args.kind}.")
    asked = experiments.config(args.kind, **given)  # the given flags, normalised as config() stores them
    for key, value in given.items():
        if key != "steps" and value is not None and asked[key] != cfg.get(key):
            raise _fail(f"--resume: {key} is {cfg.get(key)!r} in {args.out}/config.json, the flags ask for "
                        f"{asked[key]!r}; a run keeps its settings (drop the flag, or start another --out).")
    if cfg.get("data_source") != asked.get("data_source"):
        raise _fail(f"--resume: {args.out} was trained on {cfg.get('data_source')}, but the digits now come from "
                    f"{asked.get('data_source')}; resume where the same data is available.")
    if given.get("steps") is not None:
        cfg["steps"] = given["steps"]
    return cfg


def train(args) -> int:

    out = args.out
    given = _given(args)
    try:
        if args.resume:
            cfg = _resumed_config(args, given)
        else:
            if os.path.exists(os.path.join(out, "config.json")):
                raise _fail(f"{out} already holds a run; pass --resume to continue or extend it, or choose "
                            f"another --out.")
            cfg = experiments.config(args.kind, **given)
        if args.kind != "toy":
            data.load_images(cfg["data"], verbose=True)  # says where the images come from
        x_train = experiments.FAMILIES[args.kind].data(cfg)[0]
    except ValueError as err:
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
        resumed = f" (resumed at step {info['from_step']})" if info["from_step"] else ""
        print(f"done: {done} steps{resumed} in {info['seconds']:.0f} s of training; the run in {out} is at step "
              f"{info['steps']}")
    return 0


def sample(args) -> int:


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


    if not os.path.exists(args.file):
        raise _fail(f"{args.file} not found; write one with `python -m lab sample RUN_DIR --out {args.file}`.")
    try:
        fake = data.check_images(np.load(args.file, allow_pickle=False))[..., 0]
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


def _add_flag(parser, setting, budget: str) -> None:
    """One ``train`` flag from a declared setting: its help says its default (per model where the recipes
    differ) and which models take it."""

    kinds = sorted(setting.kinds)
    if setting.default == "recipe":
        values = " / ".join(f"{k} {settings.default(setting, k)}" for k in kinds)
        shown = f"the recipe's for the budget in force ({budget}): {values}" if setting.name == "steps" else values
    else:
        shown = "none" if setting.default in (None, "") else setting.default
    only = "" if set(kinds) == set(RECIPES) else f"{', '.join(kinds)} only: "
    flag = "--" + setting.name.replace("_", "-")
    if setting.parse is settings._flag:
        parser.add_argument(flag, action="store_true", default=None, help=f"{only}{setting.help}")
    else:
        parser.add_argument(flag, choices=setting.choices, help=f"{only}{setting.help}; default: {shown}")


def main(argv=None) -> int:


    budget = runtime.budget()
    fmt = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(prog="python -m lab", description=__doc__, formatter_class=fmt)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model on MNIST or Fashion-MNIST", formatter_class=fmt,
                       epilog=TRAIN_EPILOG,
                       description="Train a DCGAN or a VAE, their class-conditional versions (cgan, cvae), or a "
                                   "diffusion model, with the book's recipe (lab.settings.RECIPES).")
    t.add_argument("kind", choices=sorted(RECIPES), help="the model")
    t.add_argument("--out", required=True, help="run folder (created)")
    t.add_argument("--resume", action="store_true", help="continue or extend the run in --out (see below)")

    for setting in settings.SETTINGS:
        if setting.cli:
            _add_flag(t, setting, budget)
    s = sub.add_parser("sample", help="write generated digits to a .npy file", epilog=EXIT_CODES,
                       description="Write N generated digits (for the VAE: decoded means of prior samples) as a "
                                   "uint8 array (N, 28, 28), 0-255, white on black like MNIST.")
    s.add_argument("dir", help="run folder written by train")
    s.add_argument("--n", type=_positive, default=1000, help="number of digits; default: 1000")
    s.add_argument("--out", required=True, help="output .npy file")
    s.add_argument("--seed", type=int, default=0, help="noise seed; default: 0")
    s.add_argument("--steps", type=_positive, help="diffusion only: DDIM steps; default: the run's sample_steps")
    s.add_argument("--label", type=int, help="cgan/cvae only: the digit to generate; default: the classes in turn "
                                             "(0, 1, ..., 9, 0, ...). A conditional run also writes the classes "
                                             "asked for beside --out, as FILE.labels.npy")
    e = sub.add_parser("evaluate", help="score a .npy file of generated digits against real held-out digits",
                       epilog=EXIT_CODES + " The last line printed is one JSON object.",
                       description="FID, KID, IS, precision, recall, density and coverage on the shipped "
                                   "classifier's features, against the real held-out digits.")
    e.add_argument("file", help="uint8 array (N, 28, 28) as written by sample")
    e.add_argument("--subset-size", type=_positive, default=1000,
                   help="KID subset size (capped at the set sizes); default: 1000")
    e.add_argument("--data", choices=data.IMAGE_DATA, default="mnist",
                   help="the real images and the classifier to score with; default: mnist")
    args = ap.parse_args(argv)
    return {"train": train, "sample": sample, "evaluate": evaluate}[args.command](args)
