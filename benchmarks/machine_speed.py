"""How fast this machine trains the book's two main networks, with and without bfloat16: images per second
of one DCGAN step (chapter 3's recipe: width 64, batch 128) and one U-Net diffusion step (chapter 11's:
widths 32/64/96, batch 64), each in float32 and in mixed_bfloat16, through Keras ``fit`` as the chapters
train them.

    python benchmarks/machine_speed.py [--steps 10] [--save book/machine_speed.json]

A CPU without native bfloat16 (most laptops, Colab's CPU runtimes) runs mixed_bfloat16 emulated; the ratio
bfloat16 / float32 printed per network says what that costs here. ``--save`` writes the numbers with the
device for ``scripts/chapter_times.py``, which prints them in the introduction beside the chapter times.
"""
import argparse
import json
import time

import keras

from helpers import data, models, runtime, training
from lab import families, settings

NETWORKS = {
    "DCGAN step (chapter 3)": ("dcgan", lambda: training.make_gan(
        models.dcgan_generator(64, 64), models.dcgan_discriminator(64), jit_compile=False, steps_per_execution=2)),
    "U-Net diffusion step (chapter 11)": ("diffusion", lambda: families.make_diffusion(
        models.unet((32, 64, 96)), lr=2e-3, jit_compile=False, steps_per_execution=2)),
}


def images_per_second(build, batch: int, steps: int, x) -> float:
    ds = data.make_dataset(x, batch_size=batch).repeat()
    model = build()
    model.fit(ds, steps_per_epoch=2, epochs=1, verbose=0)  # trace and warm up (bfloat16 without hardware is slow)
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=steps, epochs=1, verbose=0)
    return steps * batch / (time.perf_counter() - start)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per network and precision (even)")
    ap.add_argument("--save", help="write the numbers to this JSON file")
    args = ap.parse_args()
    (x, _), _ = data.load_mnist(source="offline", verbose=False)
    device = runtime.detect_device()
    result = {"device": str(device), "bf16": device.bf16, "images_per_s": {}}
    print(f"{device}; images per second, {args.steps} steps each after a warm-up")
    for name, (kind, build) in NETWORKS.items():
        speeds = {}
        for policy in ("float32", "mixed_bfloat16"):
            runtime.seed_everything(0)
            with runtime.precision(policy):
                speeds[policy] = images_per_second(build, settings.RECIPES[kind]["batch_size"], args.steps, x)
            keras.backend.clear_session()
        result["images_per_s"][name] = speeds
        print(f"  {name:34s} float32 {speeds['float32']:7.0f}   mixed_bfloat16 {speeds['mixed_bfloat16']:7.0f}"
              f"   (bfloat16 / float32: {speeds['mixed_bfloat16'] / speeds['float32']:.2f})")
    if args.save:
        with open(args.save, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
