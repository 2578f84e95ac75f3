"""Judging generated digits: a small MNIST classifier that ships with the package (weights in
``helpers/assets``), and the recognition score built on it.

Introduced in the hands-on GAN chapter (``03_gan_mnist``); the evaluation chapter adds FID, KID, IS and
precision/recall on the same classifier's features. The classifier is trained by
``scripts/train_classifier.py`` on the training split of :func:`helpers.data.load_mnist` and never sees
the test split nor any generated image, so it is independent of every generator in the book.
"""
from __future__ import annotations

import os

import numpy as np

from . import data

WEIGHTS = os.path.join(os.path.dirname(__file__), "assets", "mnist_classifier.weights.h5")
_classifier = None


def build_classifier():
    """The classifier's architecture: two conv blocks, a 128-unit feature layer, 10 logits."""
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


def classifier():
    """The shipped, trained classifier (loaded once)."""
    global _classifier
    if _classifier is None:
        if not os.path.exists(WEIGHTS):
            raise FileNotFoundError(
                f"{WEIGHTS} is missing; reinstall the package or run `python scripts/train_classifier.py`."
            )
        model = build_classifier()
        model.load_weights(WEIGHTS)
        _classifier = model
    return _classifier


def _predict(images, batch_size=500):
    x = data.check_images(images).astype(np.float32) / 255.0
    model = classifier()
    feats, logits = [], []
    for i in range(0, len(x), batch_size):
        f, l = model(x[i : i + batch_size], training=False)
        feats.append(np.asarray(f, np.float64))
        logits.append(np.asarray(l, np.float64))
    return np.concatenate(feats), np.concatenate(logits)


def class_probabilities(images) -> np.ndarray:
    """Softmax class probabilities ``(N, 10)`` for uint8 images ``(N, 28, 28)``."""
    logits = _predict(images)[1]
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def features(images) -> np.ndarray:
    """The classifier's 128-dimensional penultimate-layer features ``(N, 128)``, float64."""
    return _predict(images)[0]


def recognition(images) -> dict:
    """How recognisable generated digits are: the classifier's mean confidence (its top probability),
    the share of images predicted as each class, and how many classes hold at least 2%."""
    p = class_probabilities(images)
    shares = np.bincount(p.argmax(axis=1), minlength=10) / len(p)
    return {
        "mean_confidence": float(p.max(axis=1).mean()),
        "class_shares": [round(float(s), 4) for s in shares],
        "classes_at_2pct": int((shares >= 0.02).sum()),
    }
