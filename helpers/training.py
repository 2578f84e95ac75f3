"""Keras-3-native training: ``GAN`` and ``VAE`` models with their own ``train_step``, and the callbacks
every long run uses (fixed-noise sample grids, CSV log, checkpoint/resume, NaN guard).

Introduced in the hands-on GAN chapter (``03_gan_mnist``); the VAE chapters (``04_vae_math``,
``05_vae_mnist``) add the VAE's loss terms and model and reuse the callbacks unchanged.
"""
from __future__ import annotations

import csv
import json
import math
import os
import time

import numpy as np
import keras
import tensorflow as tf

from . import data, runtime


# --------------------------------------------------------------------------------------------- devices
def device_choices(device: runtime.Device | None = None) -> dict:
    """Precision and XLA choices per device, from measurements (see the hands-on GAN chapter):
    bfloat16 mixed precision wherever the hardware computes in bf16 (about 1.3x faster on a CPU with
    AVX512_BF16); XLA on GPUs only (it was about 2x slower on a 2-core CPU)."""
    device = device or runtime.detect_device()
    return {
        "policy": "mixed_bfloat16" if device.bf16 else "float32",
        "jit_compile": device.kind == "gpu",
    }


def _replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def _bce(labels, logits):
    """Mean binary cross-entropy on logits, in float32 whatever the compute precision."""
    logits = tf.cast(logits, tf.float32)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


# ------------------------------------------------------------------------------------ augmentation
AUGMENTATIONS = ("translation", "cutout")


def parse_augment(augment) -> tuple[str, ...]:
    """``"translation,cutout"`` (or a list, or ``None`` / ``""`` for none) -> a validated tuple."""
    if augment is None:
        return ()
    names = [a.strip() for a in (augment.split(",") if isinstance(augment, str) else augment) if a.strip()]
    for name in names:
        if name not in AUGMENTATIONS:
            hint = (" Flips and colour changes are left out on purpose: digits are not mirror-symmetric "
                    "and are grey." if name in ("flip", "color", "colour", "brightness") else "")
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}.{hint}")
    return tuple(dict.fromkeys(names))


def translate(x, max_shift: int, fill, seed):
    """Shift each image of a ``(B, H, W, C)`` batch by its own random whole number of pixels in
    ``[-max_shift, max_shift]`` along each axis, filling the uncovered border with ``fill``.
    Differentiable in ``x`` (a gather and a select). Introduced in the data chapter."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    shifts = keras.random.randint((b, 2), -max_shift, max_shift + 1, seed=seed, dtype="int32")
    rows = tf.range(h)[None, :] - shifts[:, :1]  # source row of every output row, per image
    cols = tf.range(w)[None, :] - shifts[:, 1:]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    x = tf.gather(x, tf.clip_by_value(rows, 0, h - 1), axis=1, batch_dims=1)
    x = tf.gather(x, tf.clip_by_value(cols, 0, w - 1), axis=2, batch_dims=1)
    return tf.where(inside[..., None], x, tf.cast(fill, x.dtype))


def cutout(x, size: int, fill, seed):
    """Set one ``size`` x ``size`` square per image, centred at a random pixel (it may hang over the
    edge), to ``fill``. Differentiable in ``x``. Introduced in the data chapter."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    centre = keras.random.randint((b, 2), 0, 2**30, seed=seed, dtype="int32") % tf.stack([h, w])
    top, left = centre[:, :1] - size // 2, centre[:, 1:] - size // 2
    r, c = tf.range(h)[None, :], tf.range(w)[None, :]
    hole = ((r >= top) & (r < top + size))[:, :, None] & ((c >= left) & (c < left + size))[:, None, :]
    return tf.where(hole[..., None], tf.cast(fill, x.dtype), x)


def diff_augment(x, policy, fill, seed):
    """Differentiable augmentation (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN
    Training"): the same random transformations applied to every image the discriminator sees, real and
    generated, so the generator still receives gradients through them. ``translation`` shifts by up to
    1/8 of the side, ``cutout`` blanks a square of half the side, as in the paper; ``fill`` is the
    background (black) in the model's pixel scale. Introduced in the data chapter."""
    side = x.shape[1]
    for name in policy:
        if name == "translation":
            x = translate(x, int(side / 8 + 0.5), fill, seed)
        elif name == "cutout":
            x = cutout(x, int(side / 2 + 0.5), fill, seed)
    return x


