"""The diffusion process of chapter 11 (helpers.diffusion): the closed-form forward marginal against the
iterated chain, the noise-prediction form of the ELBO's terms, the optimal denoiser of a finite training
set, and DDIM."""
import numpy as np
import pytest

from helpers import data, diffusion, models
from lab import cli, experiments, families

BETAS = diffusion.linear_betas(1000)
AB = diffusion.alpha_bars(BETAS)


def test_schedules_start_at_the_data_and_end_in_noise():
    assert AB[0] == 1.0 and len(AB) == 1001 and np.all(np.diff(AB) < 0)
    assert AB[-1] < 1e-4  # Ho et al.'s schedule leaves almost nothing of the image
    np.testing.assert_allclose(AB[1], 1 - 1e-4)
    cos = diffusion.cosine_alpha_bars(1000)
    assert cos[0] == 1.0 and np.all(np.diff(cos) <= 0) and cos[-1] < 1e-3
    assert cos[500] > AB[500]  # the cosine schedule keeps more of the signal half way


def test_closed_form_marginal_matches_the_iterated_chain():
    rng = np.random.default_rng(0)
    x0 = rng.uniform(-1, 1, 50)
    x = np.tile(x0, (4000, 1))
    for t in range(1, 301):
        x = np.sqrt(1 - BETAS[t - 1]) * x + np.sqrt(BETAS[t - 1]) * rng.standard_normal(x.shape)
    se = np.sqrt((1 - AB[300]) / len(x))
    assert np.abs(x.mean(0) - np.sqrt(AB[300]) * x0).max() < 5 * se
    np.testing.assert_allclose(x.var(0).mean(), 1 - AB[300], rtol=0.02)
    eps = rng.standard_normal(50)
    np.testing.assert_allclose(diffusion.noisy(x0, AB[300], eps), np.sqrt(AB[300]) * x0 + np.sqrt(1 - AB[300]) * eps)


@pytest.mark.parametrize("t", [2, 10, 400, 1000])
def test_each_elbo_term_is_a_weighted_noise_prediction_error(t):
    """KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)) with sigma_t^2 = beta_t, less its constant, computed
    from the two means, equals w_t |eps - eps_hat|^2 (Ho et al. 2020, eq. 12)."""
    rng = np.random.default_rng(t)
    beta, a_prev, a_t = BETAS[t - 1], AB[t - 1], AB[t]
    x0, eps = rng.uniform(-1, 1, 30), rng.standard_normal(30)
    eps_hat = eps + rng.standard_normal(30)
    xt = diffusion.noisy(x0, a_t, eps)
    post = (np.sqrt(a_prev) * beta * x0 + np.sqrt(1 - beta) * (1 - a_prev) * xt) / (1 - a_t)
    model = (xt - beta / np.sqrt(1 - a_t) * eps_hat) / np.sqrt(1 - beta)
    kl = ((post - model) ** 2).sum() / (2 * beta)
    w = beta ** 2 / (2 * beta * (1 - beta) * (1 - a_t))
    np.testing.assert_allclose(kl, w * ((eps - eps_hat) ** 2).sum(), rtol=1e-9)


def test_optimal_denoiser_is_the_posterior_mean_and_returns_a_training_image_at_low_noise():
    rng = np.random.default_rng(1)
    train = rng.uniform(-1, 1, (20, 16))
    denoise = diffusion.optimal_denoiser(train)
    # by hand: softmax of -|x_t - sqrt(ab) x_i|^2 / (2 (1 - ab)), then the weighted average
    xt = rng.standard_normal((3, 16))
    logits = -((xt[:, None] - np.sqrt(0.3) * train[None]) ** 2).sum(-1) / (2 * 0.7)
    w = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(denoise(xt, 0.3), (w / w.sum(1, keepdims=True)) @ train, rtol=1e-10)
    near = diffusion.noisy(train[7], 0.9999, rng.standard_normal(16))[None]
    np.testing.assert_allclose(denoise(near, 0.9999)[0], train[7], atol=1e-8)
    far = denoise(rng.standard_normal((1, 16)) * 1e-3, 1e-6)[0]  # no signal left: the average image
    np.testing.assert_allclose(far, train.mean(0), atol=1e-3)


