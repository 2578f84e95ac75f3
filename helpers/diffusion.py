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
