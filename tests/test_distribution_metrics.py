"""FID, KID, IS and precision/recall: closed-form cases, agreement with transcriptions of the reference
implementations (pytorch-fid / TTUR for FID, torch-fidelity for KID, IS and precision/recall), bad input,
and the ordering real < degraded < noise on real digits."""
import json

import numpy as np
import pytest
import scipy.linalg
from scipy.spatial.distance import cdist

from helpers import data, metrics
from lab import cli


# --------------------------------------------------------------------- reference transcriptions
def ref_frechet(mu1, sigma1, mu2, sigma2, eps=1e-6):
    """pytorch-fid's calculate_frechet_distance (same as TTUR's)."""
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean)


def ref_kid(f1, f2, subsets, subset_size, seed):
    """torch-fidelity's kid: polynomial kernel degree 3, gamma 1/d, coef 1, unbiased mmd2."""
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        x = f1[rng.choice(len(f1), subset_size, replace=False)]
        y = f2[rng.choice(len(f2), subset_size, replace=False)]
        d = x.shape[1]
        k_xx, k_yy, k_xy = (x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3
        m = subset_size
        kt_xx_sum = k_xx.sum() - np.diagonal(k_xx).sum()
        kt_yy_sum = k_yy.sum() - np.diagonal(k_yy).sum()
        mmds[i] = (kt_xx_sum + kt_yy_sum) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m)
    return mmds.mean(), mmds.std()


def ref_is(probs, splits, seed):
    """torch-fidelity's isc on probabilities: shuffle, split, exp(mean KL(p(y|x) || p(y)))."""
    p = probs[np.random.RandomState(seed).permutation(len(probs))]
    n, scores = len(p), []
    for k in range(splits):
        part = p[k * n // splits:(k + 1) * n // splits]
        q = part.mean(0, keepdims=True)
        scores.append(np.exp((part * (np.log(part) - np.log(q))).sum(1).mean()))
    return np.mean(scores), np.std(scores)


def ref_pr(real, fake, k):
    """Kynkäänniemi et al. 2019 with brute-force distances."""
    real_r = np.sort(cdist(real, real), axis=1)[:, k]
    fake_r = np.sort(cdist(fake, fake), axis=1)[:, k]
    precision = np.mean([(np.linalg.norm(real - f, axis=1) <= real_r).any() for f in fake])
    recall = np.mean([(np.linalg.norm(fake - r, axis=1) <= fake_r).any() for r in real])
    return precision, recall


# --------------------------------------------------------------------- closed forms
def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 5))
    mu, sigma = metrics.statistics(a)
    assert metrics.frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-9)
    assert metrics.frechet_distance([0.0], [[1.0]], [3.0], [[4.0]]) == pytest.approx(10, rel=1e-12)
    assert metrics.frechet_distance(np.zeros(3), np.diag([1.0, 4, 9]), np.array([1.0, 2, 2]),
                                    np.diag([4.0, 9, 16])) == pytest.approx(12, rel=1e-12)
    assert metrics.frechet_distance(np.zeros(10), np.eye(10), np.zeros(10), 9 * np.eye(10)) == pytest.approx(40, rel=1e-12)


def test_frechet_distance_is_finite_on_singular_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(20, 64)), rng.normal(size=(30, 64)) + 0.5  # fewer samples than dimensions
    value = metrics.fid(a, b)
    assert np.isfinite(value) and value > 0
    rank1 = np.outer([1.0, 2, 3], [1.0, 2, 3])
    assert metrics.frechet_distance(np.zeros(3), rank1, np.zeros(3), rank1) == pytest.approx(0, abs=1e-7)


@pytest.mark.parametrize("d, n", [(64, 500), (2048, 2500)])
def test_fid_matches_pytorch_fid(d, n):
    rng = np.random.default_rng(d)
    a = rng.normal(size=(n, d))
    b = rng.normal(size=(n, d)) @ (np.eye(d) + 0.05 * rng.normal(size=(d, d)) / np.sqrt(d)) + 0.1
    mu1, s1 = np.mean(a, 0), np.cov(a, rowvar=False)
    mu2, s2 = np.mean(b, 0), np.cov(b, rowvar=False)
    np.testing.assert_allclose(metrics.statistics(a)[1], s1, rtol=1e-10, atol=1e-12)
    assert metrics.fid(a, b) == pytest.approx(ref_frechet(mu1, s1, mu2, s2), rel=1e-6)


