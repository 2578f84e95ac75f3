"""Judging generated digits: a small MNIST classifier that ships with the package (weights in
``helpers/assets``), the recognition score built on it, and the distribution metrics FID, KID, IS and
precision/recall (float64, matching the reference implementations' conventions), plus InceptionV3
features for users who can download its weights.

Introduced in chapter 3 (``03_gan_mnist``); the evaluation chapter (``06_evaluation``)
adds the distribution metrics. The classifier is trained by
``scripts/train_classifier.py`` on the training split of :func:`helpers.data.load_mnist` and never sees
the test split nor any generated image, so it is independent of every generator in the book.
"""
from __future__ import annotations

import hashlib
import os

import numpy as np

from . import data

WEIGHTS = os.path.join(os.path.dirname(__file__), "assets", "mnist_classifier.weights.h5")
FASHION_WEIGHTS = os.path.join(os.path.dirname(__file__), "assets", "fashion_classifier.weights.h5")
READER = os.path.join(os.path.dirname(__file__), "assets", "{}_reader.npz")  # the second reader's fit
_classifiers: dict = {}


def build_classifier():
    """The classifier's architecture: two conv blocks, a 128-unit feature layer, 10 logits (the same for
    MNIST and Fashion-MNIST, each with its own weights)."""
    import keras
    from keras import layers

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


def classifier(dataset: str = "mnist"):
    """The shipped, trained classifier of ``dataset`` (``"mnist"`` or ``"fashion"``), loaded once."""
    if dataset not in data.IMAGE_DATA:
        raise ValueError(f"no shipped classifier for {dataset!r}; choose one of {', '.join(data.IMAGE_DATA)}")
    if dataset not in _classifiers:
        path = WEIGHTS if dataset == "mnist" else FASHION_WEIGHTS
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing; reinstall the package or run "
                                    f"`python scripts/train_classifier.py --data {dataset}`.")
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
    """Softmax class probabilities ``(N, 10)`` for uint8 images ``(N, 28, 28)`` (``dataset``: whose
    classifier reads them, ``"mnist"`` or ``"fashion"``)."""
    from scipy.special import softmax

    return softmax(_predict(images, dataset)[1], axis=1)


def features(images, dataset: str = "mnist") -> np.ndarray:
    """The classifier's 128-dimensional penultimate-layer features ``(N, 128)``, float64."""
    return _predict(images, dataset)[0]


def recognition(images, dataset: str = "mnist") -> dict:
    """How recognisable generated digits are: the classifier's mean confidence (its top probability),
    the share of images predicted as each class, and how many classes hold at least 2%."""
    p = class_probabilities(images, dataset)
    shares = np.bincount(p.argmax(axis=1), minlength=10) / len(p)
    return {
        "mean_confidence": float(p.max(axis=1).mean()),
        "class_shares": [round(float(s), 4) for s in shares],
        "classes_at_2pct": int((shares >= 0.02).sum()),
    }


_readers: dict = {}


