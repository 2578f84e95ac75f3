"""Chapter 10's privacy tests of finished runs: :mod:`helpers.privacy`'s functions applied to a run's
networks, samples and data, computed once and kept beside the run (:func:`experiments.derived`)."""

from __future__ import annotations

import os

import numpy as np

from helpers import privacy as tests

from .families import FAMILIES, canary, source, test_images, training_data
from .runs import derived, load_model, load_sampler, run_config, sample


def membership(folder: str, members: int = 1000, samples: int = 10_000, seed: int = 0) -> dict:
    """:func:`helpers.privacy.membership` of the run in ``folder``: up to ``members`` of its training images
    (the canary's copies excluded), picked at random, against the held-out ones, with ``samples`` new
    samples for the black-box attack; and the white-box scores of its first 1,000 training images and of
    the held-out ones (``scores in``, ``scores out``)."""
    model, cfg = load_model(folder)
    x_train, y_train, x_test = training_data(cfg)
    y_test = test_images(cfg)[1]
    n = len(x_train) - int(cfg.get("canary", 0))  # the canary's copies are not ordinary members
    pick = np.random.default_rng(seed).permutation(n)[:members]
    labels = (y_train[pick], y_test) if FAMILIES[cfg["kind"]].conditional else (None, None)
    fake, _ = sample(load_sampler(folder), samples, cfg, seed=seed + 1)
    out = tests.membership(model, x_train[pick], x_test, fake, *labels)
    first = x_train[:n][:1000]
    scores = [tests.membership_scores(model, x).astype(np.float32) for x in (first, x_test)]
    return {**out, "scores in": scores[0], "scores out": scores[1]}


def copying(folder: str) -> dict:
    """:func:`helpers.privacy.copying` of the run in ``folder``, on its 1,000 scored samples."""
    cfg = run_config(folder)
    train, _, x_test = training_data(cfg)
    fake = np.load(os.path.join(folder, "samples.npy"))
    return tests.copying(fake, train, x_test, seed=cfg["seed"], dataset=cfg["data"])


def canary_test(folder: str, samples: int = 10_000) -> dict:
    """:func:`helpers.privacy.canary_test` of the run in ``folder`` on ``samples`` new samples."""
    cfg = run_config(folder)
    fake, _ = sample(load_sampler(folder), samples, cfg, seed=99)
    return tests.canary_test(fake, canary(cfg["data"], source(cfg))[0])


def privacy(row: dict, test: str, samples: int = 10_000) -> dict:
    """Chapter 10's ``test`` of the run ``row``: ``"copying"``, ``"canary"`` or ``"membership"``, computed
    once from the run's networks and kept beside it (:func:`experiments.derived`)."""
    run = {"copying": copying, "canary": lambda folder: canary_test(folder, samples),
           "membership": lambda folder: membership(folder, samples=samples)}
    return derived(row, f"{test}-v1-{samples}", run[test])
