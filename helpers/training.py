"""Keras-3-native training: ``GAN`` and ``VAE`` models with their own ``train_step``, their recipes
(:data:`RECIPES`, :func:`make_gan`, :func:`make_vae`) and :func:`fit_steps`, which trains a model for an
exact number of steps in log intervals (the callbacks it runs live in :mod:`helpers.callbacks`).

Introduced in the hands-on GAN chapter (``03_gan_mnist``); the VAE chapters (``04_vae_math``,
``05_vae_mnist``) add the VAE's loss terms and model.
"""
from __future__ import annotations

import math

import keras
import tensorflow as tf

from . import runtime

# The recipes of the command line, the chapters and the experiment grids: steps per budget, batch size,
# log interval, network sizes, learning rate. One definition, read by everyone who trains.
RECIPES = {
    "dcgan": {"steps": {"full": 10_000, "cpu": 1_800, "smoke": 20}, "batch_size": 128, "log_every": 100,
              "z_dim": 64, "width": 64, "lr": 1e-3, "policy": "float32", "clusters": 50},
    "vae": {"steps": {"full": 10_000, "cpu": 4_600, "smoke": 20}, "batch_size": 64, "log_every": 100,
            "z_dim": 16, "width": 32, "lr": 1e-3, "prior": "mixture"},
    # the conditional models of the applications chapter: the same networks, told the class
    "cgan": {"steps": {"full": 10_000, "cpu": 1_800, "smoke": 20}, "batch_size": 128, "log_every": 100,
             "z_dim": 64, "width": 64, "lr": 1e-3, "policy": "float32"},
    "cvae": {"steps": {"full": 10_000, "cpu": 4_600, "smoke": 20}, "batch_size": 64, "log_every": 100,
             "z_dim": 16, "width": 32, "lr": 1e-3},
}
GANS, VAES, CONDITIONAL = ("dcgan", "cgan"), ("vae", "cvae"), ("cgan", "cvae")
NUM_CLASSES = 10
# How the recipes were chosen (quality per CPU minute: at most 300,000 training images and about four
# minutes on a 2-core CPU): the hands-on GAN and VAE chapters compare them with the earlier recipes. A
# recipe may fix "policy" (the precision); without it the device's choice applies (runtime.device_choices).
# The DCGAN trains in float32: bfloat16 mixed precision is faster, but its samples scored worse (chapter 3).
# It is self-conditioned (Liu et al. 2020): k-means clusters of the training pixels play the labels of the
# conditional networks, and its sampler picks a cluster from the noise (chapter 3; "clusters": 0 is the plain
# DCGAN, which the data, instability and challenges chapters train).
# The toy GAN of the instability chapter: two small MLPs on a 2-D Gaussian mixture (helpers.data.toy),
# float32, many steps per compiled call (a step takes about a millisecond on a CPU; XLA was slower there).
TOY_RECIPE = {"steps": {"full": 20_000, "cpu": 2_500, "smoke": 40}, "batch_size": 256, "log_every": 500,
              "z_dim": 2, "width": 128, "depth": 2, "lr": 1e-3, "points": 10_000, "policy": "float32",
              "jit_compile": False, "steps_per_execution": 50}
LOSSES = ("non_saturating", "saturating", "wasserstein", "hinge")
PENALTIES = (None, "wgan-gp", "r1")
PENALTY_WEIGHTS = {"wgan-gp": 10.0, "r1": 10.0}  # the papers' defaults (lambda = 10; gamma = 10)
STEPS_PER_EXECUTION = 10  # train steps per compiled call (fewer Python round trips; see fit_steps)


def _replicas() -> int:
    return tf.distribute.get_strategy().num_replicas_in_sync


def replica_seed(seed_generator):
    """The next seed of ``seed_generator`` as the int32 pair ``tf.random.stateless_*`` takes, made
    different on every replica of a ``tf.distribute`` strategy. The generator's state is a mirrored
    variable that advances in lockstep, so without this every replica would draw the same noise. On one
    device (replica 0) it is exactly the seed ``keras.random.normal(seed=seed_generator)`` would use."""
    seed = seed_generator.next()
    context = tf.distribute.get_replica_context()
    replica = 0 if context is None else context.replica_id_in_sync_group
    seed = seed + tf.cast(tf.stack([replica * 1_000_003, 0]), seed.dtype)
    return tf.cast(tf.math.floormod(seed, tf.int32.max - 1), tf.int32)