def fit_second_reader(dataset: str = "mnist"):
    """An independent reader of ``dataset``'s images: logistic regression on raw pixels (scikit-learn),
    fitted on up to 10,000 images of the training split. It shares nothing with the shipped classifier
    (no convolutions, no features, another fitting method), so when both read a sample as the same class,
    the sample is not merely fooling one network. ``scripts/train_classifier.py --reader`` ships its fit."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    (x, y), _ = data.load_images(dataset)
    pick = np.random.default_rng(0).permutation(len(x))[:10_000]
    with warnings.catch_warnings():  # 300 iterations: close enough to the optimum to read images
        warnings.simplefilter("ignore", ConvergenceWarning)
        return LogisticRegression(max_iter=300).fit(_embed(x[pick], "pixels"), y[pick])


def second_reader(dataset: str = "mnist"):
    """The shipped fit of :func:`fit_second_reader` (``helpers/assets/<dataset>_reader.npz``), loaded once:
    every machine reads samples with the same second reader, without fitting it again."""
    if dataset not in _readers:
        from sklearn.linear_model import LogisticRegression

        path = READER.format(dataset)
        if not os.path.exists(path):
            raise FileNotFoundError(f"{path} is missing; reinstall the package or run "
                                    f"`python scripts/train_classifier.py --data {dataset} --reader`.")
        reader, saved = LogisticRegression(), np.load(path)
        reader.coef_, reader.intercept_, reader.classes_ = saved["coef"], saved["intercept"], np.arange(10)
        _readers[dataset] = reader
    return _readers[dataset]


def readers_agree(images, dataset: str = "mnist") -> float:
    """The share of uint8 images ``(N, 28, 28)`` that :func:`second_reader` and the shipped classifier
    read as the same class (compare it with the same share on real held-out images)."""
    predicted = second_reader(dataset).predict(_embed(images, "pixels"))
    return float(np.mean(predicted == class_probabilities(images, dataset).argmax(1)))


def meets_bar(row, confidence: float = 0.90, agree: float = 0.80, classes: int = 10) -> bool:
    """Do two independent readers recognise a run's samples? ``row`` holds its scores: the shipped
    classifier's mean ``confidence`` at least ``confidence`` with at least ``classes`` (all 10) ``classes``
    at 2% or more, and ``readers_agree`` (the second reader) at least ``agree``. The book's bar for a model
    a verdict rests on: 0.90 and 0.80 on MNIST; on Fashion-MNIST chapter 7 sets 95% of what the two readers
    give real images (``classes=0`` asks only whether the readers read the samples, where a missing class is
    the effect measured). Introduced in chapter 7."""
    return bool(row["confidence"] >= confidence and row["readers_agree"] >= agree and row["classes"] >= classes)


# ----------------------------------------------------------------------------------------------------
# Distribution metrics. Introduced in chapter 6 (``06_evaluation``). Everything is computed
# in float64 with numpy; inputs are feature matrices (N, d) or class-probability matrices (N, classes).
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


def _same_width(a, b, names=("features_a", "features_b")):
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"{names[0]} has {a.shape[1]} features per sample but {names[1]} has {b.shape[1]}")


def statistics(features_, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, ``np.cov`` convention) of a feature matrix, float64. Centred in
    blocks of ``chunk`` rows, so a 10,000 x 2048 set needs no second full-size copy."""
    x = _features(features_, "features")
    mu = x.mean(axis=0)
    cov = np.zeros((x.shape[1], x.shape[1]))
    for i in range(0, len(x), chunk):
        block = x[i:i + chunk] - mu
        cov += block.T @ block
    return mu, cov / (len(x) - 1)


def _nonnegative(eigenvalues):
    """Eigenvalues of a positive semi-definite matrix with rounding noise (below d * eps * the largest) set
    to 0: the square root would turn a 1e-16 into a 1e-8."""
    return np.where(eigenvalues > len(eigenvalues) * np.finfo(float).eps * eigenvalues.max(), eigenvalues, 0.0)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2):
    ||mu1 - mu2||^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)).

    The trace of the matrix square root is computed in a symmetric form: sigma1 sigma2 has the same
    eigenvalues as the symmetric positive semi-definite matrix R^T sigma2 R for any R with R R^T = sigma1,
    so the trace is the sum of the square roots of that matrix's eigenvalues (clipped at 0 against
    rounding). R is the Cholesky factor of sigma1 when sigma1 is positive definite (fast), otherwise its
    symmetric square root from an eigendecomposition (singular covariances, e.g. fewer samples than
    dimensions, stay finite). No ``scipy.linalg.sqrtm``. Same value as TTUR / pytorch-fid.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(f"shapes do not match: mu1 {mu1.shape}, sigma1 {s1.shape}, mu2 {mu2.shape}, sigma2 {s2.shape}")
    for name, v in (("mu1", mu1), ("mu2", mu2), ("sigma1", s1), ("sigma2", s2)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} contains NaN or infinity")
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
    """Fréchet distance between Gaussians fitted to two feature sets (the FID when the features are
    Inception-v3 pool features; the book mostly uses its MNIST classifier's features)."""
    a, b = _features(features_a, "features_a"), _features(features_b, "features_b")
    _same_width(a, b)
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
    return (_poly3_sum(x, x, d, True) / (m * (m - 1)) + _poly3_sum(y, y, d, True) / (n * (n - 1))
            - 2 * _poly3_sum(x, y, d) / (m * n))


