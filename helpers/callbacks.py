"""The callback that shows training: fixed-noise sample grids (chapters 3 and 5), each named by the run's
global step (``model.global_step``, kept by ``lab.fitting.fit_steps``).
"""
from __future__ import annotations

import os

import keras
import numpy as np
from matplotlib import image  # not pyplot: saving a PNG must not switch a notebook's backend

from . import data, plotting


class SampleGrid(keras.callbacks.Callback):
    """Images from one fixed batch of latent codes every ``every`` steps (``None``: every log row) and at the last,
    kept in ``grids`` with their ``steps`` and saved to ``out_dir`` if given; a conditional model gets the classes
    in equal blocks (``n=100``: a row per digit)."""

    def __init__(self, n: int = 64, every: int | None = None, out_dir: str | None = None, seed: int = 1234):
        super().__init__()
        self.n, self.every, self.out_dir, self.seed = n, every, out_dir, seed
        self.grids, self.steps = [], []

    def on_train_begin(self, logs=None):
        rng = np.random.default_rng(self.seed)
        self.z = rng.standard_normal((self.n, self.model.z_dim)).astype("float32")
        classes = getattr(self.model, "num_classes", None)
        # a conditional model: the classes in equal blocks, one row of the grid per class when n = classes^2
        self.labels = None if not classes else (np.arange(self.n) * classes // self.n).astype("int32")

    def on_epoch_end(self, epoch, logs=None):
        step = int(getattr(self.model, "global_step", 0))
        last = step == getattr(self.model, "final_step", None)
        if (self.every and step % self.every and not last) or step in self.steps:
            return
        labels = [] if self.labels is None else [self.labels]
        images = np.asarray(self.model.generate(self.z, *labels), dtype=np.float32)
        points = images.ndim == 2
        if not points:
            images = data.to_uint8(images, self.model.scale)
        self.grids.append(images)
        self.steps.append(step)
        if self.out_dir:
            os.makedirs(self.out_dir, exist_ok=True)
            path = os.path.join(self.out_dir, f"samples_{step:06d}")
            if not points:
                image.imsave(path + ".png", plotting.tile(images), cmap="gray")
            np.save(path + ".npy", images)