def _standard_normal(shape, seed_generator):
    return tf.random.stateless_normal(shape, seed=replica_seed(seed_generator), dtype=tf.float32)


def _randint(shape, low, high, seed_generator):
    return tf.random.stateless_uniform(shape, seed=replica_seed(seed_generator), minval=low, maxval=high,
                                       dtype=tf.int32)


def class_labels(num_classes, labels, inputs=None):
    """The labels a model is called with, checked: ``None`` for an unconditional model (which must get
    none), else int32 class indices ``(B,)`` from integers or one-hot rows (NumPy values are validated by
    :func:`helpers.data.check_labels`: range, shape, one per row of ``inputs``). Introduced in the
    applications chapter."""
    if num_classes is None:
        if labels is not None:
            raise ValueError("this model is not conditional and takes no labels; train a conditional one "
                             "(cgan or cvae) to ask for a class")
        return None
    if labels is None:
        raise ValueError(f"this conditional model needs a class label per sample (integers 0 to {num_classes - 1} "
                         f"or one-hot rows)")
    if tf.is_tensor(labels):
        if labels.shape.rank == 2:
            labels = tf.argmax(labels, axis=-1)
        return tf.cast(labels, tf.int32)
    from . import data

    return tf.constant(data.check_labels(labels, num_classes, None if inputs is None else len(inputs)))


def _conditioned(net, x, labels, training):
    """Call ``net`` on ``x``, or on ``[x, labels]`` for a conditional model (``labels`` not ``None``)."""
    return net(x if labels is None else [tf.convert_to_tensor(x), labels], training=training)


