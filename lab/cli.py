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

from helpers import choices, runtime

from . import settings
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
    """The settings given on the command line, parsed as :mod:`lab.settings` declares them and checked."""
    out = {}
    for s in settings.SETTINGS:
        text = getattr(args, s.name, None)
        if text is None or not s.cli:
            continue
        try:
            out[s.name] = text if isinstance(text, bool) else s.parse(text)
        except ValueError as err:
            raise _fail(f"--{s.name.replace('_', '-')}: could not read {text!r} ({err})")
    try:
        return settings.check(args.kind, out)
    except ValueError as err:
        raise _fail(str(err))


def _resumed_config(args, given: dict) -> dict:
    """The configuration of the run in ``args.out``: its config.json, with ``--steps`` if given. A flag
    that changes another setting is an error."""
    path = os.path.join(args.out, "config.json")
    if not os.path.exists(path):
        raise _fail(f"--resume: {args.out} holds no run (no config.json); drop --resume to start one there.")
    with open(path) as f:
        cfg = json.load(f)
    if cfg.get("kind") != args.kind:
        raise _fail(f"--resume: {args.out} holds a {cfg.get('kind')} run, not {args.kind}.")
    for key, value in given.items():
        value = json.loads(json.dumps(value))  # as config.json holds it (tuples as lists)
        if key != "steps" and value != cfg.get(key):
            raise _fail(f"--resume: {key} is {cfg.get(key)!r} in {args.out}/config.json, the flags ask for "
                        f"{value!r}; a run keeps its settings (drop the flag, or start another --out).")
    if given.get("steps") is not None:
        cfg["steps"] = given["steps"]
    return cfg


def _default(setting, kind: str) -> str:
    """A recipe's default as ``-h`` shows it: one value, or one per budget (full/cpu/smoke)."""
    values = [settings.default(setting, kind, b, device=False) for b in runtime.BUDGETS]
    values = ["the device's" if v is None else str(v) for v in values]
    return values[0] if len(set(values)) == 1 else "/".join(values)


def _add_flag(parser, setting) -> None:
    """One ``train`` flag from a declared setting: its help says its default (per model where the recipes
    differ, per budget where the budgets do) and which models take it."""
    kinds = sorted(setting.kinds)
    if setting.default == "recipe":
        shown = " / ".join(f"{k} {_default(setting, k)}" for k in kinds)
        if "/" in shown.replace(" / ", ""):
            shown += f" (budgets {'/'.join(runtime.BUDGETS)})"
    else:
        shown = "none" if setting.default in (None, "") else setting.default
    only = "" if set(kinds) == set(RECIPES) else f"{', '.join(kinds)} only: "
    flag = "--" + setting.name.replace("_", "-")
    if setting.parse is settings._flag:
        parser.add_argument(flag, action="store_true", default=None, help=f"{only}{setting.help}")
    else:
        parser.add_argument(flag, choices=setting.choices, help=f"{only}{setting.help}; default: {shown}")


def main(argv=None) -> int:
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
            _add_flag(t, setting)
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
    e.add_argument("--data", choices=choices.IMAGE_DATA, default="mnist",
                   help="the real images and the classifier to score with; default: mnist")
    args = ap.parse_args(argv)
    if args.command == "train":
        given = _given(args)
        if not args.resume and os.path.exists(os.path.join(args.out, "config.json")):
            raise _fail(f"{args.out} already holds a run; pass --resume to continue or extend it, or choose "
                        f"another --out.")
        resumed = _resumed_config(args, given) if args.resume else None
    # Imported only now: -h, argument errors and resume conflicts answer without starting TensorFlow.
    from . import commands

    if args.command == "train":
        return commands.train(args, given, resumed)
    return getattr(commands, args.command)(args)