# ------------------------------------------------------------------------------------------------- GAN
class GAN(keras.Model):
    """A GAN as one ``keras.Model``: ``fit`` makes one discriminator and one generator update per batch,
    both from the same forward pass (as the TensorFlow DCGAN tutorial does; Goodfellow et al.'s
    Algorithm 1 recomputes the fakes' logits with the updated discriminator first, which costs one more
    forward pass per step). The discriminator must output logits.

    ``compile(d_optimizer, g_optimizer, g_loss="non_saturating" | "saturating", label_smoothing=0.0)``.
    ``label_smoothing`` is one-sided: real targets become ``1 - label_smoothing``, fake stay 0.
    ``augment="translation,cutout"`` passes every image the discriminator sees, real and fake, through
    :func:`diff_augment` (the data chapter); off by default.
    """

    scale = "tanh"  # generator outputs live in [-1, 1]

    def __init__(self, generator, discriminator, seed: int = 0, augment=None, **kwargs):
        super().__init__(**kwargs)
        self.augment = parse_augment(augment)
        self.generator = generator
        self.discriminator = discriminator
        self.z_dim = int(generator.input_shape[-1])
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")  # mean D(x) on real images
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")  # mean D(G(z)) on the step's fakes
        self.built = True  # both networks are built; fit must not probe call() with images

    def compile(self, d_optimizer, g_optimizer, g_loss="non_saturating", label_smoothing=0.0, **kwargs):
        super().compile(**kwargs)
        if g_loss not in ("non_saturating", "saturating"):
            raise ValueError(f"g_loss must be 'non_saturating' or 'saturating', got {g_loss!r}")
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        # Build the optimizer slots now, in the caller's (strategy) scope, not inside a replica step.
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        self.g_loss_kind, self.label_smoothing = g_loss, float(label_smoothing)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker]

    def optimizer_pairs(self):
        """(optimizer, network) pairs, for checkpointing."""
        return [(self.d_optimizer, self.discriminator), (self.g_optimizer, self.generator)]

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def generate(self, z):
        """Images in [-1, 1] for latent codes ``z`` (inference mode)."""
        return self.generator(z, training=False)

    def noise(self, n):
        return keras.random.normal((n, self.z_dim), seed=self.seed_generator)

    def train_step(self, real):
        if isinstance(real, tuple):
            real = real[0]
        n = tf.shape(real)[0]
        per_replica = 1.0 / _replicas()  # gradients are summed over replicas

        # One forward pass serves both players: the discriminator's gradient and the generator's
        # gradient (through the discriminator) are taken from it and applied together.
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            fake = self.generator(self.noise(n), training=True)
            if self.augment:  # the same kind of transformation for real and fake, each image its own draw
                background = -1.0 if self.scale == "tanh" else 0.0
                real = diff_augment(real, self.augment, background, self.seed_generator)
                fake = diff_augment(fake, self.augment, background, self.seed_generator)
            real_logits = self.discriminator(real, training=True)
            fake_logits = self.discriminator(fake, training=True)
            real_target = tf.fill(tf.shape(real_logits), 1.0 - self.label_smoothing)
            d_loss = _bce(real_target, real_logits) + _bce(tf.zeros_like(fake_logits, tf.float32), fake_logits)
            if self.g_loss_kind == "non_saturating":  # -log D(G(z))
                g_loss = _bce(tf.ones_like(fake_logits, tf.float32), fake_logits)
            else:  # log(1 - D(G(z))), the minimax form
                g_loss = -_bce(tf.zeros_like(fake_logits, tf.float32), fake_logits)
            d_scaled, g_scaled = d_loss * per_replica, g_loss * per_replica
        d_grads = d_tape.gradient(d_scaled, self.discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_scaled, self.generator.trainable_variables)
        self.d_optimizer.apply_gradients(zip(d_grads, self.discriminator.trainable_variables))
        self.g_optimizer.apply_gradients(zip(g_grads, self.generator.trainable_variables))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        self.d_real_tracker.update_state(tf.reduce_mean(tf.sigmoid(tf.cast(real_logits, tf.float32))))
        self.d_fake_tracker.update_state(tf.reduce_mean(tf.sigmoid(tf.cast(fake_logits, tf.float32))))
        return {m.name: m.result() for m in self.metrics}