def _batch_labels(batch, num_classes, what: str):
    """The images of a ``fit``/``evaluate`` batch and, for a conditional model, its labels (``None`` for
    an unconditional one, which ignores labels in its batches)."""
    x, labels, _ = keras.utils.unpack_x_y_sample_weight(batch)
    if num_classes is None:
        return x, None
    if labels is None:
        raise ValueError(f"a conditional {what} trains on (images, labels) batches: make_dataset(x, y, ...)")
    return x, labels


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
    ``[-max_shift, max_shift]`` along each axis, filling the uncovered border with ``fill``. ``seed`` is
    a ``keras.random.SeedGenerator`` (each replica draws its own shifts).
    Differentiable in ``x`` (a gather and a select). Introduced in the data chapter."""
    b, h, w = tf.shape(x)[0], tf.shape(x)[1], tf.shape(x)[2]
    shifts = _randint((b, 2), -max_shift, max_shift + 1, seed)
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
    centre = _randint((b, 2), 0, 2**30, seed) % tf.stack([h, w])
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

    ``compile(d_optimizer, g_optimizer, loss="non_saturating", label_smoothing=0.0, gradient_penalty=None,
    penalty_weight=None, d_steps=1)``: ``loss`` one of :data:`LOSSES` (:meth:`losses_from_logits`),
    ``gradient_penalty`` ``"wgan-gp"`` or ``"r1"`` (:meth:`penalty`; weight 10 unless given), ``d_steps``
    discriminator updates per generator update, each on its own real images (the batches ``fit`` sees must
    then hold ``d_steps`` sub-batches). ``label_smoothing`` is one-sided: real targets become
    ``1 - label_smoothing``, fake stay 0 (cross-entropy losses only). Introduced in the hands-on GAN
    chapter; the losses, penalties and ``d_steps`` in the instability chapter.
    ``augment="translation,cutout"`` passes every image the discriminator sees, real and fake, through
    :func:`diff_augment` (the data chapter); off by default. ``num_classes`` makes it class-conditional
    (the applications chapter): both networks take ``[input, label]``, ``fit`` sees ``(images, labels)``
    batches, and the fakes of a step are asked for the classes of its real images.

    Under a ``tf.distribute`` strategy each replica draws its own noise (:func:`replica_seed`) and the
    losses are divided by the number of replicas (gradients are summed over them). Under the
    ``mixed_float16`` policy :func:`make_gan` wraps both optimizers in ``LossScaleOptimizer`` and the step
    scales each loss before its gradient (``optimizer.scale_loss``); bfloat16 needs no scaling.
    """

    scale = "tanh"  # generator outputs live in [-1, 1]

    def __init__(self, generator, discriminator, seed: int = 0, augment=None, num_classes: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.augment = parse_augment(augment)
        self.generator = generator
        self.discriminator = discriminator
        self.num_classes = num_classes
        self.z_dim = int((generator.input_shape[0] if num_classes else generator.input_shape)[-1])
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.d_real_tracker = keras.metrics.Mean(name="d_real")  # mean sigmoid(D(x)) on real images
        self.d_fake_tracker = keras.metrics.Mean(name="d_fake")  # mean sigmoid(D(G(z))) on the step's fakes
        self.d_accuracy_tracker = keras.metrics.Mean(name="d_accuracy")  # share of the step's images D gets right
        self.penalty_tracker = keras.metrics.Mean(name="penalty")  # the weighted gradient penalty, if any
        self.built = True  # both networks are built; fit must not probe call() with images

    def compile(self, d_optimizer, g_optimizer, loss="non_saturating", label_smoothing=0.0,
                gradient_penalty=None, penalty_weight=None, d_steps=1, **kwargs):
        super().compile(**kwargs)
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if gradient_penalty not in PENALTIES:
            raise ValueError(f"gradient_penalty must be one of {PENALTIES}, got {gradient_penalty!r}")
        if not 0.0 <= label_smoothing < 0.5:
            raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
        if label_smoothing and loss not in ("non_saturating", "saturating"):
            raise ValueError(f"label_smoothing applies to the cross-entropy losses, not to {loss!r}")
        if int(d_steps) < 1:
            raise ValueError(f"d_steps must be a positive integer, got {d_steps}")
        if penalty_weight is not None and penalty_weight < 0:
            raise ValueError(f"penalty_weight must be >= 0, got {penalty_weight}")
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer
        # Build the optimizer slots now, in the caller's (strategy) scope, not inside a replica step.
        d_optimizer.build(self.discriminator.trainable_variables)
        g_optimizer.build(self.generator.trainable_variables)
        self.loss_kind, self.label_smoothing = loss, float(label_smoothing)
        self.gradient_penalty, self.d_steps = gradient_penalty, int(d_steps)
        self.penalty_weight = float(PENALTY_WEIGHTS.get(gradient_penalty, 0.0) if penalty_weight is None
                                    else penalty_weight)

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker, self.d_real_tracker, self.d_fake_tracker,
                self.d_accuracy_tracker] + ([self.penalty_tracker] if self.gradient_penalty else [])

    def optimizer_pairs(self):
        """(optimizer, network) pairs, for checkpointing."""
        return [(self.d_optimizer, self.discriminator), (self.g_optimizer, self.generator)]

    def _g(self, z, labels, training):
        return _conditioned(self.generator, z, labels, training)

    def _d(self, x, labels, training=True):
        return _conditioned(self.discriminator, x, labels, training)

    def call(self, z, training=False):
        return self.generator(z, training=training)

    def discriminate(self, x, labels=None):
        """The discriminator's logits ``(B,)`` for images ``x`` in the generator's range (inference mode; a
        conditional GAN also takes the images' classes). Introduced in the challenges chapter."""
        logits = self._d(x, class_labels(self.num_classes, labels, x), training=False)
        return tf.reshape(tf.cast(logits, tf.float32), [-1])

    def generate(self, z, labels=None):
        """Images in [-1, 1] for latent codes ``z`` (inference mode); a conditional GAN (``num_classes``)
        also takes the class of each image, as integers or one-hot rows."""
        return self._g(z, class_labels(self.num_classes, labels, z), training=False)

    def noise(self, n):
        return _standard_normal((n, self.z_dim), self.seed_generator)

    # ------------------------------------------------------------------------------------ the losses
    def losses_from_logits(self, real_logits, fake_logits):
        """``(d_loss, g_loss)`` of the configured loss, from the discriminator's outputs (float32):

        - ``non_saturating``: D minimises the cross-entropy, G minimises -log D(G(z)) (chapter 2);
        - ``saturating``: G minimises log(1 - D(G(z))), the minimax form;
        - ``wasserstein`` (Arjovsky et al. 2017): D (a critic) minimises mean D(G(z)) - mean D(x), G
          minimises -mean D(G(z)); needs a Lipschitz constraint (a gradient penalty, spectral norm);
        - ``hinge`` (Miyato et al. 2018): D minimises mean relu(1 - D(x)) + mean relu(1 + D(G(z))), G
          minimises -mean D(G(z)).
        """
        real_logits, fake_logits = tf.cast(real_logits, tf.float32), tf.cast(fake_logits, tf.float32)
        if self.loss_kind in ("non_saturating", "saturating"):
            real_target = tf.fill(tf.shape(real_logits), 1.0 - self.label_smoothing)
            d_loss = _bce(real_target, real_logits) + _bce(tf.zeros_like(fake_logits), fake_logits)
            if self.loss_kind == "non_saturating":  # -log D(G(z))
                return d_loss, _bce(tf.ones_like(fake_logits), fake_logits)
            return d_loss, -_bce(tf.zeros_like(fake_logits), fake_logits)  # log(1 - D(G(z)))
        if self.loss_kind == "wasserstein":
            return tf.reduce_mean(fake_logits) - tf.reduce_mean(real_logits), -tf.reduce_mean(fake_logits)
        d_loss = tf.reduce_mean(tf.nn.relu(1.0 - real_logits)) + tf.reduce_mean(tf.nn.relu(1.0 + fake_logits))
        return d_loss, -tf.reduce_mean(fake_logits)

    def _input_gradient(self, x, labels=None):
        """The gradient of sum D(x) with respect to the images ``x``, float32, ``(B, -1)``. Under
        mixed_float16 the inner gradient is taken of the loss-scaled sum and divided back, so that small
        gradients do not underflow in float16."""
        scale = tf.cast(self.d_optimizer.scale_loss(tf.constant(1.0)), tf.float32)
        with tf.GradientTape() as tape:
            tape.watch(x)
            total = tf.reduce_sum(tf.cast(self._d(x, labels), tf.float32)) * scale
        grad = tf.cast(tape.gradient(total, x), tf.float32) / scale
        return tf.reshape(grad, [tf.shape(x)[0], -1])

    def penalty(self, real, fake, labels=None):
        """The weighted gradient penalty of the discriminator (``None`` when there is none):

        - ``wgan-gp`` (Gulrajani et al. 2017): ``weight * mean((||grad D(x_hat)||_2 - 1)^2)`` at
          ``x_hat = u * real + (1 - u) * fake``, ``u ~ U(0, 1)`` per image; the norm is
          ``sqrt(sum g^2 + 1e-12)``, so a zero gradient gives a finite gradient of the penalty;
        - ``r1`` (Mescheder et al. 2018): ``weight / 2 * mean(||grad D(x)||_2^2)`` on real images.

        A conditional discriminator is differentiated at the batch's labels.
        """
        if not self.gradient_penalty:
            return None
        real = tf.cast(real, tf.float32)
        if self.gradient_penalty == "r1":
            grad = self._input_gradient(real, labels)
            return 0.5 * self.penalty_weight * tf.reduce_mean(tf.reduce_sum(tf.square(grad), axis=1))
        shape = tf.concat([tf.shape(real)[:1], tf.ones_like(tf.shape(real)[1:])], axis=0)
        u = tf.random.stateless_uniform(shape, seed=replica_seed(self.seed_generator))
        x_hat = u * real + (1.0 - u) * tf.cast(fake, tf.float32)
        norm = tf.sqrt(tf.reduce_sum(tf.square(self._input_gradient(x_hat, labels)), axis=1) + 1e-12)
        return self.penalty_weight * tf.reduce_mean(tf.square(norm - 1.0))

    # ------------------------------------------------------------------------------------- one step
    def _discriminator_forward(self, real, labels, n):
        # a conditional GAN's fakes are asked for the classes of the real batch
        fake = self._g(self.noise(n), labels, training=True)
        if self.augment:  # the same kind of transformation for real and fake, each image its own draw
            background = -1.0 if self.scale == "tanh" else 0.0
            real = diff_augment(real, self.augment, background, self.seed_generator)
            fake = diff_augment(fake, self.augment, background, self.seed_generator)
        return real, fake, self._d(real, labels), self._d(fake, labels)

    def train_step(self, batch):
        real, labels = _batch_labels(batch, self.num_classes, "GAN")
        per_replica = 1.0 / _replicas()  # gradients are summed over replicas
        # With d_steps = k the batch holds k sub-batches: the first k - 1 train the discriminator alone,
        # each with its own real images and fresh noise; the last one serves the joint step below.
        def split(t):
            return tf.split(t, self.d_steps) if self.d_steps > 1 else [t]

        chunks = split(real)
        label_chunks = [None] * len(chunks) if labels is None else split(labels)
        for chunk, chunk_labels in zip(chunks[:-1], label_chunks[:-1]):
            with tf.GradientTape() as d_tape:
                x, fake, real_logits, fake_logits = self._discriminator_forward(chunk, chunk_labels,
                                                                                tf.shape(chunk)[0])
                penalty = self.penalty(x, fake, chunk_labels)
                d_loss = self.losses_from_logits(real_logits, fake_logits)[0]
                d_total = d_loss if penalty is None else d_loss + penalty
                d_scaled = self.d_optimizer.scale_loss(d_total * per_replica)
            d_grads = d_tape.gradient(d_scaled, self.discriminator.trainable_variables)
            self.d_optimizer.apply_gradients(list(zip(d_grads, self.discriminator.trainable_variables)))
        real, labels = chunks[-1], label_chunks[-1]

        # One forward pass serves both players: the discriminator's gradient and the generator's
        # gradient (through the discriminator) are taken from it and applied together.
        with tf.GradientTape() as d_tape, tf.GradientTape() as g_tape:
            real, fake, real_logits, fake_logits = self._discriminator_forward(real, labels, tf.shape(real)[0])
            d_loss, g_loss = self.losses_from_logits(real_logits, fake_logits)
            penalty = self.penalty(real, fake, labels)
            d_total = d_loss if penalty is None else d_loss + penalty
            # scale_loss multiplies by the loss scale under mixed_float16 (apply_gradients divides it out)
            d_scaled = self.d_optimizer.scale_loss(d_total * per_replica)
            g_scaled = self.g_optimizer.scale_loss(g_loss * per_replica)
        d_grads = d_tape.gradient(d_scaled, self.discriminator.trainable_variables)
        g_grads = g_tape.gradient(g_scaled, self.generator.trainable_variables)
        self.d_optimizer.apply_gradients(list(zip(d_grads, self.discriminator.trainable_variables)))
        self.g_optimizer.apply_gradients(list(zip(g_grads, self.generator.trainable_variables)))

        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        if penalty is not None:
            self.penalty_tracker.update_state(penalty)
        self.d_real_tracker.update_state(tf.reduce_mean(tf.sigmoid(tf.cast(real_logits, tf.float32))))
        self.d_fake_tracker.update_state(tf.reduce_mean(tf.sigmoid(tf.cast(fake_logits, tf.float32))))
        right = tf.concat([tf.cast(real_logits > 0, tf.float32), tf.cast(fake_logits < 0, tf.float32)], axis=0)
        self.d_accuracy_tracker.update_state(right)
        return {m.name: m.result() for m in self.metrics}


