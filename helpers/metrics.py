"""Judging generated digits (chapters 3, 6, 7, 9 and 10): the small classifiers shipped in ``helpers/assets``
(trained by ``scripts/train_classifier.py`` on training images only) and the scores built on them, the
distribution metrics FID, KID, IS, precision/recall and density/coverage, and copying and membership measures.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import os

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from scipy.special import softmax
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances, roc_auc_score
from sklearn.neighbors import NearestNeighbors

from . import data

WEIGHTS = os.path.join(os.path.dirname(__file__), "assets", "mnist_classifier.weights.h5")
FASHION_WEIGHTS = os.path.join(os.path.dirname(__file__), "assets", "fashion_classifier.weights.h5")
READER = os.path.join(os.path.dirname(__file__), "assets", "{}_reader.npz")  # the second reader's fit
_classifiers: dict = {}


def build_classifier():
    """The shipped classifiers' architecture: two conv blocks, a 128-unit feature layer, 10 logits."""
    inputs = keras.Input((28, 28, 1))
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Flatten()(x)
    x = layers.Dropout(0.3)(x)
    features = layers.Dense(128, activation="relu", name="features")(x)
    logits = layers.Dense(10, name="logits")(layers.Dropout(0.3)(features))
    return keras.Model(inputs, [features, logits], name="mnist_classifier")


def _missing(path: str, options: str) -> FileNotFoundError:
    return FileNotFoundError(f"{path} is missing; reinstall the package or run "
                             f"`python scripts/train_classifier.py {options}`.")


def classifier(dataset: str = "mnist"):
    """The shipped, trained classifier of ``dataset`` (``"mnist"`` or ``"fashion"``), loaded once."""
    if dataset not in data.IMAGE_DATA:
        raise ValueError(f"no shipped classifier for {dataset!r}; choose one of {', '.join(data.IMAGE_DATA)}")
    if dataset not in _classifiers:
        path = WEIGHTS if dataset == "mnist" else FASHION_WEIGHTS
        if not os.path.exists(path):
            raise _missing(path, f"--data {dataset}")
        model = build_classifier()
        model.load_weights(path)
        _classifiers[dataset] = model
    return _classifiers[dataset]


_memo: dict[str, tuple] = {}  # the last few predictions, by content: grids score the same real digits often


def _predict(images, dataset="mnist", batch_size=500):
    x = data.check_images(images)
    tag = hashlib.sha1(x.tobytes()).hexdigest() + str(x.shape) + dataset
    if tag in _memo:
        return _memo[tag]
    x = x.astype(np.float32) / 255.0
    model = classifier(dataset)
    feats, logits = [], []
    for i in range(0, len(x), batch_size):
        f, l = model(x[i : i + batch_size], training=False)
        feats.append(np.asarray(f, np.float64))
        logits.append(np.asarray(l, np.float64))
    out = np.concatenate(feats), np.concatenate(logits)
    for a in out:
        a.setflags(write=False)  # shared by later calls: nobody may change it in place
    if len(_memo) >= 8:
        _memo.pop(next(iter(_memo)))
    _memo[tag] = out
    return out


def class_probabilities(images, dataset: str = "mnist") -> np.ndarray:
    """Softmax class probabilities ``(N, 10)`` of uint8 images by ``dataset``'s classifier."""
    return softmax(_predict(images, dataset)[1], axis=1)


def features(images, dataset: str = "mnist") -> np.ndarray:
    """The classifier's 128-dimensional penultimate-layer features ``(N, 128)``, float64."""
    return _predict(images, dataset)[0]


def recognition(images, dataset: str = "mnist") -> dict:
    """How recognisable images are: the mean top probability, the class shares, how many classes hold 2%."""
    p = class_probabilities(images, dataset)
    shares = np.bincount(p.argmax(axis=1), minlength=10) / len(p)
    return {
        "mean_confidence": float(p.max(axis=1).mean()),
        "class_shares": [round(float(s), 4) for s in shares],
        "classes_at_2pct": int((shares >= 0.02).sum()),
    }


_readers: dict = {}


def second_reader(dataset: str = "mnist"):
    """The shipped second reader of ``dataset``: a logistic regression on the pixels of up to 10,000 training
    images (``scripts/train_classifier.py --reader`` fits it; ``helpers/assets/<dataset>_reader.npz``), loaded once."""
    if dataset not in _readers:
        path = READER.format(dataset)
        if not os.path.exists(path):
            raise _missing(path, f"--data {dataset} --reader")
        reader, saved = LogisticRegression(), np.load(path)
        reader.coef_, reader.intercept_, reader.classes_ = saved["coef"], saved["intercept"], np.arange(10)
        _readers[dataset] = reader
    return _readers[dataset]


