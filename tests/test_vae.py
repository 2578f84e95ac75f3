import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import data, models, training, variants
from lab import experiments


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist(source="offline", verbose=False)


def test_gaussian_kl_closed_form_matches_monte_carlo():
    """KL(q || N(0, I)) in closed form against E_q[log q(z) - log p(z)] estimated from 200,000 samples."""
    rng = np.random.default_rng(0)
    mean = rng.normal(0, 1.0, (5, 4))
    log_var = rng.normal(0, 0.7, (5, 4))
    closed = training.gaussian_kl(mean, log_var).numpy()
    for m, lv, kl in zip(mean, log_var, closed):
        sd = np.exp(0.5 * lv)
        eps = rng.standard_normal((200_000, 4))
        z = m + sd * eps
        log_q = np.sum(-0.5 * eps**2 - np.log(sd) - 0.5 * np.log(2 * np.pi), axis=1)
        log_p = np.sum(-0.5 * z**2 - 0.5 * np.log(2 * np.pi), axis=1)
        terms = log_q - log_p
        se = terms.std(ddof=1) / np.sqrt(len(terms))
        assert abs(terms.mean() - kl) < 4 * se, (terms.mean(), kl, se)
    assert training.gaussian_kl(np.zeros((2, 3)), np.zeros((2, 3))).numpy() == pytest.approx([0, 0])
    # one dimension, mean 1, variance e: 0.5 * (1 + e - 1 - 1)
    assert training.gaussian_kl([[1.0]], [[1.0]]).numpy()[0] == pytest.approx(0.5 * (np.e - 1), rel=1e-6)


def test_bernoulli_nll_is_the_summed_cross_entropy():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (3, 28, 28, 1)).astype("float32")
    logits = rng.normal(0, 2, (3, 28, 28, 1)).astype("float32")
    p = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = -(x * np.log(p) + (1 - x) * np.log(1 - p)).reshape(3, -1).sum(1)
    np.testing.assert_allclose(training.bernoulli_nll(x, logits).numpy(), expected, rtol=1e-5)


def test_vae_builders_and_bad_pairing():
    enc, dec = models.vae_encoder(8, 8), models.vae_decoder(8, 8)
    assert enc.output_shape == (None, 16) and dec.output_shape == (None, 28, 28, 1)
    with pytest.raises(ValueError, match="2 \\* z_dim"):
        training.VAE(models.vae_encoder(4, 8), dec)
    with pytest.raises(ValueError, match="beta"):
        training.VAE(enc, dec, beta=-1)


def test_held_out_negative_elbo_falls_and_adds_up(mnist):
    (x, _), (xt, _) = mnist
    tf.keras.utils.set_random_seed(0)
    vae = training.make_vae(models.vae_encoder(8, 8), models.vae_decoder(8, 8), seed=0)
    held_out = data.make_dataset(xt, batch_size=500, scale="unit", shuffle=False, drop_remainder=False)
    before = vae.evaluate(held_out, verbose=0, return_dict=True)
    history = vae.fit(data.make_dataset(x, batch_size=64, scale="unit").repeat(), steps_per_epoch=20, epochs=3,
                      validation_data=held_out, shuffle=False, verbose=0).history
    after = vae.evaluate(held_out, verbose=0, return_dict=True)
    val = history["val_neg_elbo"]
    assert before["neg_elbo"] > 500 and after["neg_elbo"] < 0.6 * before["neg_elbo"], (before, after)
    assert val[-1] < val[0], val
    assert after["neg_elbo"] == pytest.approx(after["recon"] + after["kl"], rel=1e-5)
    assert after["kl"] > 0
    recon = vae(xt[:8, ..., None].astype("float32") / 255).numpy()
    assert recon.shape == (8, 28, 28, 1) and recon.min() >= 0 and recon.max() <= 1


def test_vae_nan_guard(tmp_path):
    bad = tf.data.Dataset.from_tensor_slices(np.full((64, 28, 28, 1), np.nan, np.float32)).batch(16).repeat()
    vae = training.make_vae(models.vae_encoder(4, 8), models.vae_decoder(4, 8))
    ckpt = str(tmp_path / "ckpt")
    with pytest.raises(experiments.TrainingDiverged):
        experiments.fit_steps(vae, bad, 4, log_every=2, callbacks=[experiments.NaNGuard(ckpt), experiments.Checkpoint(ckpt)],
                           verbose=0)
    assert not os.path.exists(ckpt)