def make_gan(generator, discriminator, seed: int = 0, lr: float = 2e-4, jit_compile: bool | None = None,
             augment=None, d_lr: float | None = None, g_lr: float | None = None, clipnorm: float | None = None,
             beta_1: float = 0.5, beta_2: float = 0.999, num_classes: int | None = None, **compile_kwargs) -> GAN:
    """A compiled :class:`GAN` with the DCGAN paper's optimiser: Adam(lr=2e-4, beta_1=0.5) for both
    players. ``d_lr`` / ``g_lr`` give the players their own learning rates (the two time-scale update
    rule, Heusel et al. 2017); ``clipnorm`` clips each gradient tensor's norm (Keras' optimizer option);
    other keywords (``loss``, ``gradient_penalty``, ``penalty_weight``, ``d_steps``, ``label_smoothing``,
    ``steps_per_execution``) go to :meth:`GAN.compile`. ``num_classes`` makes it a conditional GAN (networks
    that take ``[input, label]``, e.g. :func:`helpers.models.cdcgan_generator`). ``jit_compile=None`` takes
    the measured per-device choice (:func:`runtime.device_choices`). Under the ``mixed_float16`` policy both
    optimizers are wrapped in ``keras.optimizers.LossScaleOptimizer``."""
    if jit_compile is None:
        jit_compile = runtime.device_choices()["jit_compile"]
    gan = GAN(generator, discriminator, seed=seed, augment=augment, num_classes=num_classes)
    optimizers = [keras.optimizers.Adam(rate if rate is not None else lr, beta_1=beta_1, beta_2=beta_2,
                                        clipnorm=clipnorm) for rate in (d_lr, g_lr)]
    if keras.mixed_precision.global_policy().name == "mixed_float16":
        optimizers = [keras.optimizers.LossScaleOptimizer(o) for o in optimizers]
    gan.compile(*optimizers, jit_compile=jit_compile, **compile_kwargs)
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

    ``num_classes`` makes it a conditional VAE (the applications chapter): encoder and decoder take
    ``[input, label]``, ``fit`` and ``evaluate`` see ``(images, labels)`` batches, and ``encode``,
    ``generate`` and ``call`` take ``labels``.
    """

    scale = "unit"  # images live in [0, 1]

    def __init__(self, encoder, decoder, beta: float = 1.0, seed: int = 0, num_classes: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.encoder, self.decoder = encoder, decoder
        self.num_classes = num_classes
        self.z_dim = int((decoder.input_shape[0] if num_classes else decoder.input_shape)[-1])
        if int(encoder.output_shape[-1]) != 2 * self.z_dim:
            raise ValueError(
                f"the encoder must output 2 * latent_dim = {2 * self.z_dim} numbers (mean and log-variance) "
                f"for a decoder with latent_dim {self.z_dim}; it outputs {encoder.output_shape[-1]}"
            )
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.seed_generator = keras.random.SeedGenerator(seed)
        # held-out evaluation draws its own eps, the same ones every time (see evaluate): evaluating must
        # not shift the training run's noise, and two evaluations of one model must agree
        self.eval_seed_generator = keras.random.SeedGenerator(seed + 1)
        self._eval_seed = seed + 1
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

    def encode(self, x, training=False, labels=None):
        """Mean and log-variance of q(z|x) (q(z|x, y) for a conditional VAE, given ``labels``), float32,
        each ``(B, latent_dim)``."""
        labels = class_labels(self.num_classes, labels, x)
        stats = _conditioned(self.encoder, x, labels, training)
        mean, log_var = tf.split(tf.cast(stats, tf.float32), 2, axis=-1)
        return mean, log_var

    def sample_z(self, mean, log_var, seed_generator=None):
        """The reparameterisation trick: a sample of q(z|x) that is a differentiable function of
        mean and log_var, with the randomness in eps ~ N(0, I)."""
        eps = _standard_normal((tf.shape(mean)[0], self.z_dim), seed_generator or self.seed_generator)
        return mean + tf.exp(0.5 * log_var) * eps

    def _decode(self, z, labels, training):
        return _conditioned(self.decoder, z, labels, training)

    def generate(self, z, labels=None):
        """Decoded means (pixel probabilities in [0, 1]) for latent codes ``z`` (and, for a conditional
        VAE, the class of each image)."""
        labels = class_labels(self.num_classes, labels, z)
        return tf.sigmoid(tf.cast(self._decode(z, labels, training=False), tf.float32))

    def call(self, x, training=False, labels=None):
        """Reconstructions: the decoded mean at z = mean of q(z|x)."""
        return self.generate(self.encode(x, training=training, labels=labels)[0], labels)

    def neg_elbo_per_image(self, x, labels=None):
        """The negative ELBO of each image ``(B,)`` in nats (one draw of z, inference mode; a conditional VAE
        also takes the images' classes). Introduced in the challenges chapter."""
        recon, kl = self._terms(x, False, class_labels(self.num_classes, labels, x))
        return tf.cast(recon, tf.float32) + tf.cast(kl, tf.float32)

    def _terms(self, x, training, labels=None):
        """Per-example reconstruction term and KL, each ``(B,)``."""
        mean, log_var = self.encode(x, training=training, labels=labels)
        seeds = self.seed_generator if training else self.eval_seed_generator
        logits = self._decode(self.sample_z(mean, log_var, seeds), labels, training=training)
        return bernoulli_nll(x, logits), gaussian_kl(mean, log_var)

    def _batch(self, batch):
        return _batch_labels(batch, self.num_classes, "VAE")

    def _record(self, recon, kl):
        # per-example values: the trackers average over images, not over batches, so a smaller last
        # batch of a held-out set counts for its size
        for tracker, value in zip(self.trackers, (recon + self.beta * kl, recon + kl, recon, kl)):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.trackers}

    def train_step(self, batch):
        x, labels = self._batch(batch)
        with tf.GradientTape() as tape:
            recon, kl = self._terms(x, training=True, labels=labels)
            loss = tf.reduce_mean(recon + self.beta * kl)
            scaled = self.optimizer.scale_loss(loss / _replicas())  # summed over replicas; loss scale
        grads = tape.gradient(scaled, self.trainable_variables)
        self.optimizer.apply_gradients(list(zip(grads, self.trainable_variables)))
        return self._record(recon, kl)

    def evaluate(self, *args, **kwargs):
        """``keras.Model.evaluate`` (also what ``fit`` runs on ``validation_data``), with the evaluation
        noise restarted, so every evaluation of the same weights on the same data gives the same numbers."""
        state = self.eval_seed_generator.state
        state.assign(tf.constant([self._eval_seed, 0], state.dtype))
        return super().evaluate(*args, **kwargs)

    def test_step(self, batch):
        x, labels = self._batch(batch)
        return self._record(*self._terms(x, training=False, labels=labels))