def readers_agree(images, dataset: str = "mnist") -> float:
    """The share of uint8 images that :func:`second_reader` and the shipped classifier read as the same class."""
    predicted = second_reader(dataset).predict(_embed(images, "pixels"))
    return float(np.mean(predicted == class_probabilities(images, dataset).argmax(1)))


SHARE = 0.95  # the bar: 95% of what the two readers give real held-out images
_bars: dict = {}


def bar(dataset: str = "mnist", share: float = SHARE) -> dict:
    """The book's one bar for samples (chapter 7): ``share`` of the mean confidence and of the readers'
    agreement that real held-out images of ``dataset`` get, and every class those images show at 2% or
    more. Also returns the real images' own scores (``real``). Computed once per data set."""
    if (dataset, share) not in _bars:
        x_test = data.load_images(dataset)[1][0]
        rec = recognition(x_test, dataset)
        real = {"confidence": rec["mean_confidence"], "readers_agree": readers_agree(x_test, dataset)}
        _bars[dataset, share] = {**{k: share * v for k, v in real.items()}, "classes": rec["classes_at_2pct"], "real": real}
    return _bars[dataset, share]


def meets_bar(row, dataset: str = "mnist", classes: bool = True) -> bool:
    """Do both readers recognise a run's samples as well as the :func:`bar` of ``dataset`` asks? ``row``
    holds its ``confidence``, ``readers_agree`` and ``classes`` (at 2% or more); ``classes=False`` skips
    the class count (where missing classes are the effect under study)."""
    b = bar(dataset)
    ok = row["confidence"] >= b["confidence"] and row["readers_agree"] >= b["readers_agree"]
    return bool(ok and (not classes or row["classes"] >= b["classes"]))


# ----------------------------------------------------------------------------------------------------
# Distribution metrics, chapter 6: float64 numpy on feature matrices (N, d) or class probabilities (N, classes).
def _features(x, name: str, min_rows: int = 2) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array (samples, features), got shape {x.shape}")
    if len(x) < min_rows:
        raise ValueError(f"{name} needs at least {min_rows} samples, got {len(x)}")
    x = np.asarray(x, dtype=np.float64)  # no copy when it already is float64
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} contains NaN or infinity")
    return x


def _pair(a, b, names=("features_a", "features_b")):
    a, b = _features(a, names[0]), _features(b, names[1])
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} has {a.shape[1]} features per sample but {names[1]} has {b.shape[1]}")
    return a, b


