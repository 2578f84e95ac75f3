"""The plain GAN, VAE and diffusion model as ``keras.Model`` subclasses with their own ``train_step``
(chapters 3 to 5 and 11), the steps they share (:func:`update`, :func:`normal`) and the ``make_*`` builders
that compile them. :mod:`helpers.variants` adds one idea each on top of these classes.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from . import diffusion, runtime


# ------------------------------------------------------------------------ machinery the lessons call
def replica_seed(seed_generator):
    """The next seed of ``seed_generator`` as the int32 pair ``tf.random.stateless_*`` takes, different per replica."""
    seed = seed_generator.next()
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    seed = seed + tf.cast(tf.stack([replica * 1_000_003, 0]), seed.dtype)
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


def normal(shape, seed_generator):
    """Standard normal float32 noise of ``shape``, each replica its own. Introduced in chapter 3."""
    return tf.random.stateless_normal(shape, seed=replica_seed(seed_generator), dtype=tf.float32)


def uniform_integers(shape, low, high, seed_generator):
    """Random int32 in ``[low, high)``, each replica its own (chapter 7's augmentations)."""
    seed = replica_seed(seed_generator)
    return tf.random.stateless_uniform(shape, seed=seed, minval=low, maxval=high, dtype=tf.int32)


def update(optimizer, tape, loss, variables):
    """One gradient step of ``variables`` on ``loss``. Under a ``tf.distribute`` strategy the loss is
    divided by the number of replicas (their gradients are summed); under ``mixed_float16`` the optimizer
    scales it (``scale_loss``) and ``apply_gradients`` divides the scale out. Introduced in chapter 3."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    with tape:  # the scaling is recorded too, so the gradient is that of the scaled loss
        scaled = optimizer.scale_loss(loss / replicas)
    optimizer.apply_gradients(zip(tape.gradient(scaled, variables), variables))


def bce(target: float, logits):
    """Mean binary cross-entropy of ``logits`` against a constant ``target``, in float32. Introduced in chapter 3."""
    logits = tf.cast(logits, tf.float32)
    labels = tf.fill(tf.shape(logits), tf.cast(target, tf.float32))
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def _jit(jit_compile: bool | None) -> bool:
    """``jit_compile``, or the measured per-device choice (:func:`runtime.device_choices`) for ``None``."""
    return runtime.device_choices()["jit_compile"] if jit_compile is None else jit_compile


class Tracked(keras.Model):
    """A model whose ``train_step`` returns the means of ``tracked`` values, updated by :meth:`record`."""

    tracked: tuple = ()

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.tracked}
        self.built = True  # the networks are built; fit must not probe call() with images

    @property
    def metrics(self):
        return list(self.trackers.values())

    def record(self, values: dict):
        for name, value in values.items():
            self.trackers[name].update_state(value)
        return {name: tracker.result() for name, tracker in self.trackers.items()}


# ------------------------------------------------------------------------------------------- the GAN
class GAN(Tracked):
    """A GAN as one ``keras.Model`` (chapter 3): one discriminator and one generator update per batch, from the
    same forward pass, with chapter 2's losses; logits out, images in ``[-1, 1]``."""

    scale = "tanh"
    tracked = ("d_loss", "g_loss", "d_real", "d_fake", "d_accuracy")

    def __init__(self, generator, discriminator, seed: int = 0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.generator, self.discriminator = generator, discriminator
        self.z_dim = int(generator.inputs[0].shape[-1])

    def compile(self, d_optimizer, g_optimizer, **kwargs):
        super().compile(**kwargs)
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        d_optimizer.build(self.discriminator.trainable_variables)  # the slots, in the caller's scope
        g_optimizer.build(self.generator.trainable_variables)

    def optimizer_pairs(self):
        return [(self.d_optimizer, self.discriminator), (self.g_optimizer, self.generator)]

    def noise(self, n):
        return normal((n, self.z_dim), self.seed_generator)

    def generate(self, z):
        """Images in ``[-1, 1]`` for latent codes ``z`` (inference mode)."""
        return self.generator(z, training=False)

    def discriminate(self, x):
        """The discriminator's logits ``(B,)`` for images ``x`` in ``[-1, 1]`` (inference mode)."""
        return tf.reshape(tf.cast(self.discriminator(x, training=False), tf.float32), [-1])

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def forward(self, real):
        """One forward pass on a batch of real images: fakes, both logits, chapter 2's losses."""
        fake = self.generator(self.noise(tf.shape(real)[0]), training=True)
        real_logits = self.discriminator(real, training=True)
        fake_logits = self.discriminator(fake, training=True)
        d_loss = bce(1.0, real_logits) + bce(0.0, fake_logits)  # D: real -> 1, fake -> 0
        g_loss = bce(1.0, fake_logits)  # G: -log D(G(z)), the non-saturating loss
        return {"d_loss": d_loss, "g_loss": g_loss, **judged(real_logits, fake_logits)}

    def train_step(self, real):
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            out = self.forward(real)
        update(self.d_optimizer, d_tape, out["d_loss"], self.discriminator.trainable_variables)
        update(self.g_optimizer, g_tape, out["g_loss"], self.generator.trainable_variables)
        return self.record(out)

    def test_step(self, pair):
        """An overfitting watch (Karras et al. 2020): the discriminator's mean probability "real" on training
        and on held-out real images, ``pair = ((train,), (held_out,))`` (each what ``discriminate`` takes)."""
        p_train, p_held_out = (tf.reduce_mean(tf.sigmoid(self.discriminate(*images))) for images in pair)
        return {"d_train": p_train, "d_held_out": p_held_out, "d_gap": p_train - p_held_out}


def judged(real_logits, fake_logits) -> dict:
    """Mean D(x) on the real images, mean D(G(z)) on the fakes, and the share of both classified right."""
    real_logits, fake_logits = tf.cast(real_logits, tf.float32), tf.cast(fake_logits, tf.float32)
    right = tf.concat([tf.cast(real_logits > 0, tf.float32), tf.cast(fake_logits < 0, tf.float32)], axis=0)
    real, fake = tf.reduce_mean(tf.sigmoid(real_logits)), tf.reduce_mean(tf.sigmoid(fake_logits))
    return {"d_real": real, "d_fake": fake, "d_accuracy": tf.reduce_mean(right)}


def optimizers(lr=2e-4, d_lr=None, g_lr=None, ema=None, beta_1=0.5, **adam) -> list:
    """The two players' Adam optimizers (DCGAN's lr 2e-4, beta_1 0.5; ``adam`` options such as ``clipnorm`` pass
    through), at ``d_lr`` / ``g_lr`` when given; the generator's keeps a moving average of its weights with ``ema``."""
    def make(rate, average):
        averaging = dict(use_ema=average is not None, ema_momentum=0.99 if average is None else average)
        return keras.optimizers.Adam(lr if rate is None else rate, beta_1=beta_1, **adam, **averaging)

    out = [make(d_lr, None), make(g_lr, ema)]
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        out = [keras.optimizers.LossScaleOptimizer(o) for o in out]
    return out


ADAM = ("lr", "d_lr", "g_lr", "ema", "beta_1", "beta_2", "clipnorm")  # what make_gan passes to optimizers


def make_gan(generator, discriminator, seed=0, jit_compile=None, steps_per_execution=1, cls=None, **options):
    """A compiled GAN (``cls``, default :class:`GAN`) with its :func:`optimizers`, both taking their ``options``
    (:data:`ADAM` are the optimizers'); ``jit_compile=None`` takes the device's choice. Introduced in chapter 3."""
    adam = {name: options.pop(name) for name in ADAM if name in options}
    gan = (cls or GAN)(generator, discriminator, seed=seed, **options)
    gan.compile(*optimizers(**adam), steps_per_execution=steps_per_execution, jit_compile=_jit(jit_compile))
    return gan


# ------------------------------------------------------------------------------------------- the VAE
def gaussian_kl(mean, log_var):
    """KL( N(mean, diag(exp(log_var))) || N(0, I) ) per example, in nats, in closed form. Introduced in chapter 4."""
    mean, log_var = tf.cast(mean, tf.float32), tf.cast(log_var, tf.float32)
    return 0.5 * tf.reduce_sum(tf.square(mean) + tf.exp(log_var) - log_var - 1.0, axis=-1)


def bernoulli_nll(x, logits):
    """-log p(x|z) per example for a Bernoulli decoder, summed over pixels. Introduced in chapter 4."""
    x, logits = tf.cast(x, tf.float32), tf.cast(logits, tf.float32)
    per_pixel = tf.nn.sigmoid_cross_entropy_with_logits(labels=x, logits=logits)
    return tf.reduce_sum(tf.reshape(per_pixel, [tf.shape(x)[0], -1]), axis=1)


class VAE(Tracked):
    """A VAE as one ``keras.Model`` (chapters 4 and 5): Gaussian encoder, Bernoulli decoder, standard normal prior;
    ``fit`` minimises ``recon + beta * kl``, tracked in nats per image."""

    scale = "unit"  # images live in [0, 1]
    tracked = ("loss", "neg_elbo", "recon", "kl")

    def __init__(self, encoder, decoder, beta: float = 1.0, seed: int = 0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.z_dim = int(decoder.inputs[0].shape[-1])
        if int(encoder.output_shape[-1]) != 2 * self.z_dim:
            raise ValueError(f"the encoder must output 2 * z_dim = {2 * self.z_dim} numbers (mean and log-variance) "
                             f"for a decoder with z_dim {self.z_dim}; it outputs {encoder.output_shape[-1]}")
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta, self._eval_seed = float(beta), seed + 1
        # held-out evaluation draws its own eps, the same ones every time (see evaluate)
        self.eval_seed_generator = keras.random.SeedGenerator(seed + 1)

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.trainable_variables)  # in the caller's (strategy) scope

    def optimizer_pairs(self):
        return [(self.optimizer, self)]

    def encode(self, x, training=False):
        """Mean and log-variance of q(z|x), float32, each ``(B, z_dim)``."""
        return tf.split(tf.cast(self.encoder(x, training=training), tf.float32), 2, axis=-1)

    def sample_z(self, mean, log_var, seed_generator=None):
        """The reparameterisation trick: z = mean + sigma * eps, with eps ~ N(0, I) the only randomness."""
        eps = normal(tf.shape(mean), seed_generator or self.seed_generator)
        return mean + tf.exp(0.5 * log_var) * eps

    def generate(self, z):
        """Decoded means (pixel probabilities in [0, 1]) for latent codes ``z``."""
        return tf.sigmoid(tf.cast(self.decoder(z, training=False), tf.float32))

    def call(self, x, training=False):
        """Reconstructions: the decoded mean at z = the mean of q(z|x)."""
        return self.generate(self.encode(x, training=training)[0])

    def terms(self, x, training=False):
        """The two terms of the negative ELBO per image, ``(recon, kl)``, each ``(B,)``."""
        mean, log_var = self.encode(x, training=training)
        z = self.sample_z(mean, log_var, self.seed_generator if training else self.eval_seed_generator)
        logits = self.decoder(z, training=training)
        return bernoulli_nll(x, logits), gaussian_kl(mean, log_var)

    def neg_elbo_per_image(self, batch):
        """The negative ELBO of each image ``(B,)`` in nats (one draw of z, inference mode)."""
        recon, kl = self.terms(batch)
        return recon + kl

    def train_step(self, batch):
        with tf.GradientTape() as tape:
            recon, kl = self.terms(batch, training=True)
            loss = tf.reduce_mean(recon + self.beta * kl)
        update(self.optimizer, tape, loss, self.trainable_variables)
        return self.record({"loss": recon + self.beta * kl, "neg_elbo": recon + kl, "recon": recon, "kl": kl})

    def test_step(self, batch):
        recon, kl = self.terms(batch)
        return self.record({"loss": recon + self.beta * kl, "neg_elbo": recon + kl, "recon": recon, "kl": kl})

    def evaluate(self, *args, **kwargs):
        """``keras.Model.evaluate`` with the evaluation noise restarted, so that it always gives the same numbers."""
        state = self.eval_seed_generator.state
        state.assign(tf.constant([self._eval_seed, 0], state.dtype))
        return super().evaluate(*args, **kwargs)


def make_vae(encoder, decoder, seed=0, lr=1e-3, jit_compile=None, steps_per_execution=1, cls=None, **options):
    """A compiled VAE (``cls``, default :class:`VAE`, built with ``options`` such as ``beta``) with Adam(lr).
    Introduced in chapter 5."""
    vae = (cls or VAE)(encoder, decoder, seed=seed, **options)
    vae.compile(keras.optimizers.Adam(lr), steps_per_execution=steps_per_execution, jit_compile=_jit(jit_compile))
    return vae


# ------------------------------------------------------------------------------------- diffusion
def uniform(shape, seed_generator):
    """Uniform float32 noise in [0, 1) of ``shape``, each replica its own (chapter 11's noise levels)."""
    return tf.random.stateless_uniform(shape, seed=replica_seed(seed_generator), dtype=tf.float32)


class Diffusion(Tracked):
    """A denoising diffusion model as one ``keras.Model`` (chapter 11): ``network`` learns to predict the noise
    (Ho et al.'s simple loss); ``ema_network``, a moving average of its weights, samples."""

    scale = "tanh"
    tracked = ("loss",)

    def __init__(self, network, ema: float = 0.999, seed: int = 0, **kwargs):
        super().__init__(seed=seed, **kwargs)
        self.network, self.ema = network, float(ema)
        self.ema_network = keras.models.clone_model(network)
        self.ema_network.set_weights(network.get_weights())
        self.z_dim = int(np.prod(network.inputs[0].shape[1:]))  # a sample starts from one noise image

    def compile(self, optimizer, **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        self.optimizer.build(self.network.trainable_variables)

    def optimizer_pairs(self):
        return [(self.optimizer, self.network)]

    def train_step(self, images):
        noise = normal(tf.shape(images), self.seed_generator)
        t = uniform((tf.shape(images)[0], 1, 1, 1), self.seed_generator)  # a noise level per image
        alpha_bar = diffusion.signal_share(t)
        noisy = tf.sqrt(alpha_bar) * images + tf.sqrt(1 - alpha_bar) * noise  # the forward process, one jump
        with tf.GradientTape() as tape:
            predicted = tf.cast(self.network([noisy, 1 - alpha_bar], training=True), tf.float32)
            loss = tf.reduce_mean(tf.square(noise - predicted))  # Ho et al.'s simple loss
        update(self.optimizer, tape, loss, self.network.trainable_variables)
        self.average_weights()
        return self.record({"loss": loss})

    def average_weights(self):
        """``ema_network <- decay * ema_network + (1 - decay) * network``, with ``decay = min(ema, (1 + k) /
        (10 + k))`` after ``k`` updates, so the random initial weights fade within the first few hundred
        steps instead of weighing on the average for thousands."""
        k = tf.cast(self.optimizer.iterations, tf.float32)
        decay = tf.minimum(self.ema, (1.0 + k) / (10.0 + k))
        for w, avg in zip(self.network.weights, self.ema_network.weights):
            avg.assign(decay * avg + (1.0 - decay) * tf.cast(w, avg.dtype))

    def generate(self, z, steps: int = 20):
        """Images in about ``[-1, 1]`` from noise ``z`` ``(N, 784)`` by ``steps`` DDIM steps of the EMA network."""
        return diffusion.sample(self.ema_network, np.asarray(z), steps)

    def call(self, inputs, training=False):
        return self.network(inputs, training=training)