def kid(features_a, features_b, subsets: int = 100, subset_size: int | None = 1000, seed: int = 0):
    """Kernel Inception Distance: the unbiased estimate of MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3,
    averaged over ``subsets`` random subsets of ``subset_size`` samples from each set (drawn without
    replacement, as torch-fidelity does). Returns ``(mean, std)`` (std with ddof=0). ``subset_size=None``
    uses both whole sets once (std 0), as does a ``subset_size`` equal to both set sizes. A ``subset_size``
    larger than a set raises ``ValueError``."""
    a, b = _features(features_a, "features_a"), _features(features_b, "features_b")
    _same_width(a, b)
    if subset_size is None:
        return _mmd2_unbiased(a, b), 0.0
    if subset_size < 2:
        raise ValueError(f"subset_size must be at least 2, got {subset_size}")
    if subset_size > min(len(a), len(b)):
        raise ValueError(
            f"subset_size={subset_size} is larger than a feature set ({len(a)} and {len(b)} samples); "
            "pass a smaller subset_size, or subset_size=None to use the whole sets"
        )
    if subsets < 1:
        raise ValueError(f"subsets must be positive, got {subsets}")
    if subset_size == len(a) == len(b):  # every "subset" is the whole set reordered: one value, std 0
        return _mmd2_unbiased(a, b), 0.0
    rng = np.random.RandomState(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), subset_size, replace=False)]
        y = b[rng.choice(len(b), subset_size, replace=False)]
        values.append(_mmd2_unbiased(x, y))
    return float(np.mean(values)), float(np.std(values))


def inception_score(probs, splits: int = 10, seed: int = 0):
    """Inception Score exp(E_x KL(p(y|x) || p(y))) of class probabilities ``(N, classes)``, computed on
    ``splits`` equal parts after a seeded shuffle (so input sorted by class scores the same), with
    p(y) the mean prediction within each part. Returns ``(mean, std)`` over the parts (ddof=0), as
    torch-fidelity does. Ranges from 1 to the number of classes."""
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
        part, log_part = p[i * n // splits:(i + 1) * n // splits], log_p[i * n // splits:(i + 1) * n // splits]
        marginal = part.mean(axis=0)
        log_marginal = np.log(np.where(marginal > 0, marginal, 1.0))
        kl = (part * (log_part - log_marginal)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))


def _pairwise_distances(x, y):
    """Euclidean distances (len(x), len(y)) (scikit-learn)."""
    from sklearn.metrics import pairwise_distances

    return pairwise_distances(x, y)


def _radii(x, k):
    # distance to the k-th nearest neighbour other than the point itself (index k counts the point at 0)
    return np.partition(_pairwise_distances(x, x), k, axis=1)[:, k]


def precision_recall(real_features, fake_features, k: int = 3):
    """Improved precision and recall (Kynkäänniemi et al. 2019). Each real sample gets a ball whose
    radius is the distance to its k-th nearest real neighbour; precision is the share of fake samples
    inside at least one real ball (distance <= radius). Recall swaps the roles. Returns
    ``(precision, recall)``."""
    real, fake = _features(real_features, "real_features"), _features(fake_features, "fake_features")
    _same_width(real, fake, ("real_features", "fake_features"))
    if k < 1 or k >= min(len(real), len(fake)):
        raise ValueError(f"k must be between 1 and the smaller set's size - 1, got k={k} for "
                         f"{len(real)} real and {len(fake)} fake samples")
    real_r, fake_r = _radii(real, k), _radii(fake, k)
    between = _pairwise_distances(fake, real)  # (fake, real), used both ways
    precision = (between <= real_r[None, :]).any(axis=1).mean()
    recall = (between <= fake_r[:, None]).any(axis=0).mean()
    return float(precision), float(recall)