def test_held_out_losses_average_over_images_not_batches(mnist):
    """Seven held-out images in batches of 4 and 3: the logged KL is the mean over the 7 images (the
    mean of the two batch means would weight the last three images 4/3 too much)."""
    _, (xt, _) = mnist
    keras.utils.set_random_seed(0)
    vae = training.make_vae(models.vae_encoder(4, 8), models.vae_decoder(4, 8), seed=0)
    images = np.concatenate([np.zeros((4, 28, 28), np.uint8), xt[:3]])  # blank images: KL 0 at initialisation
    x = images[..., None].astype("float32") / 255
    ds = data.make_dataset(images, batch_size=4, scale="unit", shuffle=False, drop_remainder=False)
    logged = vae.evaluate(ds, verbose=0, return_dict=True)
    mean, log_var = vae.encode(x)
    per_image = training.gaussian_kl(mean, log_var).numpy()
    assert logged["kl"] == pytest.approx(per_image.mean(), rel=1e-4)
    batch_means = per_image[:4].mean() / 2 + per_image[4:].mean() / 2
    assert abs(batch_means / per_image.mean() - 1) > 0.1  # 7/6 - 1: the two averages differ, the test can tell
    again = vae.evaluate(ds, verbose=0, return_dict=True)
    assert again["recon"] == logged["recon"]  # evaluation noise restarts: the same weights, the same numbers


@pytest.mark.parametrize("beta", [0.0, 2.5])
def test_beta_weights_the_kl_in_the_objective(mnist, beta):
    """The trained objective is recon + beta * kl (beta = 0: an autoencoder whose KL is free to grow)."""
    (x, _), _ = mnist
    keras.utils.set_random_seed(0)
    vae = training.make_vae(models.vae_encoder(4, 8), models.vae_decoder(4, 8), beta=beta, seed=0)
    h = experiments.fit_steps(vae, data.make_dataset(x, batch_size=64, scale="unit").repeat(), 60, log_every=30,
                           verbose=0).history
    assert h["loss"][-1] == pytest.approx(h["recon"][-1] + beta * h["kl"][-1], rel=1e-4)
    assert h["neg_elbo"][-1] == pytest.approx(h["recon"][-1] + h["kl"][-1], rel=1e-4)
    if beta == 0:
        assert h["loss"][-1] < h["neg_elbo"][-1]


def test_mixture_prior_samples_the_mixture_and_survives_saving(tmp_path):
    """Standard normal noise through MixturePrior: component shares, means and covariances of the mixture."""
    weights = [0.3, 0.7]
    means = [[-20.0, 0.0], [20.0, 2.0]]
    trils = [[[1.0, 0.0], [0.5, 0.5]], [[2.0, 0.0], [-1.0, 1.0]]]
    prior = models.MixturePrior(weights, means, trils)
    noise = np.random.default_rng(0).standard_normal((200_000, 3)).astype("float32")
    z = prior(noise).numpy()
    right = z[:, 0] > 0  # the components are far apart: the sign of z_1 tells them apart
    assert right.mean() == pytest.approx(0.7, abs=0.005)
    for part, m, t in ((z[~right], means[0], trils[0]), (z[right], means[1], trils[1])):
        np.testing.assert_allclose(part.mean(0), m, atol=0.03)
        np.testing.assert_allclose(np.cov(part.T), np.array(t) @ np.array(t).T, atol=0.05)
    model = keras.Sequential([keras.Input((3,)), prior])
    model.save(tmp_path / "p.keras")
    again = keras.models.load_model(tmp_path / "p.keras", compile=False)
    np.testing.assert_array_equal(again(noise[:100]).numpy(), z[:100])


def test_fitted_mixture_prior_follows_the_codes(mnist):
    """Fitted to a VAE's codes, the mixture reproduces their mean and spread (not N(0, I)'s)."""
    (x, _), _ = mnist
    vae = training.make_vae(models.vae_encoder(4, 8), models.vae_decoder(4, 8), seed=0)
    experiments.fit_steps(vae, data.make_dataset(x, batch_size=64, scale="unit").repeat(), 40, log_every=40, verbose=0)
    prior = variants.fit_mixture_prior(vae, x[:1000], components=5)
    codes = vae.encode(x[:1000, ..., None].astype("float32") / 255)[0].numpy()
    z = prior(np.random.default_rng(1).standard_normal((50_000, 5)).astype("float32")).numpy()
    assert np.all(np.abs(z.mean(0) - codes.mean(0)) < 0.05 + 0.1 * codes.std(0)), (z.mean(0), codes.mean(0))
    np.testing.assert_allclose(z.std(0), codes.std(0), rtol=0.1)
    with pytest.raises(ValueError, match="prior"):
        experiments.config("dcgan", prior="mixture")
