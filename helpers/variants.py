"""One idea each on top of the plain GAN and VAE of :mod:`helpers.training`, printed by the chapter that teaches
it: a fitted mixture prior (chapter 5), differentiable augmentation (chapter 7), other GAN losses, gradient
penalties and discriminator steps (chapter 8), and class-conditional models (chapter 9).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from sklearn.mixture import GaussianMixture

from . import data, models
from .choices import AUGMENTATIONS, LOSSES, PENALTIES, parse_augment  # noqa: F401 (read here too)
from .data import NUM_CLASSES
from .training import GAN, VAE, bce, bernoulli_nll, gaussian_kl, judged, replica_seed
from .training import uniform_integers, update


# ------------------------------------------------------------------------- chapter 5: a fitted prior
def fit_mixture_prior(vae, images, components: int = 10, seed: int = 0):
    """Ex-post density estimation (Ghosh et al. 2020): a Gaussian mixture with full covariances
    (scikit-learn) fitted to the encoder means of the training ``images`` (uint8 ``(N, 28, 28)``), as a
    :class:`helpers.models.MixturePrior` layer that turns N(0, I) noise into codes where the encoder puts
    digits. Introduced in chapter 5."""
    ds = data.make_dataset(images, batch_size=500, scale=vae.scale, shuffle=False, drop_remainder=False)
    means = np.concatenate([vae.encode(x)[0].numpy() for x in ds]).astype(np.float64)
    gmm = GaussianMixture(components, covariance_type="full", random_state=seed, reg_covar=1e-4).fit(means)
    return models.MixturePrior(gmm.weights_, gmm.means_, np.linalg.cholesky(gmm.covariances_), name="mixture_prior")


# ----------------------------------------------------------------- chapter 7: augmentation (DiffAugment)
def translate(x, max_shift: int, fill, seed):
    """Shift each image by its own random number of pixels, up to ``max_shift`` per axis, filling with ``fill``."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    shifts = uniform_integers((b, 2), -max_shift, max_shift + 1, seed)
    rows = tf.range(h)[None, :] - shifts[:, :1]  # source row of every output row, per image
    cols = tf.range(w)[None, :] - shifts[:, 1:]
    inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
    x = tf.gather(x, tf.clip_by_value(rows, 0, h - 1), axis=1, batch_dims=1)
    x = tf.gather(x, tf.clip_by_value(cols, 0, w - 1), axis=2, batch_dims=1)
    return tf.where(inside[..., None], x, tf.cast(fill, x.dtype))


def cutout(x, size: int, fill, seed):
    """Set one ``size`` x ``size`` square per image, at a random centre, to ``fill``. Introduced in chapter 7."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    centre = uniform_integers((b, 2), 0, 2**30, seed) % tf.stack([h, w])
    top, left = centre[:, :1] - size // 2, centre[:, 1:] - size // 2
    r, c = tf.range(h)[None, :], tf.range(w)[None, :]
    hole = ((r >= top) & (r < top + size))[:, :, None] & ((c >= left) & (c < left + size))[:, None, :]
    return tf.where(hole[..., None], tf.cast(fill, x.dtype), x)


def diff_augment(x, policy, fill, seed):
    """Differentiable augmentation (Zhao et al. 2020) as in the paper: ``translation`` by up to 1/8 of the
    side, ``cutout`` of half the side; ``fill`` is black in the model's scale. Introduced in chapter 7."""
    side = x.shape[1]
    for name in policy:
        if name == "translation":
            x = translate(x, int(side / 8 + 0.5), fill, seed)
        else:
            x = cutout(x, int(side / 2 + 0.5), fill, seed)
    return x


class Augmented(keras.Model):
    """Chapter 7: a discriminator whose every input, real or fake, passes through :func:`diff_augment` while
    it trains, drawing from the GAN's ``seed_generator``; a conditional one's class input is left as it is."""

    def __init__(self, discriminator, augment="translation,cutout", seed_generator=None, **kwargs):
        super().__init__(**kwargs)
        augment = parse_augment(augment)
        self.discriminator, self.augment, self.seed_generator = discriminator, augment, seed_generator

    def call(self, inputs, training=False):
        if training:
            images, *labels = inputs if isinstance(inputs, (list, tuple)) else [inputs]
            images = diff_augment(images, self.augment, -1.0, self.seed_generator)  # -1 is black in [-1, 1]
            inputs = [images, *labels] if labels else images
        return self.discriminator(inputs, training=training)


