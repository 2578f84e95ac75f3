"""Command line for long runs outside notebooks.

    python -m helpers train dcgan|vae|cgan|cvae --out DIR [--steps N] [--batch-size B] [--seed S] [--log-every K]
        [--train-size N] [--augment translation,cutout] [--width W] [--lr LR] [--corrupt KIND:LEVEL]
        [--imbalance S0,...,S9] [--duplicate INDEX:COPIES] [--canary COPIES] [--clusters K]
    python -m helpers train dcgan|vae|cgan|cvae --out DIR --resume [--steps N]
    python -m helpers sample DIR --n N --out FILE.npy [--seed S] [--label K]
    python -m helpers evaluate FILE.npy [--subset-size K]

Run ``python -m helpers COMMAND -h`` for every flag, its default and the files a command writes.
Introduced in the hands-on GAN chapter; the VAE recipe in the hands-on VAE chapter, evaluate in the
evaluation chapter, the data flags in the data chapter, the conditional models (cgan, cvae) and
``sample --label`` in the applications chapter, ``--canary`` in the challenges chapter.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

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


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}")
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
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


def _flag_settings(args) -> dict:
    """The recipe, GAN-variant and data-condition flags as configuration values (see
    helpers.experiments.config); ``None`` where a flag was not given."""
    def pair(text, flag, cast):
        parts = text.split(":")
        if len(parts) != 2:
            raise _fail(f"{flag} takes two values separated by ':', got {text!r}")
        try:
            return [parts[0], float(parts[1])] if cast is str else [int(parts[0]), int(parts[1])]
        except ValueError:
            raise _fail(f"{flag}: could not read {text!r}")

    out = {"train_size": args.train_size, "augment": args.augment, "width": args.width, "lr": args.lr,
           "prior": args.prior, "loss": args.loss, "penalty": args.penalty, "penalty_weight": args.penalty_weight,
           "d_steps": args.d_steps, "spectral_norm": args.spectral_norm or None, "d_lr": args.d_lr,
           "g_lr": args.g_lr, "clipnorm": args.clipnorm, "canary": args.canary, "clusters": args.clusters}
    if args.corrupt:
        out["corrupt"] = pair(args.corrupt, "--corrupt", str)
    if args.duplicate:
        out["duplicate"] = pair(args.duplicate, "--duplicate", int)
    if args.imbalance:
        try:
            out["imbalance"] = [float(v) for v in args.imbalance.split(",")]
        except ValueError:
            raise _fail(f"--imbalance takes 10 comma-separated fractions, got {args.imbalance!r}")
    return out


def _resumed_config(args, given: dict) -> dict:
    """The configuration of the run in ``args.out``: its config.json, with ``--steps`` if given. A flag
    that changes another setting, or digits from another source than the run's, is an error."""
    from . import experiments

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
    if cfg.get("data_source") != asked["data_source"]:
        raise _fail(f"--resume: {args.out} was trained on {cfg.get('data_source')}, but the digits now come from "
                    f"{asked['data_source']}; resume where the same data is available.")
    if args.steps is not None:
        cfg["steps"] = args.steps
    return cfg


def train(args) -> int:
    from . import callbacks, experiments, runtime

    out = args.out
    given = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed, "log_every": args.log_every,
             **_flag_settings(args)}
    try:
        if args.resume:
            cfg = _resumed_config(args, given)
        else:
            if os.path.exists(os.path.join(out, "config.json")):
                raise _fail(f"{out} already holds a run; pass --resume to continue or extend it, or choose "
                            f"another --out.")
            cfg = experiments.config(args.kind, **given)
        x_train, _, _ = experiments.training_data(cfg, verbose=True)
    except ValueError as err:
        raise _fail(str(err))
    print(
        f"training {args.kind} to step {cfg['steps']} with batch {cfg['batch_size']} on {len(x_train):,} images "
        f"(budget {runtime.budget()}, {runtime.detect_device()}, policy {cfg['policy']}, "
        f"XLA {'on' if cfg['jit_compile'] else 'off'}"
        + (f", augment {cfg['augment']}" if cfg["augment"] else "") + ")"
    )
    try:
        _, _, info = experiments.train(cfg, out, resume=args.resume, verbose=1 if sys.stdout.isatty() else 2)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the last checkpoint is in {out}/checkpoint. Continue with "
              f"`python -m helpers train {args.kind} --out {out} --resume`.")
        return 130
    except callbacks.TrainingDiverged as err:
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
    import numpy as np

    from . import experiments, runtime

    path = os.path.join(args.dir, "generator.keras")
    if not os.path.exists(path):
        raise _fail(f"{path} not found: train first, e.g. `python -m helpers train dcgan --out {args.dir}`.")
    try:
        with open(os.path.join(args.dir, "config.json")) as f:
            cfg = json.load(f)
    except (OSError, ValueError) as err:
        raise _fail(f"{args.dir}/config.json could not be read ({err}); `sample` needs the folder `train` wrote.")
    try:  # a label out of range, or one for an unconditional run, is a ValueError with the reason
        with runtime.precision(cfg.get("policy", "float32")):  # the run's precision, for this call
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
    import numpy as np

    from . import data, metrics

    if not os.path.exists(args.file):
        raise _fail(f"{args.file} not found; write one with `python -m helpers sample RUN_DIR --out {args.file}`.")
    try:
        fake = data.check_images(np.load(args.file, allow_pickle=False))[..., 0]
    except ValueError as err:
        raise _fail(f"{args.file}: {err}")
    _, (real, _) = data.load_mnist(seed=0)
    if len(fake) < 10:
        raise _fail(f"{args.file} holds {len(fake)} images; evaluate at least 10 (1,000 or more for stable numbers).")
    result = metrics.evaluate(fake, real, subset_size=args.subset_size)
    print(f"{len(fake)} generated vs {len(real)} real held-out digits, features: {result['features']}")
    for key in ("fid", "kid", "is", "precision", "recall"):
        print(f"  {key:9s} {result[key]:.6g}")
    print(json.dumps({"file": args.file, **result}))
    return 0