def test_ddim_with_the_optimal_denoiser_returns_training_images():
    rng = np.random.default_rng(2)
    train = rng.uniform(-1, 1, (30, 64))
    levels = AB[np.linspace(1000, 0, 41).astype(int)]
    out = diffusion.ddim(diffusion.optimal_denoiser(train), rng.standard_normal((25, 64)), levels)
    nearest = np.sqrt(((out[:, None] - train[None]) ** 2).sum(-1)).min(1)
    assert nearest.max() < 1e-6


def test_one_ddim_step_from_a_known_denoiser():
    x0 = np.array([[0.2, -0.4]])
    noise = np.array([[1.5, -0.3]])
    out = diffusion.ddim(lambda x, a: np.tile(x0, (len(x), 1)), noise, [AB[1000], 1.0])
    np.testing.assert_allclose(out, x0)
    # a step to an intermediate level recombines the clean guess with the implied noise
    seen = []

    def recording(x, a):
        seen.append(x.copy())
        return np.tile(x0, (len(x), 1))

    diffusion.ddim(recording, noise, [AB[1000], AB[200]])  # ends above the data: one more guess of x0
    eps = (noise - np.sqrt(AB[1000]) * x0) / np.sqrt(1 - AB[1000])
    np.testing.assert_allclose(seen[1], np.sqrt(AB[200]) * x0 + np.sqrt(1 - AB[200]) * eps)  # the same noise, reused


def test_ddim_maps_noise_to_a_gaussian_data_distribution():
    m, s = -0.5, 0.3

    def denoise(xt, a):
        return m + np.sqrt(a) * s ** 2 / (a * s ** 2 + 1 - a) * (xt - np.sqrt(a) * m)

    start = np.random.default_rng(3).standard_normal((50_000, 1))
    out = diffusion.ddim(denoise, start, AB[np.linspace(1000, 0, 1001).astype(int)])
    assert abs(out.std() - s) < 0.01 and abs(out.mean() - m) < 0.01
    one = diffusion.ddim(denoise, start, [AB[1000], 1.0])
    assert one.std() < 0.01  # one step returns the posterior mean: no spread


# ------------------------------------------------------------------------------- the trained model
def test_unet_maps_noisy_images_and_variances_to_noise_of_the_same_shape():
    net = models.unet((8, 16, 24), blocks=1)
    x = np.random.default_rng(0).standard_normal((3, 28, 28, 1)).astype("float32")
    out = np.asarray(net([x, np.full((3, 1, 1, 1), 0.5, "float32")]))
    assert out.shape == (3, 28, 28, 1) and np.all(out == 0)  # the last layer starts at zero
    assert [l.output.shape[1] for l in net.layers if l.__class__.__name__ == "AveragePooling2D"] == [14, 7]
    emb = np.asarray(models.NoiseEmbedding(8)(np.array([[[[0.1]]], [[[0.9]]]], "float32")))
    assert emb.shape == (2, 1, 1, 8) and np.allclose(emb[..., :4] ** 2 + emb[..., 4:] ** 2, 1)


def test_signal_share_runs_from_almost_data_to_almost_noise():
    ab = np.asarray(diffusion.signal_share(np.array([0.0, 0.5, 1.0])))
    np.testing.assert_allclose(ab[[0, 2]], [0.95 ** 2, 0.02 ** 2], rtol=1e-5)
    assert ab[0] > ab[1] > ab[2]


def _small(**kw):
    return experiments.config("diffusion", steps=40, log_every=20, width=8, batch_size=32, train_size=200,
                              sample_steps=5, policy="float32", **kw)


def test_the_simple_loss_falls_and_the_moving_average_follows_the_weights(tmp_path):
    model, _, info = experiments.train(_small(), str(tmp_path / "a"), verbose=0)
    loss = info["history"]["loss"]
    assert loss[-1] < 0.8 * loss[0], loss  # from about 1 (predicting no noise) down
    w, avg = model.network.weights[0].numpy(), model.ema_network.weights[0].numpy()
    assert not np.allclose(w, avg) and np.corrcoef(w.ravel(), avg.ravel())[0, 1] > 0.5


