"""Command line for long runs outside notebooks.

    python -m helpers train dcgan|vae --out DIR [--steps N] [--batch-size B] [--seed S] [--resume]
        [--train-size N] [--augment translation,cutout] [--width W] [--lr LR] [--corrupt KIND:LEVEL]
        [--imbalance S0,...,S9] [--duplicate INDEX:COPIES]
    python -m helpers sample DIR --n N --out FILE.npy [--seed S]
    python -m helpers evaluate FILE.npy [--subset-size K]

``train`` writes DIR/config.json, DIR/log.csv (one row per logged step; the VAE's rows add the held-out
losses, ``val_*``), DIR/samples/*.png (fixed-noise grids), DIR/checkpoint/ (the whole training state, for
--resume) and DIR/generator.keras at the end (for the VAE: the decoder, outputting pixel means).
``sample`` writes N generated digits (for the VAE: decoded means of prior samples) as a uint8 array
(N, 28, 28), 0-255, white on black like MNIST.
Without --steps, the budget in force (GENAI_BUDGET, else full on a GPU and cpu on a CPU) decides.
``evaluate`` scores such a file against real held-out digits (FID, KID, IS, precision, recall on the
shipped classifier's features) and prints one JSON line last.
The data flags train on a changed training set, exactly as a run of the data chapter's grids
(helpers.experiments) does. Introduced in the hands-on GAN chapter; the VAE recipe in the hands-on VAE
chapter, evaluate in the evaluation chapter, the data flags in the data chapter.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from .experiments import RECIPES


def _data_settings(args) -> dict:
    """The data-condition flags as configuration values (see helpers.experiments.config)."""
    def pair(text, flag, cast):
        parts = text.split(":")
        if len(parts) != 2:
            raise SystemExit(f"{flag} takes two values separated by ':', got {text!r}")
        try:
            return [parts[0], float(parts[1])] if cast is str else [int(parts[0]), int(parts[1])]
        except ValueError:
            raise SystemExit(f"{flag}: could not read {text!r}")

    out = {"train_size": args.train_size, "augment": args.augment, "width": args.width, "lr": args.lr}
    if args.corrupt:
        out["corrupt"] = pair(args.corrupt, "--corrupt", str)
    if args.duplicate:
        out["duplicate"] = pair(args.duplicate, "--duplicate", int)
    if args.imbalance:
        try:
            out["imbalance"] = [float(v) for v in args.imbalance.split(",")]
        except ValueError:
            raise SystemExit(f"--imbalance takes 10 comma-separated fractions, got {args.imbalance!r}")
    return out


def train(args) -> int:
    from . import experiments, runtime, training

    out = args.out
    cfg_path = os.path.join(out, "config.json")
    settings = {"steps": args.steps, "batch_size": args.batch_size, "seed": args.seed, "log_every": args.log_every,
                **_data_settings(args)}
    try:
        cfg = experiments.config(args.kind, **settings)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            old = json.load(f)
        if not args.resume:
            raise SystemExit(f"{out} already holds a run; pass --resume to continue it, or choose another --out.")
        for key in ("kind", "batch_size", "seed", "z_dim", "width", "lr", "policy", "augment", *experiments.DATA_KEYS):
            if old.get(key) != cfg[key]:
                raise SystemExit(f"--resume: {key} was {old.get(key)!r} in {out}, now {cfg[key]!r}; they must match.")
    try:
        x_train, _, _ = experiments.training_data(cfg, verbose=True)
    except ValueError as err:
        raise SystemExit(f"error: {err}")
    print(
        f"training {args.kind}: {cfg['steps']} steps of batch {cfg['batch_size']} on {len(x_train):,} images "
        f"(budget {runtime.budget()}, {runtime.detect_device()}, policy {cfg['policy']}, "
        f"XLA {'on' if cfg['jit_compile'] else 'off'}"
        + (f", augment {cfg['augment']}" if cfg["augment"] else "") + ")"
    )
    try:
        _, _, seconds = experiments.train(cfg, out, resume=args.resume, verbose=1 if sys.stdout.isatty() else 2)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the last checkpoint is in {out}/checkpoint. Continue with the same command plus --resume.")
        return 130
    except training.TrainingDiverged as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 3
    print(f"done: {cfg['steps']} steps in {seconds:.0f} s of training; wrote {out}")
    return 0


def sample(args) -> int:
    import keras
    import numpy as np

    from . import data

    path = os.path.join(args.dir, "generator.keras")
    if not os.path.exists(path):
        raise SystemExit(f"{path} not found: train first, e.g. `python -m helpers train dcgan --out {args.dir}`.")
    if args.n < 1:
        raise SystemExit("--n must be positive")
    with open(os.path.join(args.dir, "config.json")) as f:
        cfg = json.load(f)
    keras.mixed_precision.set_global_policy(cfg.get("policy", "float32"))
    generator = keras.models.load_model(path, compile=False)
    z = np.random.default_rng(args.seed).standard_normal((args.n, generator.input_shape[-1])).astype("float32")
    images = np.concatenate([np.asarray(generator(z[i : i + 1000], training=False), np.float32)
                             for i in range(0, args.n, 1000)])
    images = data.to_uint8(images, cfg.get("scale", "tanh"))
    np.save(args.out, images)
    print(f"wrote {args.out}: {images.shape} {images.dtype}")
    return 0


def evaluate(args) -> int:
    import numpy as np

    from . import data, metrics

    if not os.path.exists(args.file):
        raise SystemExit(f"{args.file} not found; write one with `python -m helpers sample RUN_DIR --out {args.file}`.")
    try:
        fake = data.check_images(np.load(args.file, allow_pickle=False))[..., 0]
    except ValueError as err:
        raise SystemExit(f"{args.file}: {err}")
    _, (real, _) = data.load_mnist(seed=0)
    if len(fake) < 10:
        raise SystemExit(f"{args.file} holds {len(fake)} images; evaluate at least 10 (1,000 or more for stable numbers).")
    result = metrics.evaluate(fake, real, subset_size=args.subset_size)
    print(f"{len(fake)} generated vs {len(real)} real held-out digits, features: {result['features']}")
    for key in ("fid", "kid", "is", "precision", "recall"):
        print(f"  {key:9s} {result[key]:.6g}")
    print(json.dumps({"file": args.file, **result}))
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m helpers", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a model on MNIST")
    t.add_argument("kind", choices=sorted(RECIPES))
    t.add_argument("--out", required=True, help="run folder")
    t.add_argument("--steps", type=int, help="training steps (default: from the budget)")
    t.add_argument("--batch-size", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    t.add_argument("--log-every", type=int, help="steps between log rows, sample grids and checkpoints")
    t.add_argument("--train-size", type=int, help="train on N images, stratified by class (default: all)")
    t.add_argument("--augment", help="dcgan: differentiable augmentation of what the discriminator sees, "
                                     "e.g. translation,cutout")
    t.add_argument("--width", type=int, help="network width (default: the recipe's)")
    t.add_argument("--lr", type=float, help="learning rate (default: the recipe's)")
    t.add_argument("--corrupt", help="corrupt the training images: KIND:LEVEL, KIND one of noise, blur, occlude")
    t.add_argument("--imbalance", help="keep these fractions of each class: ten comma-separated values")
    t.add_argument("--duplicate", help="repeat one training image: INDEX:COPIES")
    s = sub.add_parser("sample", help="write generated digits to a .npy file")
    s.add_argument("dir", help="run folder written by train")
    s.add_argument("--n", type=int, default=1000)
    s.add_argument("--out", required=True, help="output .npy file")
    s.add_argument("--seed", type=int, default=0)
    e = sub.add_parser("evaluate", help="score a .npy file of generated digits against real held-out digits")
    e.add_argument("file", help="uint8 array (N, 28, 28) as written by sample")
    e.add_argument("--subset-size", type=int, default=1000, help="KID subset size (capped at the set sizes)")
    args = ap.parse_args(argv)
    from . import runtime

    runtime._tensorflow()  # import TensorFlow once, without its C++ start-up lines on stderr
    return {"train": train, "sample": sample, "evaluate": evaluate}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
