import numpy as np
import pytest

from helpers import data, metrics


@pytest.fixture(scope="module")
def test_split():
    return data.load_mnist(source="offline", verbose=False)[1]


def test_shipped_classifier_reads_held_out_digits(test_split):
    x, y = test_split
    p = metrics.class_probabilities(x)
    assert p.shape == (1000, 10)
    np.testing.assert_allclose(p.sum(1), 1, rtol=1e-6)
    assert (p.argmax(1) == y).mean() >= 0.98  # measured 0.985 when trained


def test_recognition_separates_digits_from_noise(test_split):
    x, _ = test_split
    real = metrics.recognition(x)
    noise = metrics.recognition(np.random.default_rng(0).integers(0, 256, (500, 28, 28), dtype=np.uint8))
    assert real["mean_confidence"] > 0.95 and real["classes_at_2pct"] == 10
    assert noise["mean_confidence"] < real["mean_confidence"] - 0.2 or noise["classes_at_2pct"] < 5
    assert metrics.features(x[:7]).shape == (7, 128)


def test_classifier_rejects_bad_input():
    with pytest.raises(ValueError, match="uint8"):
        metrics.class_probabilities(np.zeros((3, 28, 28), np.float32))