def test_a_resumed_diffusion_run_ends_with_the_weights_of_a_straight_one(tmp_path, assert_same_state):
    cfg = {**_small(), "steps": 12, "log_every": 6}  # few steps: the resume, not the training, is tested
    experiments.train({**cfg, "steps": 6}, str(tmp_path / "r"), verbose=0)
    resumed, _, _ = experiments.train(cfg, str(tmp_path / "r"), resume=True, verbose=0)
    straight, _, _ = experiments.train(cfg, str(tmp_path / "s"), verbose=0)
    assert_same_state(resumed.ema_network.weights + resumed.network.weights,
                      straight.ema_network.weights + straight.network.weights)


def test_cli_trains_samples_with_its_steps_and_evaluates_a_diffusion_run(tmp_path, capsys):
    out, npy = str(tmp_path / "d"), str(tmp_path / "d.npy")
    assert cli.main(["train", "diffusion", "--out", out, "--steps", "10", "--width", "8", "--batch-size", "16",
                     "--train-size", "100", "--log-every", "10"]) == 0
    assert cli.main(["sample", out, "--n", "20", "--steps", "3", "--out", npy]) == 0
    assert np.load(npy).shape == (20, 28, 28) and np.load(npy).dtype == np.uint8
    assert cli.main(["evaluate", npy]) == 0 and '"fid"' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["train", "diffusion", "--out", str(tmp_path / "x"), "--width", "12"])  # not a multiple of 8
    assert "multiple of 8" in capsys.readouterr().err


def test_halves_are_disjoint_balanced_and_fixed():
    y = np.random.default_rng(5).permutation(np.repeat(np.arange(10), 21))
    ids = np.arange(len(y))
    x = np.zeros((len(y), 28, 28), np.uint8)
    x[:, 0, 0], x[:, 0, 1] = ids % 256, ids // 256  # each image carries its index
    (a, ya), (b, yb) = data.half(x, y, 0), data.half(x, y, 1)
    index = lambda imgs: set(imgs[:, 0, 0].astype(int) + 256 * imgs[:, 0, 1].astype(int))
    assert not index(a) & index(b) and index(a) | index(b) == set(ids)  # disjoint, and together everything
    assert set(np.bincount(ya, minlength=10)) == {11} and set(np.bincount(yb, minlength=10)) == {10}
    np.testing.assert_array_equal(data.half(x, y, 0)[0], a)  # the same halves every time
    with pytest.raises(ValueError, match="0 or 1"):
        data.half(x, y, 2)


class _Guess:
    """A stand-in network: ``predict_on_batch([x_t, variance])`` returns ``rule(x_t, variance)``."""

    def __init__(self, rule):
        self.rule = rule

    def predict_on_batch(self, inputs):
        return self.rule(*inputs)


def test_denoising_loss_of_known_guesses():
    x0 = np.zeros((700, 28, 28, 1), np.float32)  # all-black images: x_t is pure scaled noise
    eps = np.random.default_rng(3).standard_normal(x0.shape)
    # guessing "no noise" costs the mean squared noise; dividing x_t by its noise scale recovers it exactly
    assert families.denoising_loss(_Guess(lambda x, v: 0 * x), x0, seed=3) == pytest.approx(np.mean(eps ** 2), rel=1e-5)
    assert families.denoising_loss(_Guess(lambda x, v: x / np.sqrt(v)), x0, seed=3, batch=300) < 1e-10


def test_a_run_on_a_half_trains_on_that_half_and_reports_both_losses(tmp_path):
    cfg = {**_small(half=1, seed=1), "steps": 4, "log_every": 4}
    x, _, _ = experiments.training_data(cfg)
    (full, labels), _ = data.load_images(cfg["data"])
    other = {im.tobytes() for im in data.half(full, labels, 0)[0]}
    assert len(x) == 200 and not any(im.tobytes() in other for im in x)
    row = experiments.run(cfg, cache=str(tmp_path))
    assert row["train_loss"] > 0 and row["heldout_loss"] > 0 and 0 <= row["memorised"] <= 1


def test_a_set_smaller_than_a_batch_is_repeated_to_fill_it_and_scored_against_one_copy(tmp_path):
    cfg = {**_small(), "train_size": 10, "steps": 4, "log_every": 4}  # batch 32 from 10 images
    model, x_train, info = experiments.train(cfg, experiments.run_dir(cfg, str(tmp_path)), verbose=0)
    assert len(x_train) == 10 and len(info["history"]["loss"]) == 1
    assert experiments.record(cfg, model, x_train, info, cache=str(tmp_path))["images"] == 10
