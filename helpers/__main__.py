"""Command line for long runs outside notebooks.

    python -m helpers train dcgan|vae --out DIR [--steps N] [--batch-size B] [--seed S] [--resume]
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
Introduced in the hands-on GAN chapter; the VAE recipe in the hands-on VAE chapter, evaluate in the
evaluation chapter.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

STEPS_PER_EXECUTION = 10
# name: (steps for the full / cpu / smoke budgets, batch size, log interval in steps)
RECIPES = {
    "dcgan": {"steps": {"full": 10_000, "cpu": 1_800, "smoke": 20}, "batch_size": 128, "log_every": 100,
              "z_dim": 64, "width": 32, "lr": 2e-4},
    "vae": {"steps": {"full": 10_000, "cpu": 1_200, "smoke": 20}, "batch_size": 128, "log_every": 100,
            "z_dim": 16, "width": 32, "lr": 1e-3},
}


def _build(kind: str, cfg: dict):
    from . import models, training

    if kind == "dcgan":
        model = training.make_gan(
            models.dcgan_generator(cfg["z_dim"], cfg["width"]), models.dcgan_discriminator(cfg["width"]),
            seed=cfg["seed"], lr=cfg["lr"], jit_compile=cfg["jit_compile"],
            steps_per_execution=cfg["steps_per_execution"],
        )
        return model, model.generator
    if kind == "vae":
        import keras

        model = training.make_vae(
            models.vae_encoder(cfg["z_dim"], cfg["width"]), models.vae_decoder(cfg["z_dim"], cfg["width"]),
            seed=cfg["seed"], lr=cfg["lr"], jit_compile=cfg["jit_compile"],
            steps_per_execution=cfg["steps_per_execution"],
        )
        sampler = keras.Sequential(
            [keras.Input((cfg["z_dim"],)), model.decoder, keras.layers.Activation("sigmoid", dtype="float32")],
            name="vae_sampler",
        )
        return model, sampler
    raise SystemExit(f"unknown model {kind!r}; choose one of {', '.join(RECIPES)}")


def train(args) -> int:
    import keras

    from . import data, runtime, training

    recipe = RECIPES[args.kind]
    runtime.seed_everything(args.seed)
    choices = training.device_choices()
    cfg = {
        "kind": args.kind,
        "steps": args.steps or recipe["steps"][runtime.budget()],
        "batch_size": args.batch_size or recipe["batch_size"],
        "seed": args.seed,
        "z_dim": recipe["z_dim"],
        "width": recipe["width"],
        "lr": recipe["lr"],
        "scale": {"dcgan": training.GAN, "vae": training.VAE}[args.kind].scale,  # the model's pixel range
        **choices,
    }
    if cfg["steps"] < 1 or cfg["batch_size"] < 1:
        raise SystemExit("--steps and --batch-size must be positive")
    out = args.out
    ckpt = os.path.join(out, "checkpoint")
    cfg_path = os.path.join(out, "config.json")
    if os.path.exists(cfg_path):
        with open(cfg_path) as f:
            old = json.load(f)
        if not args.resume:
            raise SystemExit(f"{out} already holds a run; pass --resume to continue it, or choose another --out.")
        for key in ("kind", "batch_size", "seed", "z_dim", "width", "policy"):
            if old.get(key) != cfg[key]:
                raise SystemExit(f"--resume: {key} was {old.get(key)!r} in {out}, now {cfg[key]!r}; they must match.")
    # Several steps per call of the compiled train function: less Python per step (measured with
    # benchmarks/train_step_speed.py --steps-per-execution). Callbacks see every block's last step.
    cfg["steps_per_execution"] = min(STEPS_PER_EXECUTION, cfg["steps"], args.log_every or recipe["log_every"])
    os.makedirs(out, exist_ok=True)
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=1)

    keras.mixed_precision.set_global_policy(cfg["policy"])
    model, generator = _build(args.kind, cfg)
    spe = min(args.log_every or recipe["log_every"], cfg["steps"])
    epochs = math.ceil(cfg["steps"] / spe)
    initial_epoch = training.restore(model, ckpt) if args.resume else 0
    if initial_epoch >= epochs:
        print(f"{out} has already trained {initial_epoch * spe} steps (asked for {cfg['steps']}).")
    (x_train, _), (x_test, _) = data.load_mnist(seed=0)
    ds = data.make_dataset(x_train, batch_size=cfg["batch_size"], scale=cfg["scale"], seed=args.seed).repeat()
    held_out = None
    if args.kind == "vae":  # the held-out negative ELBO and its parts, once per log interval
        held_out = data.make_dataset(x_test, batch_size=500, scale=cfg["scale"], shuffle=False, drop_remainder=False)
    ds = ds.skip(initial_epoch * spe)  # the same batches, in the same order, as an uninterrupted run
    print(
        f"training {args.kind}: {cfg['steps']} steps of batch {cfg['batch_size']} "
        f"(budget {runtime.budget()}, {runtime.detect_device()}, policy {cfg['policy']}, "
        f"XLA {'on' if cfg['jit_compile'] else 'off'})" + (f", resuming at step {initial_epoch * spe}" if initial_epoch else "")
    )
    callbacks = [
        training.NaNGuard(ckpt),
        training.CSVLog(os.path.join(out, "log.csv"), cfg["batch_size"], spe),
        training.SampleGrid(spe, out_dir=os.path.join(out, "samples")),
        training.Checkpoint(ckpt),
    ]
    start = time.perf_counter()
    try:
        model.fit(ds, steps_per_epoch=spe, epochs=epochs, initial_epoch=initial_epoch, validation_data=held_out,
                  shuffle=False, callbacks=callbacks, verbose=1 if sys.stdout.isatty() else 2)
    except KeyboardInterrupt:
        print(f"\ninterrupted; the last checkpoint is in {ckpt}. Continue with the same command plus --resume.")
        return 130
    except training.TrainingDiverged as err:
        print(f"\nerror: {err}", file=sys.stderr)
        return 3
    generator.save(os.path.join(out, "generator.keras"))
    done = (epochs - initial_epoch) * spe
    wall = time.perf_counter() - start
    print(f"done: {done} steps in {wall:.0f} s ({done * cfg['batch_size'] / wall:.0f} images/s); wrote {out}")
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
