"""The diffusion process (Ho et al. 2020; Song, Meng & Ermon 2021): a noise schedule, the forward process
in closed form, the denoiser that is optimal for a finite training set, and the deterministic DDIM
sampler. Plain numpy on flat arrays ``(N, D)``; the trained network of chapter 11 plugs into the same
sampler as a ``denoise(x_t, alpha_bar)`` function.

Noise levels are written as ``alpha_bar`` (the signal's share of the variance, 1 at the data, near 0 at
pure noise): ``x_t = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps``.
"""
from __future__ import annotations

import numpy as np


def linear_betas(steps: int = 1000, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    """Ho et al.'s schedule: the variance ``beta_t`` added at step ``t = 1 .. steps``, rising linearly.
    Introduced in chapter 11."""
    return np.linspace(start, end, steps)


def alpha_bars(betas) -> np.ndarray:
    """``alpha_bar_t = prod_{s <= t} (1 - beta_s)`` for ``t = 0 .. T`` (``alpha_bar_0 = 1``: no noise yet).
    Introduced in chapter 11."""
    return np.concatenate([[1.0], np.cumprod(1.0 - np.asarray(betas, np.float64))])


def cosine_alpha_bars(steps: int = 1000, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal's (2021) cosine schedule, ``alpha_bar_t`` for ``t = 0 .. steps``: it destroys the
    signal more evenly over the steps than the linear one. Introduced in chapter 11."""
    f = np.cos((np.arange(steps + 1) / steps + s) / (1 + s) * np.pi / 2) ** 2
    return np.clip(f / f[0], 1e-5, 1.0)


def noisy(x0, alpha_bar, eps):
    """The forward process in one step: ``x_t = sqrt(alpha_bar) x0 + sqrt(1 - alpha_bar) eps``, i.e. a draw
    of ``q(x_t | x_0)`` for standard normal ``eps``. Introduced in chapter 11."""
    return np.sqrt(alpha_bar) * x0 + np.sqrt(1.0 - alpha_bar) * eps


def optimal_denoiser(train):
    """The denoiser that minimises the training loss exactly on the flat training images ``train`` (N, D):
    ``E[x_0 | x_t]`` when ``x_0`` is one of them, each equally likely. It is a softmax-weighted average of the
    training images, the weights falling with each image's distance to ``x_t / sqrt(alpha_bar)``.
    Returns ``denoise(x_t, alpha_bar)``. Introduced in chapter 11."""
    train = np.asarray(train, np.float64)
    sq = (train ** 2).sum(1)

    def denoise(x_t, alpha_bar):
        x_t = np.asarray(x_t, np.float64)
        # log q(x_t | x_i) up to a constant: -|x_t - sqrt(ab) x_i|^2 / (2 (1 - ab))
        dist = (x_t ** 2).sum(1)[:, None] - 2 * np.sqrt(alpha_bar) * x_t @ train.T + alpha_bar * sq[None]
        logits = -dist / (2 * (1 - alpha_bar))
        w = np.exp(logits - logits.max(1, keepdims=True))
        return (w / w.sum(1, keepdims=True)) @ train

    return denoise


def ddim(denoise, x_T, levels):
    """Deterministic DDIM sampling (Song, Meng & Ermon 2021, eta = 0): start from noise ``x_T`` at the
    noise level ``levels[0]`` and walk through the decreasing ``alpha_bar`` values of ``levels`` (ending
    at 1 or close to it). At each level the denoiser's guess of the clean image ``x0`` and the noise it
    implies are recombined at the next level. Returns the final ``x0`` guess. Introduced in chapter 11."""
    x = np.asarray(x_T, np.float64)
    for ab, ab_next in zip(levels[:-1], levels[1:]):
        x0 = denoise(x, ab)
        eps = (x - np.sqrt(ab) * x0) / np.sqrt(1 - ab)
        x = np.sqrt(ab_next) * x0 + np.sqrt(1 - ab_next) * eps
    return denoise(x, levels[-1]) if levels[-1] < 1 else x


def signal_share(t, lowest: float = 0.02, highest: float = 0.95):
    """``alpha_bar`` at continuous times ``t`` in [0, 1], the schedule chapter 11's network trains and
    samples with (keras-io's ``ddim.py``): ``sqrt(alpha_bar) = cos(angle)`` with the angle rising linearly
    from ``acos(highest)`` at ``t = 0`` to ``acos(lowest)`` at ``t = 1``, a cosine schedule that never
    reaches pure data or pure noise. Works on numpy arrays and TensorFlow tensors (``keras.ops``).
    Introduced in chapter 11."""
    import math

    import keras

    start, end = math.acos(highest), math.acos(lowest)
    return keras.ops.square(keras.ops.cos(start + t * (end - start)))


def network_denoiser(network, shape=(28, 28, 1), batch: int = 500, clip: bool = True):
    """``denoise(x_t, alpha_bar)`` for :func:`ddim` from a noise-predicting network (chapter 11's U-Net,
    inputs ``[images, noise variances]``): the clean image implied by its noise guess,
    ``(x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar)``, on flat arrays; ``clip`` keeps that guess in the
    images' range [-1, 1] (at high noise the division by a small ``sqrt(alpha_bar)`` magnifies the network's
    errors far outside it). Used by chapter 11's hands-on part."""
    def denoise(x_t, alpha_bar):
        x = np.asarray(x_t, np.float32).reshape((-1, *shape))
        variance = np.full((len(x), 1, 1, 1), 1.0 - alpha_bar, np.float32)
        eps = np.concatenate([np.asarray(network.predict_on_batch([x[i:i + batch], variance[i:i + batch]]),
                                         np.float64) for i in range(0, len(x), batch)])
        x0 = (x - np.sqrt(1.0 - alpha_bar) * eps) / np.sqrt(alpha_bar)
        return (np.clip(x0, -1.0, 1.0) if clip else x0).reshape(len(x), -1)

    return denoise


def sample(network, noise, steps: int, clip: bool = True):
    """Images in [-1, 1] ``(N, 28, 28, 1)`` from standard normal ``noise`` ``(N, 784)`` with ``steps`` DDIM
    steps of a noise-predicting ``network`` along :func:`signal_share` (``clip``: see
    :func:`network_denoiser`). Used by chapter 11's hands-on part."""
    levels = np.asarray(signal_share(np.linspace(1.0, 0.0, int(steps) + 1)), np.float64)
    out = ddim(network_denoiser(network, clip=clip), np.asarray(noise, np.float64).reshape(len(noise), -1), levels)
    return out.reshape(len(noise), 28, 28, 1)


def denoising_loss(network, x0, seed: int = 0, batch: int = 500) -> float:
    """The simple loss (mean squared error of the predicted noise) of a noise-predicting ``network`` on
    images ``x0`` ``(N, 28, 28, 1)`` in [-1, 1], at noise levels spread evenly over [0, 1] and noise drawn
    with ``seed``: two image sets scored with the same ``seed`` and size meet the same noise, so their
    losses compare. Used by chapter 11's memorisation grid (training vs held-out images)."""
    x0 = np.asarray(x0, np.float32)
    rng = np.random.default_rng(seed)
    t = ((np.arange(len(x0)) + 0.5) / len(x0)).astype(np.float32)
    alpha_bar = np.asarray(signal_share(t), np.float32).reshape(-1, 1, 1, 1)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    x_t = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * eps
    predicted = np.concatenate([np.asarray(network.predict_on_batch([x_t[i:i + batch], 1 - alpha_bar[i:i + batch]]),
                                           np.float32) for i in range(0, len(x0), batch)])
    return float(np.mean(np.square(eps - predicted)))
