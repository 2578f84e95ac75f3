"""Callbacks that show training: fixed-noise sample grids (chapters 3 and 5) and TensorBoard (tools page).
A grid is named by the run's global step (``model.global_step``, kept by ``experiments.fit_steps``).
"""
from __future__ import annotations

import os

import keras
import numpy as np

from . import data


def _step(model) -> int:
    return int(getattr(model, "global_step", 0))


class SampleGrid(keras.callbacks.Callback):
    """Generate images from one fixed batch of latent codes every ``every`` steps (at log rows; ``None``:
    every log row) and at the last step; keep them in ``grids`` with their ``steps`` (for animations) and
    optionally save them to ``out_dir`` (``samples_STEP.png``, a grid to look at, and ``samples_STEP.npy``,
    the uint8 images). Works for any model with ``generate(z)``, ``z_dim`` and ``scale``; a model whose
    outputs are points ``(n, d)`` (the toy GAN) has them kept as float32 and saved as ``.npy`` only. A
    conditional model (``num_classes``) is asked for the classes in equal blocks (``n=100``: one row per digit)."""

    def __init__(self, n: int = 64, every: int | None = None, out_dir: str | None = None, seed: int = 1234):
        super().__init__()
        self.n, self.every, self.out_dir, self.seed = n, every, out_dir, seed
        self.grids, self.steps = [], []

    def on_train_begin(self, logs=None):
        self.z = np.random.default_rng(self.seed).standard_normal((self.n, self.model.z_dim)).astype("float32")
        classes = getattr(self.model, "num_classes", None)
        # a conditional model: the classes in equal blocks, one row of the grid per class when n = classes^2
        self.labels = None if not classes else (np.arange(self.n) * classes // self.n).astype("int32")

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        last = step == getattr(self.model, "final_step", None)
        if (self.every and step % self.every and not last) or step in self.steps:
            return
        images = np.asarray(self.model.generate(self.z, *([] if self.labels is None else [self.labels])),
                            dtype=np.float32)
        points = images.ndim == 2
        if not points:
            images = data.to_uint8(images, self.model.scale)
        self.grids.append(images)
        self.steps.append(step)
        if self.out_dir and points:
            os.makedirs(self.out_dir, exist_ok=True)
            np.save(os.path.join(self.out_dir, f"samples_{step:06d}.npy"), images)
        elif self.out_dir:
            # matplotlib.image, not pyplot: saving a PNG must not switch a notebook's backend (an earlier
            # version called matplotlib.use("Agg") here, and every later figure of the notebook vanished)
            from matplotlib import image

            from . import plotting

            os.makedirs(self.out_dir, exist_ok=True)
            image.imsave(os.path.join(self.out_dir, f"samples_{step:06d}.png"), plotting.tile(images), cmap="gray")
            np.save(os.path.join(self.out_dir, f"samples_{step:06d}.npy"), images)