def density_coverage(real_features, fake_features, k: int = 5):
    """Density and coverage (Naeem et al. 2020), on the same k-nearest-neighbour balls around the real
    samples as :func:`precision_recall`. Density counts how many real balls hold each fake sample, over k
    and averaged (about 1 when fakes are distributed like reals; a fake in one wide outlier ball adds only
    1/k); coverage is the share of real samples whose ball holds at least one fake. Strict inequalities,
    as in the authors' ``prdc`` package. Returns ``(density, coverage)``. Introduced in chapter 6."""
    real, fake = _features(real_features, "real_features"), _features(fake_features, "fake_features")
    _same_width(real, fake, ("real_features", "fake_features"))
    if k < 1 or k >= len(real):
        raise ValueError(f"k must be between 1 and the number of real samples - 1, got k={k} for {len(real)}")
    inside = _pairwise_distances(real, fake) < _radii(real, k)[:, None]  # (real, fake): fake in real's ball
    return float(inside.sum(axis=0).mean() / k), float(inside.any(axis=1).mean())


def _embed(images, space: str, dataset: str = "mnist") -> np.ndarray:
    if space == "features":
        return features(images, dataset)
    if space == "pixels":
        x = data.check_images(images)
        return x.reshape(len(x), -1).astype(np.float64) / 255.0
    raise ValueError(f"space must be 'features' or 'pixels', got {space!r}")


def nearest_distances(queries, reference, space: str = "features", dataset: str = "mnist") -> np.ndarray:
    """For each uint8 image of ``queries`` ``(N, 28, 28)``, the Euclidean distance to its nearest image of
    ``reference``, in ``space``: ``"features"`` (the shipped classifier's) or ``"pixels"`` (in [0, 1], so
    a distance of 1 is one pixel going from black to white). Introduced in chapter 10."""
    return _nearest(_embed(queries, space, dataset), _embed(reference, space, dataset))


def copy_distances(samples, train, test, space: str = "features", dataset: str = "mnist"):
    """Nearest-neighbour distances that tell new digits from copies (Meehan, Chaudhuri & Dasgupta 2020,
    "A Non-Parametric Test to Detect Data-Copying in Generative Models"). For uint8 images ``(N, 28, 28)``
    returns ``(sample_to_train, test_to_train)``: for each generated sample, the distance to its nearest
    training image, and for each held-out real image the same. A generator that makes new digits gives
    distances like the held-out ones; one that copies gives smaller ones (exact copies give 0).
    ``space`` is ``"features"`` (the shipped classifier's, default) or ``"pixels"`` (in [0, 1]).
    Introduced in chapter 7."""
    train_e = _embed(train, space, dataset)
    return _nearest(_embed(samples, space, dataset), train_e), _nearest(_embed(test, space, dataset), train_e)


def membership_auc(member_scores, nonmember_scores) -> tuple[float, float]:
    """How well a score tells two groups apart: the area under the ROC curve, i.e. the probability that
    a random member scores higher than a random non-member (ties count half; the Mann-Whitney U over
    ``m * n``), and its standard error (Hanley & McNeil 1982). 0.5 is chance, 1.0 perfect separation.
    Returns ``(auc, se)``. Introduced in chapter 10 (membership inference)."""
    from sklearn.metrics import roc_auc_score

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
    """Gu et al.'s (2023) memorisation rule, per sample: a uint8 sample ``(N, 28, 28)`` counts as memorised
    when its nearest image of ``train`` is closer than ``threshold`` times its second nearest, i.e. it sits
    on one training image rather than among many. Returns ``(share memorised, ratios d1 / d2)``.
    ``space`` as in :func:`nearest_distances`. Introduced in chapter 6."""
    from sklearn.neighbors import NearestNeighbors

    d = NearestNeighbors(n_neighbors=2).fit(_embed(train, space, dataset)).kneighbors(_embed(samples, space, dataset))[0]
    ratios = d[:, 0] / np.maximum(d[:, 1], 1e-12)
    return float(np.mean(ratios < threshold)), ratios