def fit_mixture_prior(vae: "VAE", images, components: int = 10, seed: int = 0):
    """Ex-post density estimation (Ghosh et al. 2020, "From Variational to Deterministic Autoencoders"):
    fit a Gaussian mixture with full covariances (scikit-learn, ``components`` of them) to the encoder
    means of the training ``images`` (uint8 ``(N, 28, 28)``) and return it as a
    :class:`helpers.models.MixturePrior` layer. Decoding its samples draws codes where the encoder puts
    digits, instead of from the whole ``N(0, I)`` that the KL term only approximately fills.
    Introduced in the hands-on VAE chapter."""
    import numpy as np
    from sklearn.mixture import GaussianMixture

    from . import data, models

    ds = data.make_dataset(images, batch_size=500, scale=vae.scale, shuffle=False, drop_remainder=False)
    means = np.concatenate([vae.encode(x)[0].numpy() for x in ds]).astype(np.float64)
    gmm = GaussianMixture(components, covariance_type="full", random_state=seed, reg_covar=1e-4).fit(means)
    return models.MixturePrior(gmm.weights_, gmm.means_, np.linalg.cholesky(gmm.covariances_),
                               name="mixture_prior")


def make_vae(encoder, decoder, beta: float = 1.0, seed: int = 0, lr: float = 1e-3,
             jit_compile: bool | None = None, num_classes: int | None = None, **compile_kwargs) -> VAE:
    """A compiled :class:`VAE` with Adam(lr). ``jit_compile=None`` takes :func:`runtime.device_choices`'.
    Under the ``mixed_float16`` policy Keras wraps the optimizer in a ``LossScaleOptimizer`` and the step
    scales the loss (``optimizer.scale_loss``)."""
    if jit_compile is None:
        jit_compile = runtime.device_choices()["jit_compile"]
    vae = VAE(encoder, decoder, beta=beta, seed=seed, num_classes=num_classes)
    vae.compile(keras.optimizers.Adam(lr), jit_compile=jit_compile, **compile_kwargs)
    return vae