# ------------------------------------------------------------ chapter 8: losses, penalties, d_steps
def gan_losses(kind: str, real_logits, fake_logits, label_smoothing: float = 0.0):
    """``(d_loss, g_loss)`` of the GAN loss ``kind`` from the discriminator's logits:
    ``non_saturating`` (chapter 3), ``saturating`` (the minimax form, G minimises log(1 - D(G(z)))),
    ``wasserstein`` (Arjovsky et al. 2017; D is a critic that needs a Lipschitz constraint) and
    ``hinge`` (Miyato et al. 2018). ``label_smoothing`` (one-sided) makes the real target 1 - s.
    Introduced in chapter 8."""
    real_logits, fake_logits = tf.cast(real_logits, tf.float32), tf.cast(fake_logits, tf.float32)
    if kind in ("non_saturating", "saturating"):
        d_loss = bce(1.0 - label_smoothing, real_logits) + bce(0.0, fake_logits)
        g_loss = bce(1.0, fake_logits) if kind == "non_saturating" else -bce(0.0, fake_logits)
        return d_loss, g_loss
    if kind == "wasserstein":
        return tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits), -tf.reduce_mean(fake_logits)
    if kind == "hinge":
        d_loss = tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))
        return d_loss, -tf.reduce_mean(fake_logits)
    raise ValueError(f"unknown GAN loss {kind!r}; choose one of {', '.join(LOSSES)}")


def input_gradient(discriminator, x):
    """The gradient of sum D(x) with respect to the images ``x``, float32, one row per image."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(tf.cast(discriminator(x, training=True), tf.float32))
    return tf.reshape(tape.gradient(total, x), [tf.shape(x)[0], -1])


def gradient_penalty(kind: str, discriminator, real, fake, seed):
    """``wgan-gp`` (Gulrajani et al. 2017): mean((||grad D(x_hat)|| - 1)^2) at random points x_hat between
    real and fake images; ``r1`` (Mescheder et al. 2018): mean(||grad D(x)||^2) / 2 on the real images.
    Unweighted. Introduced in chapter 8."""
    real = tf.cast(real, tf.float32)
    if kind == "r1":
        return 0.5 * tf.reduce_mean(tf.reduce_sum(tf.square(input_gradient(discriminator, real)), axis=1))
    u = tf.random.stateless_uniform([tf.shape(real)[0], 1, 1, 1][: len(real.shape)], seed=seed)
    x_hat = u * real + (1.0 - u) * tf.cast(fake, tf.float32)
    norm = tf.sqrt(tf.reduce_sum(tf.square(input_gradient(discriminator, x_hat)), axis=1) + 1e-12)
    return tf.reduce_mean(tf.square(norm - 1.0))


class VariantGAN(GAN):
    """Chapter 8's levers: another ``loss``, one-sided ``label_smoothing``, a gradient ``penalty`` and ``d_steps``
    discriminator updates per generator update (a batch then holds ``d_steps`` sub-batches)."""

    def __init__(self, generator, discriminator, loss="non_saturating", penalty=None, penalty_weight=10.0,
                 d_steps=1, label_smoothing=0.0, seed=0, **kwargs):
        self.tracked = GAN.tracked + (("penalty",) if penalty else ())
        super().__init__(generator, discriminator, seed=seed, **kwargs)
        self.loss_kind, self.penalty, self.penalty_weight = loss, penalty, float(penalty_weight)
        self.d_steps, self.label_smoothing = int(d_steps), float(label_smoothing)

    def forward(self, real):
        fake = self.generator(self.noise(tf.shape(real)[0]), training=True)
        real_logits = self.discriminator(real, training=True)
        fake_logits = self.discriminator(fake, training=True)
        d_loss, g_loss = gan_losses(self.loss_kind, real_logits, fake_logits, self.label_smoothing)
        out = {"g_loss": g_loss, **judged(real_logits, fake_logits)}
        if self.penalty:
            seed = replica_seed(self.seed_generator)  # where between real and fake: each replica its own
            out["penalty"] = self.penalty_weight * gradient_penalty(self.penalty, self.discriminator, real, fake, seed)
            d_loss = d_loss + out["penalty"]
        return {"d_loss": d_loss, **out}

    def train_step(self, real):
        batches = split(real, self.d_steps)
        for batch in batches[:-1]:  # the discriminator alone, on its own real images and fresh noise
            with tf.GradientTape() as tape:
                d_loss = self.forward(batch)["d_loss"]
            update(self.d_optimizer, tape, d_loss, self.discriminator.trainable_variables)
        return super().train_step(batches[-1])  # the joint step of chapter 3


def split(batch, k: int) -> list:
    """``k`` equal parts of a batch of images, or of ``(images, labels)``."""
    if k == 1:
        return [batch]
    if isinstance(batch, (tuple, list)):
        return list(zip(*(tf.split(t, k) for t in batch)))
    return tf.split(batch, k)


# ------------------------------------------------------------------- chapter 9: conditional models
def class_labels(labels, n: int | None = None, num_classes: int = NUM_CLASSES):
    """int32 class indices ``(B,)`` from integers or one-hot rows (NumPy ones checked by ``check_labels``)."""
    if labels is None:
        raise ValueError(f"a conditional model needs a class label per sample (integers 0 to {num_classes - 1} "
                         f"or one-hot rows)")
    if tf.is_tensor(labels):
        return tf.cast(tf.argmax(labels, axis=-1) if labels.shape.rank == 2 else labels, tf.int32)
    return tf.constant(data.check_labels(labels, num_classes, n))


def labelled(batch):
    """The ``(images, labels)`` of a conditional model's batch, with a clear error for unlabelled data."""
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:
        raise ValueError("a conditional model trains on (images, labels) batches: make_dataset(x, y, ...)")
    return batch