def copy_test(sample_to_train, test_to_train) -> float:
    """Meehan, Chaudhuri & Dasgupta's (2020) data-copying statistic Z_U in one cell: the Mann-Whitney U of
    the generated samples' nearest-training distances against the held-out digits' (the two arrays of
    :func:`copy_distances`), standardised. Around 0: samples are as far from the training set as new real
    digits; strongly negative (below -3, say): samples sit closer to the training set than new digits do,
    i.e. copying; positive: farther (underfitting). The paper also splits the space into cells and averages
    Z_U over them, which finds copying confined to one region; one cell does not."""
    m, n = len(np.ravel(sample_to_train)), len(np.ravel(test_to_train))
    auc, _ = membership_auc(sample_to_train, test_to_train)  # P(sample farther than held-out)
    return float((auc - 0.5) * m * n / np.sqrt(m * n * (m + n + 1) / 12))


def _nearest(x, y) -> np.ndarray:
    """For each row of x, the Euclidean distance to its nearest row of y (scikit-learn's exact search)."""
    from sklearn.neighbors import NearestNeighbors

    return NearestNeighbors(n_neighbors=1).fit(y).kneighbors(x)[0][:, 0]


# ----------------------------------------------------------------------------------------------------
# Inception-v3 features, for users who can download its ImageNet weights (the standard FID features).
def inception_features(images, weights="imagenet", batch_size: int = 50) -> np.ndarray:
    """2048-D pool features of Keras' InceptionV3 for uint8 MNIST-style images ``(N, 28, 28)``: grey is
    repeated to RGB, resized to 299x299 (bilinear), scaled with ``inception_v3.preprocess_input``.

    ``weights="imagenet"`` downloads the weights once (about 90 MB) into ``~/.keras/models``; without the
    internet this raises an error that says what to do. ``weights=None`` gives an untrained network, for
    tests. Note: the published FID uses the TF1 Inception graph of TTUR; Keras' InceptionV3 is a close but
    not identical network, so compare numbers only with numbers computed the same way."""
    import keras
    import tensorflow as tf

    x = data.check_images(images)
    try:
        net = keras.applications.InceptionV3(include_top=False, pooling="avg", weights=weights,
                                             input_shape=(299, 299, 3))
    except Exception as err:  # noqa: BLE001 - any download failure gets the same advice
        raise RuntimeError(
            "could not load the InceptionV3 ImageNet weights (no internet?). Download them once on a machine "
            "with internet (they are cached in ~/.keras/models), or use the shipped classifier's features: "
            f"helpers.metrics.features(images). Original error: {err}"
        ) from err
    out = []
    for i in range(0, len(x), batch_size):
        batch = tf.image.resize(tf.image.grayscale_to_rgb(tf.constant(x[i:i + batch_size], tf.float32)), (299, 299))
        batch = keras.applications.inception_v3.preprocess_input(batch)
        out.append(np.asarray(net(batch, training=False), np.float64))
    return np.concatenate(out)