def main(argv=None) -> int:
    from . import runtime

    runtime._tensorflow()  # import TensorFlow once, without its C++ start-up lines on stderr
    from .training import LOSSES, PENALTIES, RECIPES

    budget = runtime.budget()
    fmt = argparse.RawDescriptionHelpFormatter
    ap = argparse.ArgumentParser(prog="python -m helpers", description=__doc__, formatter_class=fmt)
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model on MNIST", formatter_class=fmt, epilog=TRAIN_EPILOG,
                       description="Train a DCGAN or a VAE, or their class-conditional versions (cgan, cvae), "
                                   "with the book's recipe (helpers.training.RECIPES).")
    t.add_argument("kind", choices=sorted(RECIPES), help="the model")
    t.add_argument("--out", required=True, help="run folder (created)")

    def default(key):
        return " / ".join(f"{k} {RECIPES[k][key] if key != 'steps' else RECIPES[k]['steps'][budget]}"
                          for k in sorted(RECIPES))

    t.add_argument("--steps", type=_positive,
                   help=f"train until this step; default: the recipe for the budget in force ({budget}): "
                        f"{default('steps')}")
    t.add_argument("--batch-size", type=_positive, help=f"images per step; default: {default('batch_size')}")
    t.add_argument("--seed", type=int, help="seed of the weights, noise and data order; default: 0")
    t.add_argument("--log-every", type=_positive,
                   help=f"steps between log rows, checkpoints and sample grids; default: {default('log_every')}")
    t.add_argument("--resume", action="store_true", help="continue or extend the run in --out (see below)")
    t.add_argument("--train-size", type=_positive, help="train on N images, stratified by class; default: all")
    t.add_argument("--augment", help="dcgan only: differentiable augmentation of everything the discriminator "
                                     "sees, e.g. translation,cutout; default: none")
    t.add_argument("--width", type=_positive, help=f"network width; default: {default('width')}")
    t.add_argument("--prior", choices=("normal", "mixture"),
                   help="vae only: sample codes from N(0, I), or from a Gaussian mixture fitted to the training "
                        f"digits' codes after training; default: {RECIPES['vae'].get('prior', 'normal')}")
    t.add_argument("--lr", type=_positive_float, help=f"learning rate; default: {default('lr')}")
    t.add_argument("--loss", choices=LOSSES, help="dcgan only: the GAN loss; default: non_saturating")
    t.add_argument("--penalty", choices=[p for p in PENALTIES if p],
                   help="dcgan only: a gradient penalty on the discriminator (which then has no batch norm); "
                        "default: none")
    t.add_argument("--penalty-weight", type=_positive_float, help="weight of --penalty; default: 10")
    t.add_argument("--d-steps", type=_positive, help="dcgan only: discriminator updates per generator update, each "
                                                     "on its own batch; default: 1")
    t.add_argument("--spectral-norm", action="store_true",
                   help="dcgan only: spectral normalisation in the discriminator (and no batch norm there)")
    t.add_argument("--d-lr", type=_positive_float, help="dcgan only: the discriminator's learning rate; default: --lr")
    t.add_argument("--g-lr", type=_positive_float, help="dcgan only: the generator's learning rate; default: --lr")
    t.add_argument("--clipnorm", type=_positive_float,
                   help="dcgan only: clip the norm of each gradient tensor to this value; default: no clipping")
    t.add_argument("--corrupt", help="corrupt the training images: KIND:LEVEL, KIND one of noise, blur, occlude; "
                                     "default: none")
    t.add_argument("--imbalance", help="keep these fractions of each class: ten comma-separated values; default: all")
    t.add_argument("--duplicate", help="repeat one training image: INDEX:COPIES; default: none")
    t.add_argument("--clusters", type=int, help="dcgan only: self-conditioning on K k-means clusters of the training "
                                                "pixels (0: the plain DCGAN); default: the recipe's")
    t.add_argument("--canary", type=_positive, help="add COPIES copies of the marked training digit of the "
                                                    "challenges chapter (helpers.experiments.canary); default: none")
    s = sub.add_parser("sample", help="write generated digits to a .npy file", epilog=EXIT_CODES,
                       description="Write N generated digits (for the VAE: decoded means of prior samples) as a "
                                   "uint8 array (N, 28, 28), 0-255, white on black like MNIST.")
    s.add_argument("dir", help="run folder written by train")
    s.add_argument("--n", type=_positive, default=1000, help="number of digits; default: 1000")
    s.add_argument("--out", required=True, help="output .npy file")
    s.add_argument("--seed", type=int, default=0, help="noise seed; default: 0")
    s.add_argument("--label", type=int, help="cgan/cvae only: the digit to generate; default: the classes in turn "
                                             "(0, 1, ..., 9, 0, ...). A conditional run also writes the classes "
                                             "asked for beside --out, as FILE.labels.npy")
    e = sub.add_parser("evaluate", help="score a .npy file of generated digits against real held-out digits",
                       epilog=EXIT_CODES + " The last line printed is one JSON object.",
                       description="FID, KID, IS, precision and recall on the shipped classifier's features, "
                                   "against the real held-out digits.")
    e.add_argument("file", help="uint8 array (N, 28, 28) as written by sample")
    e.add_argument("--subset-size", type=_positive, default=1000,
                   help="KID subset size (capped at the set sizes); default: 1000")
    args = ap.parse_args(argv)
    return {"train": train, "sample": sample, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
