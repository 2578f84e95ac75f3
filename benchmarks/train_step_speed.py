"""Images per second of a helpers train step against a plain tf.GradientTape loop.

    python benchmarks/train_step_speed.py [--model gan|diffusion] [--steps 150] [--batch-size 128] [--width 32]
                                          [--rounds 3] [--steps-per-execution 10]

``--model gan`` (chapter 3): the plain loop has the structure of the TensorFlow DCGAN tutorial, a
@tf.function train_step with two tapes and two Adam optimizers, iterating over the dataset in Python.
``--model diffusion`` (chapter 11): the plain loop is keras-io's DDIM step written as a @tf.function (noise,
a noise level per image, one tape on the simple loss, AdamW, the moving average of the weights).
Both sides use the same networks (helpers.models), batch size, data pipeline and device choices; each is
warmed up, then timed over the same number of steps, alternating the two ``--rounds`` times. Prints the
ratio helpers / plain.
"""
import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from helpers import data, diffusion, models, runtime, training
from lab import experiments, families, settings


def plain_loop(generator, discriminator, ds, steps, z_dim, jit=False):
    g_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    d_opt = keras.optimizers.Adam(2e-4, beta_1=0.5)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)

    @tf.function(jit_compile=jit)  # the same XLA choice as the helpers side, so the ratio is framework overhead
    def train_step(images):
        noise = tf.random.normal([tf.shape(images)[0], z_dim])
        with tf.GradientTape() as gen_tape, tf.GradientTape() as disc_tape:
            generated = generator(noise, training=True)
            real_output = discriminator(images, training=True)
            fake_output = discriminator(generated, training=True)
            gen_loss = bce(tf.ones_like(fake_output), fake_output)
            disc_loss = bce(tf.ones_like(real_output), real_output) + bce(tf.zeros_like(fake_output), fake_output)
        g_opt.apply_gradients(zip(gen_tape.gradient(gen_loss, generator.trainable_variables), generator.trainable_variables))
        d_opt.apply_gradients(zip(disc_tape.gradient(disc_loss, discriminator.trainable_variables), discriminator.trainable_variables))
        return gen_loss

    return python_loop(train_step, ds)


def python_loop(train_step, ds):
    """``run(n)``: ``n`` calls of a compiled ``train_step`` on the next batches, iterated in Python."""
    it = iter(ds)

    def run(n):
        for _ in range(n):
            out = train_step(next(it))
        float(out)  # wait for the last step

    return run


def fit_loop(model, ds):
    """``run(n)``: ``n`` steps of a compiled helpers model through Keras ``fit``."""
    def run(n):
        model.fit(ds, steps_per_epoch=n, epochs=1, shuffle=False, verbose=0)

    return run


def plain_diffusion_loop(network, ds, jit=False, ema=0.999):
    optimizer = keras.optimizers.AdamW(2e-3, weight_decay=1e-4)
    average = keras.models.clone_model(network)
    average.set_weights(network.get_weights())

    @tf.function(jit_compile=jit)
    def train_step(images):
        noise = tf.random.normal(tf.shape(images))
        alpha_bar = diffusion.signal_share(tf.random.uniform((tf.shape(images)[0], 1, 1, 1)))
        noisy = tf.sqrt(alpha_bar) * images + tf.sqrt(1 - alpha_bar) * noise
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(noise - tf.cast(network([noisy, 1 - alpha_bar], training=True), tf.float32)))
        optimizer.apply_gradients(zip(tape.gradient(loss, network.trainable_variables), network.trainable_variables))
        for w, avg in zip(network.weights, average.weights):
            avg.assign(ema * avg + (1 - ema) * tf.cast(w, avg.dtype))
        return loss

    return python_loop(train_step, ds)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=("gan", "diffusion"), default="gan")
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch-size", type=int, default=None, help="default: the recipe's (gan 128, diffusion 64)")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--steps-per-execution", type=int, default=settings.STEPS_PER_EXECUTION,
                    help="Keras compile option for fit (default: what `python -m lab train` uses)")
    args = ap.parse_args()
    args.batch_size = args.batch_size or experiments.RECIPES["dcgan" if args.model == "gan" else "diffusion"]["batch_size"]
    runtime.seed_everything(0)
    choices = runtime.device_choices()
    keras.mixed_precision.set_global_policy(choices["policy"])
    (x, _), _ = data.load_mnist(verbose=False)
    ds = data.make_dataset(x, batch_size=args.batch_size).repeat()
    z_dim, w = 64, args.width
    runs = {
        "plain tf.GradientTape loop": plain_diffusion_loop(models.unet((w, 2 * w, 3 * w)), ds, choices["jit_compile"]),
        "helpers fit": fit_loop(families.make_diffusion(models.unet((w, 2 * w, 3 * w)), lr=2e-3,
                                                        jit_compile=choices["jit_compile"],
                                                        steps_per_execution=args.steps_per_execution), ds),
    } if args.model == "diffusion" else {
        "plain tf.GradientTape loop": plain_loop(models.dcgan_generator(z_dim, args.width),
                                                 models.dcgan_discriminator(args.width), ds, args.steps, z_dim,
                                                 choices["jit_compile"]),
        "helpers fit": fit_loop(training.make_gan(models.dcgan_generator(z_dim, args.width),
                                                  models.dcgan_discriminator(args.width), jit_compile=choices["jit_compile"],
                                                  steps_per_execution=args.steps_per_execution), ds),
    }
    for run in runs.values():
        run(10)  # trace and warm up
    times = {k: [] for k in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            t = time.perf_counter()
            run(args.steps)
            times[name].append(time.perf_counter() - t)
    print(f"{args.model}: {runtime.detect_device()}, policy {choices['policy']}, batch {args.batch_size}, "
          f"width {args.width}, {args.steps} steps x {args.rounds} rounds")
    ips = {}
    for name, ts in times.items():
        ips[name] = args.steps * args.batch_size / np.median(ts)
        print(f"  {name:28s} {ips[name]:8.0f} images/s (median of {[round(t, 2) for t in ts]} s)")
    ratio = ips["helpers fit"] / ips["plain tf.GradientTape loop"]
    print(f"ratio helpers / plain: {ratio:.2f}")


if __name__ == "__main__":
    main()
