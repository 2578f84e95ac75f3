"""Network builders, introduced in chapter 3: the article's GAN networks (as printed, and corrected), DCGANs, VAE
encoders and decoders (chapter 5), class-conditional versions (chapter 9), MLPs for toy data (chapter 8) and
chapter 11's U-Net. Generators output images in ``[-1, 1]``, discriminators one logit per image.
"""
from __future__ import annotations

import warnings

import keras
import tensorflow as tf
from keras import layers
from tensorflow.keras.layers import BatchNormalization, Dense, Flatten, LeakyReLU
from tensorflow.keras.models import Sequential

IMG_SHAPE = (28, 28, 1)


# Its imports stay inside it: chapter 3 prints it as the article wrote it (inspect.getsource).
def article_generator_as_printed(z_dim: int = 100) -> keras.Sequential:
    """The article's ``build_generator`` (section 5.2) line for line, with ``tf.keras`` imports.

    Building it fails: the two ``Conv2DTranspose`` layers use ``padding="valid"``, so 7 -> 17 -> 37,
    the 7x7 convolution gives 31x31, and ``Reshape((28, 28, 1))`` raises ``ValueError``.
    """
    from tensorflow.keras.layers import (BatchNormalization, Conv2D, Conv2DTranspose, Dense, LeakyReLU,
                                         Reshape)
    from tensorflow.keras.models import Sequential

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # input_dim= and alpha= are deprecated in Keras 3
        model = Sequential()
        model.add(Dense(128 * 7 * 7, input_dim=z_dim))
        model.add(LeakyReLU(alpha=0.2))
        model.add(BatchNormalization())
        model.add(Reshape((7, 7, 128)))

        model.add(Conv2DTranspose(128, kernel_size=5, strides=2))
        model.add(LeakyReLU(alpha=0.2))
        model.add(BatchNormalization())

        model.add(Conv2DTranspose(128, kernel_size=5, strides=2))
        model.add(LeakyReLU(alpha=0.2))
        model.add(BatchNormalization())

        model.add(Conv2D(1, kernel_size=7))
        model.add(LeakyReLU(alpha=0.2))

        model.add(Reshape((28, 28, 1)))
    return model