def make_gan(generator, discriminator, seed: int = 0, lr: float = 2e-4, jit_compile: bool | None = None,
             augment=None, **compile_kwargs) -> GAN:
    """A compiled :class:`GAN` with the DCGAN paper's optimiser: Adam(lr=2e-4, beta_1=0.5) for both
    players. ``jit_compile=None`` takes the measured per-device choice (:func:`device_choices`)."""
    if jit_compile is None:
        jit_compile = device_choices()["jit_compile"]
    gan = GAN(generator, discriminator, seed=seed, augment=augment)
    gan.compile(keras.optimizers.Adam(lr, beta_1=0.5), keras.optimizers.Adam(lr, beta_1=0.5),
                jit_compile=jit_compile, **compile_kwargs)
    return gan


# ------------------------------------------------------------------------------------------------- VAE
def gaussian_kl(mean, log_var):
    """KL( N(mean, diag(exp(log_var))) || N(0, I) ) per example, in nats, in closed form:
    0.5 * sum_j (mean_j^2 + exp(log_var_j) - log_var_j - 1). Derived in the VAE math chapter."""
    mean, log_var = tf.cast(mean, tf.float32), tf.cast(log_var, tf.float32)
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - log_var - 1.0, axis=-1)


def bernoulli_nll(x, logits):
    """-log p(x|z) per example, in nats, for a decoder that puts a Bernoulli with the given logits on
    every pixel: the binary cross-entropy summed over pixels (not averaged). ``x`` in [0, 1]."""
    x, logits = tf.cast(x, tf.float32), tf.cast(logits, tf.float32)
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(x)[0], -1]), axis=1)


class VAE(keras.Model):
    """A variational autoencoder as one ``keras.Model``: a Gaussian encoder q(z|x) (outputs the mean and
    log-variance), the reparameterisation z = mean + exp(log_var / 2) * eps, a Bernoulli decoder p(x|z)
    (outputs logits), a standard normal prior. ``fit`` minimises ``recon + beta * kl`` averaged over the
    batch, one objective for both networks; ``evaluate`` reports the same terms on held-out data.

    Tracked (per example, in nats): ``loss`` (the objective), ``neg_elbo`` (= recon + kl; for binary
    pixels a bound on -log p(x), for the grey levels of MNIST a score to compare models by, since the
    Bernoulli likelihood is then not a normalised density: see the VAE math chapter), ``recon``
    (-E_q log p(x|z), one sample of z) and ``kl`` (KL(q(z|x) || p(z)), closed form).
    """

    scale = "unit"  # images live in [0, 1]

    def __init__(self, encoder, decoder, beta: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.z_dim = int(decoder.input_shape[-1])
        if int(encoder.output_shape[-1]) != 2 * self.z_dim:
            raise ValueError(
                f"the encoder must output 2 * latent_dim = {2 * self.z_dim} numbers (mean and log-variance) "
                f"for a decoder with latent_dim {self.z_dim}; it outputs {encoder.output_shape[-1]}"
            )
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("loss", "neg_elbo", "recon", "kl")]
        self.built = True

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)  # in the caller's (strategy) scope

    @property
    def metrics(self):
        return self.trackers

    def optimizer_pairs(self):
        return [(self.optimizer, self)]

    def encode(self, x, training=False):
        """Mean and log-variance of q(z|x), float32, each ``(B, latent_dim)``."""
        mean, log_var = tf.split(tf.cast(self.encoder(x, training=training), tf.float32), 2, axis=-1)
        return mean, log_var

    def sample_z(self, mean, log_var):
        """The reparameterisation trick: a sample of q(z|x) that is a differentiable function of
        mean and log_var, with the randomness in eps ~ N(0, I)."""
        eps = keras.random.normal((tf.shape(mean)[0], self.z_dim), seed=self.seed_generator)
        return mean + tf.exp(0.5 * log_var) * eps

    def generate(self, z):
        """Decoded means (pixel probabilities in [0, 1]) for latent codes ``z``."""
        return tf.sigmoid(tf.cast(self.decoder(z, training=False), tf.float32))

    def call(self, x, training=False):
        """Reconstructions: the decoded mean at z = mean of q(z|x)."""
        return self.generate(self.encode(x, training=training)[0])

    def _terms(self, x, training):
        mean, log_var = self.encode(x, training=training)
        logits = self.decoder(self.sample_z(mean, log_var), training=training)
        recon = tf.reduce_mean(bernoulli_nll(x, logits))
        kl = tf.reduce_mean(gaussian_kl(mean, log_var))
        return recon + self.beta * kl, recon, kl

    def _record(self, loss, recon, kl):
        for tracker, value in zip(self.trackers, (loss, recon + kl, recon, kl)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.trackers}

    def train_step(self, x):
        if isinstance(x, tuple):
            x = x[0]
        with tf.GradientTape() as tape:
            loss, recon, kl = self._terms(x, training=True)
            scaled = loss / _replicas()  # gradients are summed over replicas
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(zip(grads, self.trainable_variables))
        return self._record(loss, recon, kl)

    def test_step(self, x):
        if isinstance(x, tuple):
            x = x[0]
        return self._record(*self._terms(x, training=False))


