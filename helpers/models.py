"""Network builders: the article's GAN networks (as printed, and corrected), a DCGAN, and a
convolutional VAE's encoder and decoder.

Introduced in the hands-on GAN chapter (``03_gan_mnist``). Generators map ``(B, z_dim)`` noise to
``(B, 28, 28, 1)`` images in ``[-1, 1]`` (tanh); discriminators map images to one *logit* per image.
The VAE builders (hands-on VAE chapter, ``05_vae_mnist``) work on images in ``[0, 1]``: the encoder maps
them to ``2 * latent_dim`` numbers (the mean and the log-variance of q(z|x)), the decoder maps ``z`` to
one Bernoulli *logit* per pixel.
"""
from __future__ import annotations

import warnings

import keras
from keras import layers

IMG_SHAPE = (28, 28, 1)


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
    """The article's ``build_discriminator`` (section 5.2) line for line: an MLP (the article's text
    calls it convolutional) with batch normalisation and a sigmoid output. It builds and runs."""
    from tensorflow.keras.layers import BatchNormalization, Dense, Flatten, LeakyReLU
    from tensorflow.keras.models import Sequential

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
    """The article's generator, corrected: ``padding="same"`` (7 -> 14 -> 28) and a tanh output in
    ``[-1, 1]`` (the article's LeakyReLU output is unbounded while its data is scaled to ``[-1, 1]``)."""
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
    """The article's MLP discriminator, corrected: no batch normalisation (it lets the discriminator
    compare statistics within a batch of all-real or all-fake images) and a logit output (the loss
    applies the sigmoid, which is numerically stable)."""
    return keras.Sequential(
        [
            keras.Input(img_shape),
            layers.Flatten(),
            layers.Dense(256),
            layers.LeakyReLU(0.2),
            layers.Dense(128),
            layers.LeakyReLU(0.2),
            layers.Dense(1, dtype="float32"),  # logits in float32 under mixed precision
        ],
        name="article_discriminator",
    )


def _init():
    return keras.initializers.RandomNormal(stddev=0.02)  # DCGAN: all weights from N(0, 0.02)


def dcgan_generator(z_dim: int = 64, width: int = 64) -> keras.Sequential:
    """DCGAN generator (Radford et al. 2016) sized for 28x28: project and reshape, fractionally-strided
    convolutions, batch norm and ReLU everywhere but the tanh output layer, no pooling or dense hidden
    layers beyond the projection."""
    return keras.Sequential(
        [
            keras.Input((z_dim,)),
            layers.Dense(7 * 7 * 2 * width, use_bias=False, kernel_initializer=_init()),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Reshape((7, 7, 2 * width)),
            layers.Conv2DTranspose(width, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_init()),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.Conv2DTranspose(1, 4, strides=2, padding="same", activation="tanh", kernel_initializer=_init(),
                                   dtype="float32"),  # images in float32 under mixed precision
        ],
        name="dcgan_generator",
    )


def dcgan_discriminator(width: int = 64, img_shape=IMG_SHAPE) -> keras.Sequential:
    """DCGAN discriminator: strided convolutions instead of pooling, LeakyReLU(0.2), batch norm on all
    but the first layer, one logit out."""
    return keras.Sequential(
        [
            keras.Input(img_shape),
            layers.Conv2D(width, 4, strides=2, padding="same", kernel_initializer=_init()),
            layers.LeakyReLU(0.2),
            layers.Conv2D(2 * width, 4, strides=2, padding="same", use_bias=False, kernel_initializer=_init()),
            layers.BatchNormalization(),
            layers.LeakyReLU(0.2),
            layers.Flatten(),
            layers.Dense(1, kernel_initializer=_init(), dtype="float32"),  # logits in float32
        ],
        name="dcgan_discriminator",
    )


def vae_encoder(latent_dim: int = 16, width: int = 32, img_shape=IMG_SHAPE) -> keras.Sequential:
    """Convolutional VAE encoder: two stride-2 convolutions (28 -> 14 -> 7), a dense layer, then
    ``2 * latent_dim`` outputs, the mean and the log-variance of the diagonal Gaussian q(z|x)."""
    return keras.Sequential(
        [
            keras.Input(img_shape),
            layers.Conv2D(width, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(2 * width, 3, strides=2, padding="same", activation="relu"),
            layers.Flatten(),
            layers.Dense(8 * width, activation="relu"),
            layers.Dense(2 * latent_dim, dtype="float32"),  # statistics of q(z|x), kept in float32
        ],
        name="vae_encoder",
    )


def vae_decoder(latent_dim: int = 16, width: int = 32) -> keras.Sequential:
    """Convolutional VAE decoder, the encoder mirrored: dense, reshape to 7x7, two stride-2 transposed
    convolutions (7 -> 14 -> 28), one Bernoulli logit per pixel."""
    return keras.Sequential(
        [
            keras.Input((latent_dim,)),
            layers.Dense(8 * width, activation="relu"),
            layers.Dense(7 * 7 * 2 * width, activation="relu"),
            layers.Reshape((7, 7, 2 * width)),
            layers.Conv2DTranspose(2 * width, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2DTranspose(width, 3, strides=2, padding="same", activation="relu"),
            layers.Conv2D(1, 3, padding="same", dtype="float32"),  # logits
        ],
        name="vae_decoder",
    )