def test_kid_closed_form_and_reference():
    assert metrics.kid([[0.0], [0.0]], [[1.0], [1.0]], subset_size=None) == (pytest.approx(7), 0.0)
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(300, 16)), rng.normal(0.2, 1.1, size=(250, 16))
    mean, std = metrics.kid(a, b, subsets=20, subset_size=100, seed=5)
    ref_mean, ref_std = ref_kid(a, b, 20, 100, 5)
    assert mean == pytest.approx(ref_mean, rel=1e-6) and std == pytest.approx(ref_std, rel=1e-6)
    with pytest.raises(ValueError, match="subset_size=1000 is larger"):
        metrics.kid(a, b)
    same = metrics.kid(a[:150], a[150:], subsets=10, subset_size=100)[0]
    assert abs(same) < 0.5 * mean  # unbiased: about zero for two samples of one distribution
    # subsets as large as both sets are the whole sets reordered: computed once, same value as the reference
    whole_mean, whole_std = metrics.kid(a[:250], b, subsets=20, subset_size=250, seed=5)
    assert whole_mean == pytest.approx(ref_kid(a[:250], b, 20, 250, 5)[0], rel=1e-9) and whole_std == 0.0


def test_inception_score_closed_forms_and_reference():
    onehot = np.eye(10)[np.repeat(np.arange(10), 10_000)]  # confident, class-balanced, sorted by class
    assert metrics.inception_score(onehot, splits=1)[0] == pytest.approx(10, rel=1e-12)
    # shuffled before splitting, so each tenth holds about 1,000 of every class (unshuffled it would be 1)
    assert metrics.inception_score(onehot)[0] == pytest.approx(10, rel=1e-3)
    assert metrics.inception_score(np.tile(np.full(10, 0.1), (100, 1)))[0] == pytest.approx(1, rel=1e-12)
    assert metrics.inception_score(np.tile(np.eye(10)[3], (100, 1)))[0] == pytest.approx(1, rel=1e-12)
    rng = np.random.default_rng(3)
    logits = rng.normal(0, 3, size=(1000, 10))
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    mean, std = metrics.inception_score(p, splits=10, seed=4)
    ref_mean, ref_std = ref_is(p, 10, 4)
    assert mean == pytest.approx(ref_mean, rel=1e-6) and std == pytest.approx(ref_std, rel=1e-6)
    with pytest.raises(ValueError, match="softmax"):
        metrics.inception_score(logits)


def test_precision_recall_reference_and_extremes():
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(200, 8)), rng.normal(0.5, 0.7, size=(150, 8))
    assert metrics.precision_recall(real, fake, k=3) == pytest.approx(ref_pr(real, fake, 3), rel=1e-12)
    assert metrics.precision_recall(real, real) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100) == (0.0, 0.0)


@pytest.mark.parametrize("n_real, n_fake, d, k, shift", [(200, 150, 8, 5, 0.5), (300, 300, 64, 3, 0.0),
                                                     (120, 400, 2, 7, 1.5)])
def test_density_coverage_and_precision_recall_match_prdc(n_real, n_fake, d, k, shift):
    """Against the authors' package (Naeem et al. 2020, ``prdc.compute_prdc``) on random cases."""
    prdc = pytest.importorskip("prdc")
    rng = np.random.default_rng(n_real + d)
    real, fake = rng.normal(size=(n_real, d)), rng.normal(shift, 0.8, size=(n_fake, d))
    ref = prdc.compute_prdc(real, fake, nearest_k=k)
    density, coverage = metrics.density_coverage(real, fake, k=k)
    assert density == pytest.approx(ref["density"], abs=1e-6) and coverage == pytest.approx(ref["coverage"], abs=1e-6)
    assert metrics.precision_recall(real, fake, k=k) == pytest.approx((ref["precision"], ref["recall"]), abs=1e-6)


def test_density_is_one_on_average_for_the_same_distribution_and_small_for_one_outlier_ball():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(2000, 4))
    density, coverage = metrics.density_coverage(real, rng.normal(size=(2000, 4)))
    assert 0.85 < density < 1.15 and coverage > 0.9
    outlier = real[np.argmax(np.linalg.norm(real, axis=1))]  # the widest ball: fakes all piled inside it
    density, coverage = metrics.density_coverage(real, outlier + 1e-3 * rng.normal(size=(500, 4)))
    assert density < 0.5 and coverage < 0.01


