"""The diffusion process of chapter 11 (Ho et al. 2020; Song, Meng & Ermon 2021) in numpy on flat arrays: noise
schedules, the forward process, the optimal denoiser of a finite training set and the DDIM sampler, into which a
network plugs as ``denoise(x_t, alpha_bar)``; ``alpha_bar`` is the signal's share of the variance.
"""
from __future__ import annotations

import math

import keras
import numpy as np


def linear_betas(steps: int = 1000, start: float = 1e-4, end: float = 0.02) -> np.ndarray:
    """Ho et al.'s schedule: the variance ``beta_t`` added at ``t = 1 .. steps``, linear. Introduced in chapter 11."""
    return np.linspace(start, end, steps)


def alpha_bars(betas) -> np.ndarray:
    """``alpha_bar_t = prod_{s <= t} (1 - beta_s)`` for ``t = 0 .. T`` (1 at 0). Introduced in chapter 11."""
    return np.concatenate([[1.0], np.cumprod(1.0 - np.asarray(betas, np.float64))])


def cosine_alpha_bars(steps: int = 1000, s: float = 0.008) -> np.ndarray:
    """Nichol & Dhariwal's (2021) cosine schedule, ``alpha_bar_t`` for ``t = 0 .. steps``. Introduced in chapter 11."""
    f = np.cos((np.arange(steps + 1) / steps + s) / (1 + s) * np.pi / 2) ** 2
    return np.clip(f / f[0], 1e-5, 1.0)


def noisy(x0, alpha_bar, eps):
    """The forward process in one step: a draw of ``q(x_t | x_0)`` for normal ``eps``. Introduced in chapter 11."""
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
    """``alpha_bar`` at times ``t`` in [0, 1] (keras-io's ``ddim.py``): ``sqrt(alpha_bar) = cos(angle)``, the angle
    rising linearly from ``acos(highest)`` to ``acos(lowest)``; numpy or tensors. Introduced in chapter 11."""
    start, end = math.acos(highest), math.acos(lowest)
    return keras.ops.square(keras.ops.cos(start + t * (end - start)))


def _batched(network, images, variances, batch: int, dtype) -> np.ndarray:
    """``network.predict_on_batch`` over ``batch``-sized slices, concatenated as ``dtype``."""
    parts = [[images[i : i + batch], variances[i : i + batch]] for i in range(0, len(images), batch)]
    return np.concatenate([np.asarray(network.predict_on_batch(part), dtype) for part in parts])


def network_denoiser(network, shape=(28, 28, 1), batch: int = 500, clip: bool = True):
    """``denoise(x_t, alpha_bar)`` for :func:`ddim` from a noise-predicting ``network``: the clean image its guess
    implies, clipped to [-1, 1] with ``clip`` (at high noise a small ``sqrt(alpha_bar)`` magnifies its errors)."""
    def denoise(x_t, alpha_bar):
        x = np.asarray(x_t, np.float32).reshape((-1, *shape))
        variance = np.full((len(x), 1, 1, 1), 1.0 - alpha_bar, np.float32)
        eps = _batched(network, x, variance, batch, np.float64)
        x0 = (x - np.sqrt(1.0 - alpha_bar) * eps) / np.sqrt(alpha_bar)
        return (np.clip(x0, -1.0, 1.0) if clip else x0).reshape(len(x), -1)

    return denoise


def sample(network, noise, steps: int, clip: bool = True):
    """Images ``(N, 28, 28, 1)`` from noise ``(N, 784)`` by ``steps`` DDIM steps of a noise-predicting ``network``."""
    levels = np.asarray(signal_share(np.linspace(1.0, 0.0, int(steps) + 1)), np.float64)
    x_T = np.asarray(noise, np.float64).reshape(len(noise), -1)
    out = ddim(network_denoiser(network, clip=clip), x_T, levels)
    return out.reshape(len(noise), 28, 28, 1)