def evaluate(fake_images, real_images=None, subset_size: int = 1000, subsets: int = 100, seed: int = 0,
             real_features=None, dataset: str = "mnist", knn_size: int | None = None) -> dict:
    """Every metric of the evaluation chapter for uint8 images ``(N, 28, 28)`` against real ones, on the
    shipped classifier's features (FID, KID, precision/recall, density/coverage) and class probabilities (IS). Pass
    ``real_features`` (from :func:`features`) instead of ``real_images`` to score many sets against one
    reference without extracting its features again. ``knn_size`` compares the k-NN measures (precision,
    recall, density, coverage) with the first ``knn_size`` real images only (default: all of them)."""
    if (real_images is None) == (real_features is None):
        raise ValueError("pass the real reference as real_images or as real_features (not both)")
    fake_f, fake_logits = _predict(fake_images, dataset)
    real_f = _predict(real_images, dataset)[0] if real_features is None else _features(real_features, "real_features")
    from scipy.special import softmax

    fake_p = softmax(fake_logits, axis=1)
    size = min(subset_size, len(fake_f), len(real_f))
    kid_mean, kid_std = kid(real_f, fake_f, subsets=subsets, subset_size=size, seed=seed)
    is_mean, is_std = inception_score(fake_p, splits=min(10, len(fake_p) // 2), seed=seed)
    precision, recall = precision_recall(real_f[:knn_size], fake_f)
    density, coverage = density_coverage(real_f[:knn_size], fake_f)
    return {"fid": fid(real_f, fake_f), "kid": kid_mean, "kid_std": kid_std, "kid_subset_size": size,
            "is": is_mean, "is_std": is_std, "precision": precision, "recall": recall, "density": density,
            "coverage": coverage,
            "n_fake": len(fake_f), "n_real": len(real_f), "features": f"helpers {'MNIST' if dataset == 'mnist' else 'Fashion-MNIST'} classifier (128-D)"}


def mode_coverage(samples, centres, std: float) -> dict:
    """Mode coverage of 2-D (or any-D) samples of a Gaussian mixture with the given ``centres`` and
    component standard deviation ``std``, with the definitions of Srivastava et al. 2017 (VEEGAN) and
    Lin et al. 2018 (PacGAN): a sample is *high quality* when it lies within 3 std of its nearest centre;
    a mode is *captured* when it is the nearest centre of at least one high-quality sample. Returns
    ``{"modes": captured modes, "high_quality": share of high-quality samples, "reverse_kl": KL between
    the distribution of high-quality samples over the modes and the uniform one}`` (0 when every mode
    gets the same share; NaN when no sample is high quality). Introduced in chapter 8."""
    samples, centres = np.asarray(samples, np.float64), np.asarray(centres, np.float64)
    if samples.ndim != 2 or centres.ndim != 2 or samples.shape[1] != centres.shape[1]:
        raise ValueError(f"samples (n, d) and centres (k, d) must share d; got {samples.shape} and {centres.shape}")
    if len(samples) == 0 or std <= 0:
        raise ValueError("need at least one sample and std > 0")
    distances = _pairwise_distances(samples, centres)
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
    """A small CNN for the train-on-synthetic test (two stride-2 convolutions, 10 logits): much cheaper
    to train than the shipped classifier, and independent of it."""
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((28, 28, 1)),
        layers.Conv2D(16, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(32, 3, strides=2, padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(10, dtype="float32"),
    ], name="small_classifier")


def classification_accuracy_score(train_images, train_labels, test_images, test_labels, steps: int = 600,
                                  batch_size: int = 64, seed: int = 0) -> float:
    """Train a fresh :func:`small_classifier` on ``train_images`` with ``train_labels`` (e.g. generated,
    labelled digits) and return its accuracy on the real ``test_images`` (Ravuri & Vinyals 2019,
    "Classification Accuracy Score for Conditional Generative Models": train on synthetic, test on real).
    Every training set gets the same number of updates (``steps`` batches), so a small set is not also an
    under-trained one. Images are uint8 ``(N, 28, 28)``; labels integers or one-hot."""
    import keras

    model = small_classifier(seed)  # seeds everything first: the order of the draws below depends on it
    model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    # make_dataset checks the images and their labels
    train = data.make_dataset(train_images, train_labels, batch_size=min(batch_size, len(train_images)),
                              scale="unit", seed=seed).repeat()
    test = data.make_dataset(test_images, test_labels, batch_size=500, scale="unit", shuffle=False,
                             drop_remainder=False)
    model.fit(train, steps_per_epoch=int(steps), epochs=1, shuffle=False, verbose=0)  # the pipeline shuffles
    return float(model.evaluate(test, verbose=0, return_dict=True)["accuracy"])