@pytest.mark.parametrize("noise", [0.0, 0.03])
def test_memorised_finds_planted_copies(digits, noise):
    """A 'sampler' that returns held-out digits (new) with 0%, 10% or 50% training digits planted among
    them, exact or lightly noised: Gu et al.'s rule finds about the planted share, and no more."""
    (x_train, _), (x_test, _) = digits
    rng = np.random.default_rng(1)
    for share in (0.0, 0.1, 0.5):
        n_copy = int(share * 400)
        copies = x_train[rng.choice(len(x_train), n_copy, replace=False)].astype(np.float64)
        copies = np.clip(copies + 255 * noise * rng.normal(size=copies.shape), 0, 255).astype(np.uint8)
        samples = np.concatenate([x_test[:400 - n_copy], copies])
        found, ratios = metrics.memorised(samples, x_train)
        assert abs(found - share) <= 0.03, (share, noise, found)
        assert ratios.shape == (400,)
        if n_copy:  # the planted ones are the ones found
            assert np.mean(ratios[-n_copy:] < 1 / 3) >= 0.95 and np.mean(ratios[:-n_copy] < 1 / 3) <= 0.03


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: metrics.fid(np.zeros(10), np.zeros((10, 2))), "2-D"),
        (lambda: metrics.fid(np.zeros((10, 3)), np.zeros((10, 2))), "3 features"),
        (lambda: metrics.fid(np.full((10, 2), np.nan), np.zeros((10, 2))), "NaN"),
        (lambda: metrics.fid(np.zeros((1, 2)), np.zeros((10, 2))), "at least 2"),
        (lambda: metrics.kid(np.zeros((10, 2)), np.zeros((10, 3))), "features"),
        (lambda: metrics.precision_recall(np.zeros((3, 2)), np.zeros((3, 2)), k=3), "k must"),
        (lambda: metrics.frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2)), "shapes"),
    ],
)
def test_bad_input_raises_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --------------------------------------------------------------------- on digits
@pytest.fixture(scope="module")
def digits():
    return data.load_mnist(source="offline", verbose=False)


def test_metrics_order_real_degraded_noise(digits):
    (x_train, _), (x_test, _) = digits
    rng = np.random.default_rng(0)
    noisy = np.clip(x_train[:1000].astype(int) + rng.integers(-120, 120, (1000, 28, 28)), 0, 255).astype(np.uint8)
    noise = rng.integers(0, 256, (1000, 28, 28), dtype=np.uint8)
    real_s, noisy_s, noise_s = (metrics.evaluate(x, x_test, subset_size=500) for x in (x_train[:1000], noisy, noise))
    assert real_s["fid"] < noisy_s["fid"] < noise_s["fid"]
    assert real_s["kid"] < noisy_s["kid"] < noise_s["kid"]
    # (not precision: noise collapses to one point in feature space, which may fall in a real ball)
    assert real_s["recall"] > noisy_s["recall"] > noise_s["recall"] and real_s["is"] > noise_s["is"]


def test_inception_path_offline(monkeypatch):
    feats = metrics.inception_features(np.zeros((2, 28, 28), np.uint8), weights=None)
    assert feats.shape == (2, 2048) and feats.dtype == np.float64

    import keras

    def no_network(**kwargs):
        raise OSError("URL fetch failure")

    monkeypatch.setattr(keras.applications, "InceptionV3", no_network)
    with pytest.raises(RuntimeError, match="shipped classifier"):
        metrics.inception_features(np.zeros((2, 28, 28), np.uint8))


def test_cli_evaluate_prints_json_last(digits, tmp_path, capsys):
    (x_train, _), _ = digits
    path = str(tmp_path / "real.npy")
    np.save(path, x_train[:600])
    assert cli.main(["evaluate", path]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"fid", "kid", "is", "precision", "recall"} <= set(result)
    assert result["n_fake"] == 600 and result["kid_subset_size"] == 600
    np.save(path, x_train[:20].astype(np.float32))
    with pytest.raises(SystemExit, match="uint8"):
        cli.main(["evaluate", path])