# --------------------------------------------------------------------------------------- exact steps
class _GlobalStep(keras.callbacks.Callback):
    """Keeps ``model.global_step`` (steps trained so far, across fit calls and resumes) up to date at the
    end of every log interval, before the other callbacks read it; ``model.final_step`` is where this
    ``fit_steps`` call ends."""

    def __init__(self, start: int, interval: int, final: int):
        super().__init__()
        self.start, self.interval, self.final = start, interval, final

    def on_train_begin(self, logs=None):
        self.model.final_step = self.final

    def on_epoch_end(self, epoch, logs=None):
        self.model.global_step = self.start + (epoch + 1) * self.interval


def _chunks(start: int, steps: int, log_every: int) -> list[tuple[int, int, int]]:
    """``(first step, interval, intervals)`` runs covering ``start .. steps`` with a log row at every
    multiple of ``log_every`` and at ``steps``: a short head up to the next multiple (a resumed run that
    stopped between two), whole intervals, a short tail (``steps`` not a multiple)."""
    out, step = [], start
    while step < steps:
        end = min(steps, (step // log_every + 1) * log_every)
        if step % log_every == 0 and end - step == log_every:  # whole intervals, as many as fit
            n = (steps - step) // log_every
            out.append((step, log_every, n))
            step += n * log_every
        else:
            out.append((step, end - step, 1))
            step = end
    return out


def fit_steps(model, dataset, steps: int, log_every: int = 100, callbacks=(), validation_data=None,
              verbose: int = 2):
    """Train ``model`` until it has made exactly ``steps`` updates in all, with a log row (the callbacks'
    ``on_epoch_end``) every ``log_every`` steps and at the end. Returns the ``History`` of this call.

    ``dataset`` is the whole training stream from step 0 (e.g. ``make_dataset(...).repeat()``); a model
    that has already trained (``model.global_step``, set by this function and by
    :func:`helpers.callbacks.restore`) continues from that step with the batches an uninterrupted run
    would have seen, so a resumed or extended run ends where a straight one does. Keras runs whole blocks
    of ``steps_per_execution`` steps, so each log interval uses the largest block size (up to
    :data:`STEPS_PER_EXECUTION`, or the one the model was compiled with) that divides it.
    Introduced in the hands-on GAN chapter; every chapter and the command line train through it.
    """
    steps, log_every = int(steps), int(log_every)
    if steps < 0 or log_every < 1:
        raise ValueError(f"steps must be >= 0 and log_every >= 1, got steps={steps}, log_every={log_every}")
    start = int(getattr(model, "global_step", 0))
    if start > steps:
        raise ValueError(f"the model has already trained {start} steps, more than the {steps} asked for")
    model.global_step = start
    requested = getattr(model, "_requested_steps_per_execution", None) or model.steps_per_execution
    model._requested_steps_per_execution = requested
    history = keras.callbacks.History()
    history.history = {}
    for first, interval, n in _chunks(start, steps, log_every):
        per_call = math.gcd(requested, interval)
        if model.steps_per_execution != per_call:  # a new block size needs a new compiled function
            model.steps_per_execution, model.train_function = per_call, None
        h = model.fit(dataset.skip(first), steps_per_epoch=interval, epochs=n, validation_data=validation_data,
                      shuffle=False, callbacks=[_GlobalStep(first, interval, steps), *callbacks], verbose=verbose)
        for k, v in h.history.items():
            history.history.setdefault(k, []).extend(v)
    return history