def statistics(features_, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of a feature matrix, float64, centred in blocks of ``chunk`` rows."""
    x = _features(features_, "features")
    mu = x.mean(axis=0)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for i in range(0, len(x), chunk):
        block = x[i : i + chunk] - mu
        cov += block.T @ block
    return mu, cov / (len(x) - 1)


def _nonnegative(eigenvalues):
    """Eigenvalues of a PSD matrix with rounding noise (below d * eps * the largest) set to 0."""
    noise = len(eigenvalues) * np.finfo(float).eps * eigenvalues.max()
    return np.where(eigenvalues > noise, eigenvalues, 0.0)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)), as TTUR and
    pytorch-fid, without ``sqrtm``: the trace is that of the symmetric R^T sigma2 R with R R^T = sigma1."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}")
    if not all(np.all(np.isfinite(v)) for v in (mu1, mu2, s1, s2)):
        raise ValueError("mu1, mu2, sigma1 or sigma2 contains NaN or infinity")
    try:
        root1 = np.linalg.cholesky(s1)
    except np.linalg.LinAlgError:  # singular: the symmetric square root instead
        w, v = np.linalg.eigh((s1 + s1.T) / 2)
        root1 = (v * np.sqrt(_nonnegative(w))) @ v.T
    inner = root1.T @ s2 @ root1
    tr_sqrt = np.sqrt(_nonnegative(np.linalg.eigvalsh((inner + inner.T) / 2))).sum()
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_sqrt)


def fid(features_a, features_b) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID on Inception-v3 features)."""
    a, b = _pair(features_a, features_b)
    return frechet_distance(*statistics(a), *statistics(b))


def _poly3_sum(x, y, d, skip_diagonal=False) -> float:
    """Sum of the kernel matrix (x y^T / d + 1)^3, without its diagonal when asked."""
    k = x @ y.T
    k /= d
    k += 1.0
    k = k * k * k  # three multiplications are several times faster than ** 3
    return float(k.sum() - (np.trace(k) if skip_diagonal else 0.0))


def _mmd2_unbiased(x, y) -> float:
    d, m, n = x.shape[1], len(x), len(y)
    within = _poly3_sum(x, x, d, True) / (m * (m - 1)) + _poly3_sum(y, y, d, True) / (n * (n - 1))
    return within - 2 * _poly3_sum(x, y, d) / (m * n)


def kid(features_a, features_b, subsets: int = 100, subset_size: int | None = 1000, seed: int = 0):
    """Kernel Inception Distance ``(mean, std)``: the unbiased MMD^2 with kernel (x.y / d + 1)^3 over ``subsets``
    subsets of ``subset_size`` drawn without replacement, as torch-fidelity (``None``: the whole sets)."""
    a, b = _pair(features_a, features_b)
    if subset_size is None or subset_size == len(a) == len(b):  # the whole sets: one value, std 0
        return _mmd2_unbiased(a, b), 0.0
    if not 2 <= subset_size <= min(len(a), len(b)) or subsets < 1:
        raise ValueError(f"subset_size={subset_size} is larger than a feature set ({len(a)} and {len(b)} samples), "
                         f"below 2, or subsets={subsets} < 1: pass a smaller subset_size, or None for the whole sets")
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), subset_size, replace=False)]
        y = b[rng.choice(len(b), subset_size, replace=False)]
        values.append(_mmd2_unbiased(x, y))
    return float(np.mean(values)), float(np.std(values))