class ConditionalGAN(VariantGAN):
    """Chapter 9: both networks also take the class, ``[input, label]``, and ``fit`` sees ``(images, labels)``
    batches; a step's fakes are asked for its real images' classes. Chapter 8's levers apply."""

    def __init__(self, generator, discriminator, num_classes=NUM_CLASSES, **kwargs):
        super().__init__(generator, discriminator, **kwargs)
        self.num_classes = int(num_classes)

    def forward(self, batch):
        real, labels = labelled(batch)
        critic = lambda x, training=True: self.discriminator([x, labels], training=training)  # noqa: E731
        fake = self.generator([self.noise(tf.shape(real)[0]), labels], training=True)
        real_logits, fake_logits = critic(real), critic(fake)
        d_loss, g_loss = gan_losses(self.loss_kind, real_logits, fake_logits, self.label_smoothing)
        out = {"g_loss": g_loss, **judged(real_logits, fake_logits)}
        if self.penalty:
            seed = replica_seed(self.seed_generator)
            out["penalty"] = self.penalty_weight * gradient_penalty(self.penalty, critic, real, fake, seed)
            d_loss = d_loss + out["penalty"]
        return {"d_loss": d_loss, **out}

    def generate(self, z, labels=None):
        """Images in [-1, 1] for codes ``z`` and the class of each (integers or one-hot rows)."""
        labels = class_labels(labels, len(z), self.num_classes)
        return self.generator([tf.convert_to_tensor(z), labels], training=False)

    def discriminate(self, x, labels=None):
        x = tf.convert_to_tensor(x)
        labels = class_labels(labels, x.shape[0], self.num_classes)  # shape[0]: None inside a compiled step
        logits = self.discriminator([x, labels], training=False)
        return tf.reshape(tf.cast(logits, tf.float32), [-1])


class ConditionalVAE(VAE):
    """Chapter 9: encoder q(z|x, y) and decoder p(x|z, y) also take the class; batches are ``(images, labels)``."""

    def __init__(self, encoder, decoder, num_classes=NUM_CLASSES, **kwargs):
        super().__init__(encoder, decoder, **kwargs)
        self.num_classes = int(num_classes)

    def terms(self, batch, training=False):
        x, labels = (tf.convert_to_tensor(t) for t in labelled(batch))
        stats = tf.cast(self.encoder([x, labels], training=training), tf.float32)
        mean, log_var = tf.split(stats, 2, axis=-1)
        z = self.sample_z(mean, log_var, self.seed_generator if training else self.eval_seed_generator)
        logits = self.decoder([z, labels], training=training)
        return bernoulli_nll(x, logits), gaussian_kl(mean, log_var)

    def encode(self, x, training=False, labels=None):
        labels = class_labels(labels, len(x), self.num_classes)
        stats = self.encoder([tf.convert_to_tensor(x), labels], training=training)
        return tf.split(tf.cast(stats, tf.float32), 2, axis=-1)

    def generate(self, z, labels=None):
        labels = class_labels(labels, len(z), self.num_classes)
        logits = self.decoder([tf.convert_to_tensor(z), labels], training=False)
        return tf.sigmoid(tf.cast(logits, tf.float32))

    def call(self, x, training=False, labels=None):
        return self.generate(self.encode(x, training, labels)[0], labels)