def make_vae(encoder, decoder, beta: float = 1.0, seed: int = 0, lr: float = 1e-3,
             jit_compile: bool | None = None, **compile_kwargs) -> VAE:
    """A compiled :class:`VAE` with Adam(lr). ``jit_compile=None`` takes :func:`device_choices`'."""
    if jit_compile is None:
        jit_compile = device_choices()["jit_compile"]
    vae = VAE(encoder, decoder, beta=beta, seed=seed)
    vae.compile(keras.optimizers.Adam(lr), jit_compile=jit_compile, **compile_kwargs)
    return vae


# ------------------------------------------------------------------------------------------- callbacks
class SampleGrid(keras.callbacks.Callback):
    """Generate images from one fixed batch of latent codes every ``every`` epochs; keep them (for
    animations) and optionally save PNG grids to ``out_dir``. Works for any model with ``generate(z)``,
    ``z_dim`` and ``scale``."""

    def __init__(self, steps_per_epoch: int, n: int = 64, every: int = 1, out_dir: str | None = None,
                 seed: int = 1234):
        super().__init__()
        self.steps_per_epoch, self.n, self.every, self.out_dir, self.seed = steps_per_epoch, n, every, out_dir, seed
        self.grids, self.steps = [], []

    def on_train_begin(self, logs=None):
        self.z = np.random.default_rng(self.seed).standard_normal((self.n, self.model.z_dim)).astype("float32")

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every:
            return
        images = data.to_uint8(np.asarray(self.model.generate(self.z), dtype=np.float32), self.model.scale)
        step = (epoch + 1) * self.steps_per_epoch
        self.grids.append(images)
        self.steps.append(step)
        if self.out_dir:
            # matplotlib.image, not pyplot: saving a PNG must not switch a notebook's backend (an earlier
            # version called matplotlib.use("Agg") here, and every later figure of the notebook vanished)
            from matplotlib import image

            from . import plotting

            os.makedirs(self.out_dir, exist_ok=True)
            image.imsave(os.path.join(self.out_dir, f"samples_{step:06d}.png"), plotting.tile(images), cmap="gray")


class TrainingDiverged(FloatingPointError):
    """Raised by :class:`NaNGuard` when a loss becomes NaN or infinite."""