def article_discriminator_as_printed(img_shape=IMG_SHAPE) -> keras.Sequential:
    """The article's ``build_discriminator`` (section 5.2) line for line (its ``tf.keras`` imports are at
    the top of this module): an MLP with batch normalisation and a sigmoid output. It builds and runs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        model = Sequential()
        model.add(Flatten(input_shape=img_shape))

        model.add(Dense(128))
        model.add(LeakyReLU(alpha=0.2))
        model.add(BatchNormalization())

        model.add(Dense(128))
        model.add(LeakyReLU(alpha=0.2))
        model.add(BatchNormalization())

        model.add(Dense(1, activation="sigmoid"))
    return model


def article_generator(z_dim: int = 100) -> keras.Sequential:
    """The article's generator, corrected: ``padding="same"`` (7 -> 14 -> 28) and a tanh output."""
    return keras.Sequential(
        [
            keras.Input((z_dim,)),
            layers.Dense(128 * 7 * 7),
            layers.LeakyReLU(0.2),
            layers.BatchNormalization(),
            layers.Reshape((7, 7, 128)),
            layers.Conv2DTranspose(128, 5, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.BatchNormalization(),
            layers.Conv2DTranspose(128, 5, strides=2, padding="same"),
            layers.LeakyReLU(0.2),
            layers.BatchNormalization(),
            layers.Conv2D(1, 7, padding="same", activation="tanh", dtype="float32"),
        ],
        name="article_generator",
    )


def article_discriminator(img_shape=IMG_SHAPE) -> keras.Sequential:
    """The article's MLP discriminator, corrected: a logit output and no batch normalisation."""
    return keras.Sequential(
        [
            keras.Input(img_shape),
            layers.Flatten(),
            layers.Dense(128),
            layers.LeakyReLU(0.2),
            layers.Dense(128),
            layers.LeakyReLU(0.2),
            layers.Dense(1, dtype="float32"),  # logits in float32 under mixed precision
        ],
        name="article_discriminator",
    )


def _init():  # DCGAN: normal weights, mean 0, standard deviation 0.02
    return keras.initializers.RandomNormal(stddev=0.02)


def dcgan_generator(z_dim: int = 64, width: int = 64) -> keras.Sequential:
    """DCGAN generator (Radford et al. 2016) for 28x28: project, reshape, two fractionally-strided convolutions."""
    def up(filters, **kw):  # a fresh initializer per layer, in layer order (each draws its seed)
        return layers.Conv2DTranspose(filters, 4, strides=2, padding="same", kernel_initializer=_init(), **kw)

    return keras.Sequential(
        [
            keras.Input((z_dim,)),
            layers.Dense(7 * 7 * 2 * width, use_bias=False, kernel_initializer=_init()),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Reshape((7, 7, 2 * width)),
            up(width, use_bias=False),
            layers.BatchNormalization(),
            layers.ReLU(),
            up(1, activation="tanh", dtype="float32"),  # images in float32 under mixed precision
        ],
        name="dcgan_generator",
    )


def dcgan_discriminator(width: int = 64, img_shape=IMG_SHAPE, spectral_norm: bool = False,
                        batch_norm: bool = True) -> keras.Sequential:
    """DCGAN discriminator: strided convolutions, LeakyReLU(0.2), batch norm after the second, one logit.
    ``spectral_norm`` (Miyato et al. 2018) wraps every weight layer and drops batch norm, like ``batch_norm=False``."""
    batch_norm = batch_norm and not spectral_norm

    def weighted(layer):
        return layers.SpectralNormalization(layer) if spectral_norm else layer

    def conv(filters, **kw):
        layer = layers.Conv2D(filters, 4, strides=2, padding="same", kernel_initializer=_init(), **kw)
        return weighted(layer)

    name = "dcgan_discriminator" if batch_norm else "dcgan_critic"
    return keras.Sequential(
        [
            keras.Input(img_shape),
            conv(width),
            layers.LeakyReLU(0.2),
            conv(2 * width, use_bias=not batch_norm),
            *([layers.BatchNormalization()] if batch_norm else []),
            layers.LeakyReLU(0.2),
            layers.Flatten(),
            weighted(layers.Dense(1, kernel_initializer=_init(), dtype="float32")),  # logits in float32
        ],
        name="dcgan_discriminator_sn" if spectral_norm else name,
    )


# ------------------------------------------------------------------------------ conditional models
def _label_input():
    return keras.Input((), dtype="int32", name="label")


def cdcgan_generator(z_dim: int = 64, width: int = 64, num_classes: int = 10) -> keras.Model:
    """Class-conditional DCGAN generator: the label's embedding joins the noise. Introduced in chapter 9."""
    z, y = keras.Input((z_dim,), name="z"), _label_input()
    code = layers.Concatenate()([z, layers.Embedding(num_classes, z_dim)(y)])
    return keras.Model([z, y], dcgan_generator(2 * z_dim, width)(code), name="cdcgan_generator")


def cdcgan_discriminator(width: int = 64, num_classes: int = 10, spectral_norm: bool = False,
                         batch_norm: bool = True) -> keras.Model:
    """Class-conditional DCGAN discriminator with a projection (Miyato & Koyama 2018): ``w . phi(x) + e_y . phi(x)``
    on the :func:`dcgan_discriminator` features ``phi``, ``e_y`` a label embedding. Introduced in chapter 9."""
    body = dcgan_discriminator(width, spectral_norm=spectral_norm, batch_norm=batch_norm)
    x, y = keras.Input(IMG_SHAPE, name="image"), _label_input()
    h = x
    for layer in body.layers[:-1]:
        h = layer(h)
    h = layers.Activation("linear", dtype="float32")(h)  # the features in float32, as the logit
    embedding = layers.Embedding(num_classes, h.shape[-1], embeddings_initializer=_init(), dtype="float32")
    projection = embedding(y)
    linear = body.layers[-1](h)
    logit = layers.Add(dtype="float32")([linear, layers.Dot(axes=1, dtype="float32")([projection, h])])
    return keras.Model([x, y], logit, name="cdcgan_discriminator")


def _one_hot(y, num_classes):
    return layers.CategoryEncoding(num_classes, output_mode="one_hot")(y)


def cvae_encoder(z_dim: int = 16, width: int = 32, num_classes: int = 10) -> keras.Model:
    """Conditional VAE encoder q(z|x, y): the one-hot label joins the conv features. Introduced in chapter 9."""
    x, y = keras.Input(IMG_SHAPE, name="image"), _label_input()
    h = layers.Conv2D(width, 3, strides=2, padding="same", activation="relu")(x)
    h = layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu")(h)
    h = layers.Concatenate()([layers.Flatten()(h), _one_hot(y, num_classes)])
    h = layers.Dense(8 * width, activation="relu")(h)
    return keras.Model([x, y], layers.Dense(2 * z_dim, dtype="float32")(h), name="cvae_encoder")


def cvae_decoder(z_dim: int = 16, width: int = 32, num_classes: int = 10) -> keras.Model:
    """Conditional VAE decoder p(x|z, y): the one-hot label joins ``z``. Introduced in chapter 9."""
    z, y = keras.Input((z_dim,), name="z"), _label_input()
    code = layers.Concatenate()([z, _one_hot(y, num_classes)])
    return keras.Model([z, y], vae_decoder(z_dim + num_classes, width)(code), name="cvae_decoder")


def mlp_generator(z_dim: int = 2, width: int = 128, depth: int = 2, out_dim: int = 2) -> keras.Sequential:
    """A small MLP generator for 2-D toy data (chapter 8): ``depth`` ReLU layers, a linear output."""
    inputs = keras.Input((z_dim,))
    hidden = [layers.Dense(width, activation="relu") for _ in range(depth)]
    return keras.Sequential([inputs, *hidden, layers.Dense(out_dim, dtype="float32")], name="mlp_generator")


def mlp_discriminator(width: int = 128, depth: int = 2, in_dim: int = 2,
                      spectral_norm: bool = False) -> keras.Sequential:
    """A small MLP discriminator for 2-D toy data, with ``spectral_norm`` on every dense layer if asked."""
    def dense(units, **kw):
        layer = layers.Dense(units, **kw)
        return layers.SpectralNormalization(layer) if spectral_norm else layer

    hidden_layers = []
    for _ in range(depth):
        hidden_layers += [dense(width), layers.LeakyReLU(0.2)]
    return keras.Sequential([keras.Input((in_dim,)), *hidden_layers, dense(1, dtype="float32")],
                            name="mlp_discriminator")


def vae_encoder(z_dim: int = 16, width: int = 32, img_shape=IMG_SHAPE) -> keras.Sequential:
    """Convolutional VAE encoder: two stride-2 convolutions, a dense layer, q(z|x)'s mean and log-variance."""
    return keras.Sequential(
        [
            keras.Input(img_shape),
            layers.Conv2D(width, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(8 * width, activation="relu"),
            layers.Dense(2 * z_dim, dtype="float32"),  # statistics of q(z|x), kept in float32
        ],
        name="vae_encoder",
    )


def vae_decoder(z_dim: int = 16, width: int = 32) -> keras.Sequential:
    """Convolutional VAE decoder, the encoder mirrored, with one Bernoulli logit per pixel."""
    return keras.Sequential(
        [
            keras.Input((z_dim,)),
            layers.Dense(8 * width, activation="relu"),
            layers.Dense(7 * 7 * 2 * width, activation="relu"),
            layers.Reshape((7, 7, 2 * width)),
            layers.Conv2DTranspose(2 * width, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(1, 3, padding="same", dtype="float32"),  # logits
        ],
        name="vae_decoder",
    )


def _pick(normal, weights):
    """Indices drawn with probabilities ``weights`` from standard normal numbers, through the normal CDF."""
    u = 0.5 * (1.0 + tf.math.erf(normal / 2.0**0.5))
    edges = tf.math.cumsum(tf.constant(weights[:-1], tf.float32))
    return tf.searchsorted(edges, u, side="right")


@keras.saving.register_keras_serializable(package="helpers")
class MixturePrior(layers.Layer):
    """A Gaussian mixture (:func:`helpers.variants.fit_mixture_prior`) as a map from ``N(0, I)`` noise: of ``d + 1``
    numbers per row the first picks the component, the others are scaled and shifted by it."""

    def __init__(self, weights, means, scale_trils, **kwargs):
        super().__init__(**kwargs)
        self.mixture_weights = [float(w) for w in weights]
        self.means = [[float(v) for v in m] for m in means]
        self.scale_trils = [[[float(v) for v in row] for row in t] for t in scale_trils]
        self.z_dim = len(self.means[0])

    def call(self, noise):
        noise = tf.cast(noise, tf.float32)
        k = _pick(noise[:, 0], self.mixture_weights)  # component of each row
        means = tf.gather(tf.constant(self.means, tf.float32), k)
        trils = tf.gather(tf.constant(self.scale_trils, tf.float32), k)
        return means + tf.linalg.matvec(trils, noise[:, 1:])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.z_dim)

    def get_config(self):
        config = {"weights": self.mixture_weights, "means": self.means, "scale_trils": self.scale_trils}
        return {**super().get_config(), **config}


@keras.saving.register_keras_serializable(package="helpers")
class ClusterChoice(layers.Layer):
    """Self-conditioning's sampler: of ``z_dim + 1`` normal numbers per row the first picks a cluster with its
    share of the training set, the others are ``z``. Returns ``[z, cluster]``. Introduced in chapter 9."""

    def __init__(self, shares, **kwargs):
        super().__init__(**kwargs)
        self.shares = [float(s) for s in shares]

    def call(self, noise):
        noise = tf.cast(noise, tf.float32)
        return noise[:, 1:], tf.cast(_pick(noise[:, 0], self.shares), tf.int32)

    def compute_output_shape(self, input_shape):
        return [(input_shape[0], input_shape[1] - 1), (input_shape[0],)]

    def get_config(self):
        return {**super().get_config(), "shares": self.shares}


def self_conditioned_sampler(generator, shares) -> keras.Model:
    """The sampler of a self-conditioned GAN (Liu et al. 2020): standard normal noise ``(B, z_dim + 1)`` in,
    images out; the first noise number picks a cluster in proportion to ``shares`` (the clusters' shares of
    the training set), and the conditional ``generator`` draws an image of that cluster. So it is sampled like
    any unconditional generator. Introduced in chapter 9."""
    z_dim = int(generator.inputs[0].shape[-1])
    noise = keras.Input((z_dim + 1,), name="noise")
    z, cluster = ClusterChoice(shares)(noise)
    return keras.Model(noise, generator([z, cluster]), name="self_conditioned_sampler")


# --------------------------------------------------------------------------------- chapter 11's U-Net
@keras.saving.register_keras_serializable(package="helpers")
class NoiseEmbedding(layers.Layer):
    """Sinusoidal embedding ``(B, 1, 1, dims)`` of noise variances ``(B, 1, 1, 1)``, frequencies 1 to 1,000."""

    def __init__(self, dims: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.dims = dims

    def call(self, variance):
        freqs = keras.ops.exp(keras.ops.linspace(0.0, keras.ops.log(1000.0), self.dims // 2))
        angles = 2.0 * 3.141592653589793 * keras.ops.cast(freqs, variance.dtype) * variance
        return keras.ops.concatenate([keras.ops.sin(angles), keras.ops.cos(angles)], axis=-1)

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


def _residual(x, width: int):
    skip = x if x.shape[-1] == width else layers.Conv2D(width, 1)(x)
    x = layers.GroupNormalization(groups=8, center=False, scale=False)(x)
    x = layers.Conv2D(width, 3, padding="same", activation="swish")(x)
    x = layers.Conv2D(width, 3, padding="same")(x)
    return layers.Add()([x, skip])


def unet(widths=(32, 64, 96), blocks: int = 2, embed_dims: int = 32) -> keras.Model:
    """The noise-predicting network of chapter 11: ``[noisy images (B, 28, 28, 1), noise variances
    (B, 1, 1, 1)]`` -> the predicted noise ``(B, 28, 28, 1)``. A U-Net: residual blocks at each width,
    average pooling down (28 -> 14 -> 7 for three widths), the last width at the bottom, then upsampling
    with the skip connections of the way down; the noise level enters as a :class:`NoiseEmbedding`
    added to the first features. The last layer starts at zero (the first prediction is "no noise").
    Introduced in chapter 11."""
    images = keras.Input(IMG_SHAPE, name="noisy_images")
    variances = keras.Input((1, 1, 1), name="noise_variances")
    e = layers.UpSampling2D(IMG_SHAPE[0])(NoiseEmbedding(embed_dims)(variances))
    x = layers.Concatenate()([layers.Conv2D(widths[0], 1)(images), e])
    skips = []
    for width in widths[:-1]:
        for _ in range(blocks):
            x = _residual(x, width)
            skips.append(x)
        x = layers.AveragePooling2D(2)(x)
    for _ in range(blocks):
        x = _residual(x, widths[-1])
    for width in reversed(widths[:-1]):
        x = layers.UpSampling2D(interpolation="bilinear")(x)
        for _ in range(blocks):
            x = _residual(layers.Concatenate()([x, skips.pop()]), width)
    out = layers.Conv2D(1, 1, kernel_initializer="zeros", dtype="float32")(x)
    return keras.Model([images, variances], out, name="unet")
