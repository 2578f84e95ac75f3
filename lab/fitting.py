"""Exact steps, checkpoints and a guard: what makes a long run trustworthy and resumable. :func:`fit_steps`
trains for an exact number of steps in log intervals (a resumed run ends where a straight one does);
:class:`Checkpoint` and :func:`restore` keep and reload the whole training state; :class:`CSVLog` writes
the log across resumes; :class:`NaNGuard` stops a diverging run with a message.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import time

import keras
import tensorflow as tf


def _step(model) -> int:
    return int(getattr(model, "global_step", 0))


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


class Line:
    """Progress that does not stay on the page: in a notebook (IPython already loaded) one output line
    updated in place and emptied by :meth:`close`, which prints the line that stays; elsewhere printed lines."""

    def __init__(self):
        display = sys.modules.get("IPython.display") if "ipykernel" in sys.modules else None
        self.handle = display.display(display.Pretty(""), display_id=True) if display else None
        self.pretty = display.Pretty if display else None

    def __call__(self, text: str):
        if self.handle is None:
            print(text, flush=True)
        else:
            self.handle.update(self.pretty(text))

    def close(self, text: str):
        """Empty the live line and print ``text``: what stays on the page is an ordinary printed line (a
        saved notebook and a test that reruns it, such as nbval, then hold the same outputs)."""
        if self.handle is not None:
            self.handle.update(self.pretty(""))
        print(text, flush=True)


class ProgressLine(keras.callbacks.Callback):
    """One line that follows training (``fit_steps(verbose="line")``): the step, the losses and the seconds
    so far at each log row, then how many steps were trained in how long."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.line, self.start = steps, Line(), time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        shown = ", ".join(f"{k} {v:.4g}" for k, v in (logs or {}).items() if "loss" in k and not k.startswith("val_"))
        seconds = time.perf_counter() - self.start
        self.line(f"step {self.model.global_step:,} of {self.steps:,}: {shown} ({seconds:.0f} s so far)")

    def done(self, first: int):
        seconds = time.perf_counter() - self.start
        self.line.close(f"trained steps {first:,} to {self.steps:,} in {seconds:.0f} s")


def fit_steps(model, dataset, steps: int, log_every: int = 100, callbacks=(), validation_data=None,
              verbose: int | str = "line"):
    """Train ``model`` until it has made exactly ``steps`` updates in all, with a log row (the callbacks'
    ``on_epoch_end``) every ``log_every`` steps and at the end. Returns the ``History`` of this call.

    ``dataset`` is the whole training stream from step 0 (e.g. ``make_dataset(...).repeat()``); a model
    that has already trained (``model.global_step``, set here and by :func:`restore`)
    continues from that step with the batches an uninterrupted run would have seen, so a resumed or
    extended run ends where a straight one does. Each log interval runs in blocks of the largest
    ``steps_per_execution`` (up to the one the model was compiled with) that divides it.
    ``verbose`` is ``"line"`` (one progress line, updated in place in a notebook) or Keras's.
    Introduced in chapter 3.
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
    progress = ProgressLine(steps) if verbose == "line" else None
    callbacks, verbose = ([progress] if progress else []) + list(callbacks), 0 if progress else verbose
    for first, interval, n in _chunks(start, steps, log_every):
        per_call = math.gcd(requested, interval)
        if model.steps_per_execution != per_call:  # a new block size needs a new compiled function
            model.steps_per_execution, model.train_function = per_call, None
        h = model.fit(dataset.skip(first), steps_per_epoch=interval, epochs=n, validation_data=validation_data,
                      shuffle=False, callbacks=[_GlobalStep(first, interval, steps), *callbacks], verbose=verbose)
        for k, v in h.history.items():
            history.history.setdefault(k, []).extend(v)
    if progress:
        progress.done(start)
    return history


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