class NaNGuard(keras.callbacks.Callback):
    """Stop training with a clear message as soon as a logged loss is NaN or infinite, before any
    checkpoint can save the broken weights."""

    def __init__(self, checkpoint_dir: str | None = None):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir
        self._first_epoch = self._epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._first_epoch is None:
            self._first_epoch = epoch
        self._epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the last step done (several per call with steps_per_execution > 1)
        self._batches = (self._epoch - self._first_epoch) * (self.params.get("steps") or 0) + batch + 1
        bad = {k: float(v) for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            self.model.stop_training = True
            where = (
                f" The last good checkpoint is in {self.checkpoint_dir}; resume from it with a lower "
                "learning rate." if self.checkpoint_dir else ""
            )
            raise TrainingDiverged(
                f"Training diverged within the first {self._batches} steps of this run: {bad}. Nothing was saved "
                f"from the diverged state.{where}"
            )


class CSVLog(keras.callbacks.Callback):
    """Append one row per epoch to ``path``: ``step``, every logged metric, ``images_per_s`` and
    ``wall_s``. On resume it drops rows past the restored step, so the log stays consistent."""

    def __init__(self, path: str, batch_size: int, steps_per_epoch: int):
        super().__init__()
        self.path, self.batch_size, self.steps_per_epoch = path, batch_size, steps_per_epoch

    def on_train_begin(self, logs=None):
        self._t_run = time.perf_counter()

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()
        if os.path.exists(self.path) and epoch > 0 and not hasattr(self, "_trimmed"):
            with open(self.path) as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= epoch * self.steps_per_epoch]
            if rows:
                with open(self.path, "w", newline="") as f:
                    w = csv.DictWriter(f, fieldnames=list(rows[0]))
                    w.writeheader()
                    w.writerows(rows)
        self._trimmed = True

    def on_epoch_end(self, epoch, logs=None):
        dt = time.perf_counter() - self._t
        row = {"step": (epoch + 1) * self.steps_per_epoch}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["images_per_s"] = self.batch_size * self.steps_per_epoch / dt
        row["wall_s"] = time.perf_counter() - self._t_run
        new = not os.path.exists(self.path) or epoch == 0
        with open(self.path, "w" if new else "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)


def _state_variables(model):
    """Every variable a resumed run needs: the model's (weights, batch-norm statistics, the noise
    seed's state) and each optimizer's (moments, iteration counters), in a fixed order."""
    variables = list(model.variables)
    for opt, net in model.optimizer_pairs():
        if not opt.built:
            opt.build(net.trainable_variables)
        variables += list(opt.variables)
    return variables


class Checkpoint(keras.callbacks.Callback):
    """Save the whole training state to ``directory/state.npz`` every ``every`` epochs (atomically:
    an interrupted save leaves the previous checkpoint intact). Restore with :func:`restore`."""

    def __init__(self, directory: str, every: int = 1):
        super().__init__()
        self.directory, self.every = directory, every

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            save_state(self.model, self.directory, epoch + 1)


def save_state(model, directory: str, epoch: int) -> None:
    os.makedirs(directory, exist_ok=True)
    arrays = {f"v{i:04d}": np.asarray(v.numpy()) for i, v in enumerate(_state_variables(model))}
    tmp = os.path.join(directory, "state.tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, os.path.join(directory, "state.npz"))
    with open(os.path.join(directory, "state.json.tmp"), "w") as f:
        json.dump({"epoch": epoch, "variables": len(arrays)}, f)
    os.replace(os.path.join(directory, "state.json.tmp"), os.path.join(directory, "state.json"))


def restore(model, directory: str) -> int:
    """Load the state saved by :class:`Checkpoint` into ``model`` (built and compiled the same way) and
    return the number of epochs it had completed, or 0 when there is no checkpoint."""
    meta_path = os.path.join(directory, "state.json")
    if not os.path.exists(meta_path):
        return 0
    with open(meta_path) as f:
        meta = json.load(f)
    variables = _state_variables(model)
    with np.load(os.path.join(directory, "state.npz")) as arrays:
        if len(arrays.files) != len(variables):
            raise ValueError(
                f"the checkpoint in {directory} holds {len(arrays.files)} variables but this model has "
                f"{len(variables)}: it was written by a different model or settings; use another --out."
            )
        for i, v in enumerate(variables):
            value = arrays[f"v{i:04d}"]
            if tuple(value.shape) != tuple(v.shape):
                raise ValueError(f"checkpoint variable {i} has shape {value.shape}, the model's {v.path} {v.shape}")
            v.assign(value)
    return int(meta["epoch"])
