"""The callbacks every long run uses: fixed-noise sample grids, a CSV log, checkpoints that a run resumes
from, and a guard that stops a diverging run. They read the run's global step from ``model.global_step``
(kept by :func:`helpers.training.fit_steps`), so their rows, files and messages count steps, not epochs.

Introduced in chapter 3 (``03_gan_mnist``); the VAE chapters reuse them unchanged.
"""
from __future__ import annotations

import csv
import math
import os
import time

import keras
import numpy as np
import tensorflow as tf

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


class TrainingDiverged(FloatingPointError):
    """Raised by :class:`NaNGuard` when a loss becomes NaN or infinite."""


class NaNGuard(keras.callbacks.Callback):
    """Stop training with a clear message as soon as a logged loss is NaN or infinite, before any
    checkpoint can save the broken weights (Keras reports after every block of ``steps_per_execution``
    steps, so the message gives the block's last step)."""

    def __init__(self, checkpoint_dir: str | None = None):
        super().__init__()
        self.checkpoint_dir = checkpoint_dir

    def on_train_batch_end(self, batch, logs=None):
        # `batch` is the index of the last step done in this log interval
        bad = {k: float(v) for k, v in (logs or {}).items() if not math.isfinite(float(v))}
        if bad:
            self.model.stop_training = True
            saved = self.checkpoint_dir and os.path.isdir(self.checkpoint_dir) and \
                tf.train.latest_checkpoint(self.checkpoint_dir)
            where = (f" The last good checkpoint is in {self.checkpoint_dir}; resume from it with a lower learning "
                     "rate." if saved else " No checkpoint had been written yet: start again with a lower learning "
                     "rate.")
            raise TrainingDiverged(
                f"Training diverged by step {_step(self.model) + batch + 1}: {bad}. Nothing was saved from the "
                f"diverged state.{where}"
            )


class CSVLog(keras.callbacks.CSVLogger):
    """``keras.callbacks.CSVLogger(path, append=True)`` plus what a resumable run needs: a ``step`` column
    (the global step), ``images_per_s`` and a ``wall_s`` (training seconds) that continues across a
    resume; rows past the step the model resumed from (written after the last checkpoint of an
    interrupted run) are dropped first. ``epoch`` numbers the rows from 0."""

    def __init__(self, path: str, batch_size: int):
        super().__init__(path, append=True)
        self.batch_size = batch_size

    def on_train_begin(self, logs=None):
        step, rows, fields = _step(self.model), [], None
        if os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                reader = csv.DictReader(f)
                rows, fields = list(reader), reader.fieldnames
            keep = [r for r in rows if int(r["step"]) <= step]
            if len(keep) < len(rows):
                tmp = self.filename + ".tmp"
                with open(tmp, "w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=fields)
                    writer.writeheader()
                    writer.writerows(keep)
                os.replace(tmp, self.filename)
            rows = keep
        self._row = len(rows)
        self._wall = float(rows[-1]["wall_s"]) if rows else 0.0
        self._last_step, self._t_run = step, time.perf_counter()
        super().on_train_begin(logs)
        if fields:  # a resumed run keeps its file's columns (ones a newer version adds are left out)
            self.keys = [f for f in fields if f != "epoch"]

    def on_epoch_begin(self, epoch, logs=None):
        self._t = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now, step = time.perf_counter(), _step(self.model)
        logs = {**{k: float(v) for k, v in (logs or {}).items()}, "step": step,
                "images_per_s": self.batch_size * (step - self._last_step) / (now - self._t),
                "wall_s": self._wall + now - self._t_run}
        self._last_step = step
        if self.keys is None:  # not CSVLogger's empty val_ columns when a model has no validation data
            self.keys = sorted(logs)
        super().on_epoch_end(self._row, logs)
        self._row += 1


def _built_optimizers(model) -> list:
    """The model's optimizers, each built for its network (a checkpoint needs their slots to exist)."""
    for opt, net in model.optimizer_pairs():
        if not opt.built:
            opt.build(net.trainable_variables)
    return [opt for opt, _ in model.optimizer_pairs()]


def _checkpoint(model, step: tf.Variable) -> tf.train.Checkpoint:
    """One object-based checkpoint of everything a resumed run needs, keyed by object path: the model
    (weights, batch-norm statistics), each optimizer (moments, iteration counters), the state of each
    noise seed generator and the global step."""
    objects = {"model": model, "step": step}
    for name, value in sorted(vars(model).items()):  # SeedGenerator itself is not trackable: its state is
        if isinstance(value, keras.random.SeedGenerator):
            objects[f"seed_{name}"] = value.state
    for i, opt in enumerate(_built_optimizers(model)):
        objects[f"optimizer_{i}"] = opt
    return tf.train.Checkpoint(**objects)


class Checkpoint(keras.callbacks.Callback):
    """Save the whole training state to ``directory`` at every log row with ``tf.train.CheckpointManager``
    (each checkpoint is complete before the manager's index points to it, so an interrupted save leaves
    the previous one in use; the last ``keep`` are kept). With ``sampler`` (the network ``sample``
    loads), also write it to ``sampler_path`` each time, replaced atomically, so an interrupted run can
    be sampled. Restore with :func:`restore`."""

    def __init__(self, directory: str, sampler=None, sampler_path: str | None = None, keep: int = 2):
        super().__init__()
        self.directory, self.sampler, self.sampler_path, self.keep = directory, sampler, sampler_path, keep
        self.manager = None

    def on_train_begin(self, logs=None):
        if self.manager is None:
            self._step = tf.Variable(0, dtype=tf.int64, trainable=False)
            self.manager = tf.train.CheckpointManager(_checkpoint(self.model, self._step), self.directory,
                                                      max_to_keep=self.keep)

    def on_epoch_end(self, epoch, logs=None):
        step = _step(self.model)
        self._step.assign(step)
        self.manager.save(checkpoint_number=step)
        if self.sampler is not None and self.sampler_path:
            folder, name = os.path.split(self.sampler_path)
            tmp = os.path.join(folder, f"tmp_{name}")  # Keras wants the .keras ending
            self.sampler.save(tmp)
            os.replace(tmp, self.sampler_path)


def restore(model, directory: str) -> int:
    """Load the latest checkpoint that :class:`Checkpoint` wrote in ``directory`` into ``model`` (built and
    compiled the same way), set ``model.global_step`` and return it; 0 when there is no checkpoint.
    A checkpoint of another model or other settings is a ``ValueError`` that says so."""
    latest = tf.train.latest_checkpoint(directory) if os.path.isdir(directory) else None
    if latest is None:
        model.global_step = 0
        return 0
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    try:
        status = _checkpoint(model, step).restore(latest)
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        raise ValueError(
            f"the checkpoint {latest} does not fit this model (written by a different model or settings): "
            f"{str(err).splitlines()[0][:300]}"
        ) from None
    model.global_step = int(step.numpy())
    return model.global_step