def inception_score(probs, splits: int = 10, seed: int = 0):
    """Inception Score exp(E_x KL(p(y|x) || p(y))) of class probabilities ``(N, classes)`` on ``splits``
    parts after a seeded shuffle. Returns ``(mean, std)`` over the parts, as torch-fidelity does."""
    p = _features(probs, "probs", min_rows=max(2, splits))
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError("probs must be class probabilities: non-negative rows that sum to 1 (apply softmax)")
    if splits < 1:
        raise ValueError(f"splits must be positive, got {splits}")
    p = p[np.random.RandomState(seed).permutation(len(p))]
    n = len(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_p = np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), 0.0)
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        part, log_part = p[lo:hi], log_p[lo:hi]
        marginal = part.mean(axis=0)
        log_marginal = np.log(np.where(marginal > 0, marginal, 1.0))
        kl = (part * (log_part - log_marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def _radii(x, k):
    # distance to the k-th nearest neighbour other than the point itself (index k counts the point at 0)
    return np.partition(pairwise_distances(x, x), k, axis=1)[:, k]


def precision_recall(real_features, fake_features, k: int = 3):
    """Improved precision and recall (Kynkäänniemi et al. 2019): the share of fakes inside the ball of at
    least one real sample (radius: its distance to its k-th nearest real neighbour), and the other way round."""
    real, fake = _pair(real_features, fake_features, ("real_features", "fake_features"))
    if k < 1 or k >= min(len(real), len(fake)):
        sizes = f"{len(real)} real and {len(fake)} fake samples"
        raise ValueError(f"k must be between 1 and the smaller set's size - 1, got k={k} for {sizes}")
    real_r, fake_r = _radii(real, k), _radii(fake, k)
    between = pairwise_distances(fake, real)  # (fake, real), used both ways
    precision = (between <= real_r[None, :]).any(axis=1).mean()
    recall = (between <= fake_r[:, None]).any(axis=0).mean()
    return float(precision), float(recall)


def density_coverage(real_features, fake_features, k: int = 5):
    """Density and coverage (Naeem et al. 2020) on :func:`precision_recall`'s real balls: how many balls hold each
    fake, over k, and the share of balls holding a fake (strict, as ``prdc``). Introduced in chapter 6."""
    real, fake = _pair(real_features, fake_features, ("real_features", "fake_features"))
    if k < 1 or k >= len(real):
        raise ValueError(f"k must be between 1 and the number of real samples - 1, got k={k} for {len(real)}")
    inside = pairwise_distances(real, fake) < _radii(real, k)[:, None]  # (real, fake): fake in real's ball
    return float(inside.sum(axis=0).mean() / k), float(inside.any(axis=1).mean())


def _embed(images, space: str, dataset: str = "mnist") -> np.ndarray:
    if space == "features":
        return features(images, dataset)
    if space == "pixels":
        x = data.check_images(images)
        return x.reshape(len(x), -1).astype(np.float64) / 255.0
    raise ValueError(f"space must be 'features' or 'pixels', got {space!r}")


def nearest_distances(queries, reference, space: str = "features", dataset: str = "mnist") -> np.ndarray:
    """The distance from each uint8 image of ``queries`` to its nearest image of ``reference``, in ``space``:
    ``"features"`` (the shipped classifier's) or ``"pixels"`` (in [0, 1]). Introduced in chapter 10."""
    return _nearest(_embed(queries, space, dataset), _embed(reference, space, dataset))


def copy_distances(samples, train, test, space: str = "features", dataset: str = "mnist"):
    """``(sample_to_train, test_to_train)``: each sample's and each held-out image's distance to its nearest
    training image (Meehan, Chaudhuri & Dasgupta 2020); copies give smaller ones. Introduced in chapter 7."""
    train_e = _embed(train, space, dataset)
    return _nearest(_embed(samples, space, dataset), train_e), _nearest(_embed(test, space, dataset), train_e)


def membership_auc(member_scores, nonmember_scores) -> tuple[float, float]:
    """``(auc, se)``: the probability that a random member scores higher than a random non-member (ties
    count half) and its standard error (Hanley & McNeil 1982). 0.5 is chance. Introduced in chapter 10."""
    a = np.asarray(member_scores, np.float64).reshape(-1)
    b = np.asarray(nonmember_scores, np.float64).reshape(-1)
    if len(a) < 2 or len(b) < 2 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError(f"need at least two finite scores per group, got {len(a)} and {len(b)}")
    m, n = len(a), len(b)
    auc = float(roc_auc_score(np.r_[np.ones(m), np.zeros(n)], np.r_[a, b]))  # ties count half
    q1, q2 = auc / (2 - auc), 2 * auc ** 2 / (1 + auc)
    var = (auc * (1 - auc) + (m - 1) * (q1 - auc ** 2) + (n - 1) * (q2 - auc ** 2)) / (m * n)
    return auc, float(np.sqrt(max(var, 0.0)))


def memorised(samples, train, space: str = "pixels", threshold: float = 1 / 3, dataset: str = "mnist"):
    """Gu et al.'s (2023) rule: a sample is memorised when its nearest training image is closer than
    ``threshold`` times its second nearest. Returns ``(share memorised, ratios d1 / d2)``. Introduced in chapter 6."""
    neighbours = NearestNeighbors(n_neighbors=2).fit(_embed(train, space, dataset))
    d = neighbours.kneighbors(_embed(samples, space, dataset))[0]
    ratios = d[:, 0] / np.maximum(d[:, 1], 1e-12)
    return float(np.mean(ratios < threshold)), ratios


def copy_test(sample_to_train, test_to_train) -> float:
    """Meehan et al.'s (2020) data-copying statistic Z_U in one cell: the standardised Mann-Whitney U of the
    two arrays of :func:`copy_distances`. Near 0: no copying; below -3: copying; positive: underfitting."""
    m, n = len(np.ravel(sample_to_train)), len(np.ravel(test_to_train))
    auc, _ = membership_auc(sample_to_train, test_to_train)  # P(sample farther than held-out)
    return float((auc - 0.5) * m * n / np.sqrt(m * n * (m + n + 1) / 12))


def _nearest(x, y) -> np.ndarray:
    """For each row of x, the Euclidean distance to its nearest row of y (scikit-learn's exact search)."""
    return NearestNeighbors(n_neighbors=1).fit(y).kneighbors(x)[0][:, 0]


def inception_features(images, weights="imagenet", batch_size: int = 50) -> np.ndarray:
    """2048-D pool features of Keras' InceptionV3 (``weights=None``: untrained, for tests) for uint8 images; not
    TTUR's TF1 graph, so compare only with numbers computed the same way."""
    x = data.check_images(images)
    options = dict(include_top=False, pooling="avg", weights=weights, input_shape=(299, 299, 3))
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # Keras's "Downloading data from": the error says why
            net = keras.applications.InceptionV3(**options)
    except Exception as err:  # noqa: BLE001 - any download failure gets the same advice
        raise RuntimeError(
            f"could not load the InceptionV3 ImageNet weights ({type(err).__name__}: no internet?). Download them "
            "once on a machine with internet (they are cached in ~/.keras/models), or use the shipped "
            "classifier's features: helpers.metrics.features(images)."
        ) from err
    out = []
    for i in range(0, len(x), batch_size):
        batch = tf.image.grayscale_to_rgb(tf.constant(x[i : i + batch_size], tf.float32))
        batch = keras.applications.inception_v3.preprocess_input(tf.image.resize(batch, (299, 299)))
        out.append(np.asarray(net(batch, training=False), np.float64))
    return np.concatenate(out)


def evaluate(fake_images, real_images=None, subset_size: int = 1000, subsets: int = 100, seed: int = 0,
             real_features=None, dataset: str = "mnist", knn_size: int | None = None) -> dict:
    """Every metric of chapter 6 for uint8 images against ``real_images`` (or their ``real_features``), on the
    shipped classifier; ``knn_size``: how many real images the k-NN measures use (default all)."""
    if (real_images is None) == (real_features is None):
        raise ValueError("pass the real reference as real_images or as real_features (not both)")
    fake_f, fake_logits = _predict(fake_images, dataset)
    if real_features is None:
        real_f = _predict(real_images, dataset)[0]
    else:
        real_f = _features(real_features, "real_features")
    fake_p, size = softmax(fake_logits, axis=1), min(subset_size, len(fake_f), len(real_f))
    out = {"fid": fid(real_f, fake_f)}
    out["kid"], out["kid_std"] = kid(real_f, fake_f, subsets=subsets, subset_size=size, seed=seed)
    out["kid_subset_size"] = size
    out["is"], out["is_std"] = inception_score(fake_p, splits=min(10, len(fake_p) // 2), seed=seed)
    out["precision"], out["recall"] = precision_recall(real_f[:knn_size], fake_f)
    out["density"], out["coverage"] = density_coverage(real_f[:knn_size], fake_f)
    out["n_fake"], out["n_real"] = len(fake_f), len(real_f)
    name = "MNIST" if dataset == "mnist" else "Fashion-MNIST"
    return {**out, "features": f"helpers {name} classifier (128-D)"}


def mode_coverage(samples, centres, std: float) -> dict:
    """Mode coverage as in VEEGAN and PacGAN: ``modes`` with a sample within 3 ``std``, the ``high_quality`` share
    of such samples, and the ``reverse_kl`` of their spread over the modes from uniform. Introduced in chapter 8."""
    samples, centres = np.asarray(samples, np.float64), np.asarray(centres, np.float64)
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples (n, d) and centres (k, d) must share d; got {samples.shape} and {centres.shape}")
    if len(samples) == 0 or std <= 0:
        raise ValueError("need at least one sample and std > 0")
    distances = pairwise_distances(samples, centres)
    nearest, good = distances.argmin(1), distances.min(1) <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(centres))
    result = {"modes": int((counts > 0).sum()), "high_quality": float(good.mean())}
    if counts.sum() == 0:
        return {**result, "reverse_kl": float("nan")}
    p = counts[counts > 0] / counts.sum()
    return {**result, "reverse_kl": float(np.sum(p * np.log(p * len(centres))))}


# ----------------------------------------------------------------------------------------------------
# Generated data as training data. Introduced in chapter 9.
def small_classifier(seed: int = 0):
    """A small CNN for the train-on-synthetic test, much cheaper than the shipped classifier."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(10, dtype="float32"),
    ], name="small_classifier")


def classification_accuracy_score(train_images, train_labels, test_images, test_labels, steps=600, batch_size=64, seed=0):
    """Train a fresh :func:`small_classifier` for ``steps`` batches on (generated) labelled images and return
    its accuracy on real ones (Ravuri & Vinyals 2019: train on synthetic, test on real)."""
    model = small_classifier(seed)  # seeds everything first: the order of the draws below depends on it
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    model.compile(keras.optimizers.Adam(1e-3), loss, metrics=["accuracy"])
    size = min(batch_size, len(train_images))  # make_dataset checks the images and their labels
    train = data.make_dataset(train_images, train_labels, batch_size=size, scale="unit", seed=seed).repeat()
    test = data.make_dataset(test_images, test_labels, batch_size=500, scale="unit", shuffle=False,
                             drop_remainder=False)
    model.fit(train, steps_per_epoch=int(steps), epochs=1, shuffle=False, verbose=0)  # the pipeline shuffles
    return float(model.evaluate(test, verbose=0, return_dict=True)["accuracy"])
