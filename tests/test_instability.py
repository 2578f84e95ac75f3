"""The GAN variants of the instability chapter: losses, gradient penalties, d_steps, spectral norm,
separate learning rates, clipping; the toy mixtures and the mode-coverage metric."""
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import data, metrics, models, training, variants
from lab import cli, experiments, families


def _linear_critic(w, bias=0.0):
    """D(x) = w . flatten(x) + bias: its gradient with respect to every image is w."""
    critic = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                               keras.layers.Dense(1, kernel_initializer="zeros", dtype="float32")])
    critic.layers[-1].kernel.assign(np.asarray(w, np.float32).reshape(784, 1))
    critic.layers[-1].bias.assign([bias])
    return critic


SEED = tf.constant([1, 2])


def _penalty(kind, critic, real, fake):
    return float(variants.gradient_penalty(kind, critic, real, fake, SEED))


@pytest.mark.parametrize("norm", [1.0, 0.5, 3.0])
def test_wgan_gp_penalty_is_zero_at_unit_gradient_norm_and_matches_the_formula(norm):
    w = np.random.default_rng(0).standard_normal(784)
    w *= norm / np.linalg.norm(w)
    x = tf.random.normal((6, 28, 28, 1))
    penalty = _penalty("wgan-gp", _linear_critic(w), x, tf.random.normal((6, 28, 28, 1)))
    assert penalty == pytest.approx((norm - 1.0) ** 2, rel=1e-4, abs=1e-5)


def test_wgan_gp_penalty_of_a_flat_critic_is_finite():
    critic = _linear_critic(np.zeros(784))
    x = tf.random.normal((4, 28, 28, 1))
    with tf.GradientTape() as tape:
        penalty = variants.gradient_penalty("wgan-gp", critic, x, x, SEED)
    grads = tape.gradient(penalty, critic.trainable_variables)
    assert float(penalty) == pytest.approx(1.0, rel=1e-4)  # (0 - 1)^2 (sqrt(eps) aside)
    assert all(np.all(np.isfinite(g.numpy())) for g in grads if g is not None)


def test_r1_penalty_matches_the_formula():
    w = np.random.default_rng(1).standard_normal(784)
    real = tf.random.normal((5, 28, 28, 1))
    assert _penalty("r1", _linear_critic(w), real, real) == pytest.approx(0.5 * np.sum(w**2), rel=1e-4)
    # a non-linear critic: D(x) = sum(x^2), so grad = 2x and R1 = 1/2 * mean ||2x||^2
    square = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Lambda(
        lambda x: tf.reduce_sum(tf.square(x), axis=[1, 2, 3])[:, None])])
    expected = 0.5 * np.mean(np.sum((2 * real.numpy().reshape(5, -1)) ** 2, axis=1))
    assert _penalty("r1", square, real, real) == pytest.approx(expected, rel=1e-4)


def test_the_penalty_is_weighted_into_the_discriminator_loss():
    w = np.random.default_rng(0).standard_normal(784)
    gan = training.make_gan(models.dcgan_generator(8, 8), _linear_critic(w), cls=variants.VariantGAN,
                            loss="wasserstein", penalty="r1", penalty_weight=3.0, lr=0.0)
    out = gan.forward(tf.random.normal((4, 28, 28, 1)))
    assert float(out["penalty"]) == pytest.approx(3.0 * 0.5 * np.sum(w**2), rel=1e-4)


@pytest.mark.parametrize("loss", variants.LOSSES)
def test_losses_match_their_formulas(loss):
    r = tf.constant([[0.3], [-1.2], [2.0]])
    f = tf.constant([[-0.5], [1.5], [0.1]])
    d, g = (float(v) for v in variants.gan_losses(loss, r, f))
    sp = lambda v: np.log1p(np.exp(v))
    rn, fn = r.numpy(), f.numpy()
    expected = {
        "non_saturating": (np.mean(sp(-rn)) + np.mean(sp(fn)), np.mean(sp(-fn))),
        "saturating": (np.mean(sp(-rn)) + np.mean(sp(fn)), -np.mean(sp(fn))),
        "wasserstein": (fn.mean() - rn.mean(), -fn.mean()),
        "hinge": (np.mean(np.maximum(0, 1 - rn)) + np.mean(np.maximum(0, 1 + fn)), -fn.mean()),
    }[loss]
    assert (d, g) == pytest.approx(expected, rel=1e-5)


def test_bad_options_are_clear_errors():
    """Settings are validated once, where a run is configured (lab.settings; the models trust them)."""
    for kw, match in [({"loss": "least_squares"}, "loss must be"), ({"penalty": "gp"}, "penalty must be"),
                      ({"d_steps": 0}, "d_steps"), ({"loss": "hinge", "label_smoothing": 0.1}, "cross-entropy"),
                      ({"penalty_weight": -1.0, "penalty": "r1"}, "penalty_weight")]:
        with pytest.raises(ValueError, match=match):
            experiments.config("dcgan", **kw)
    with pytest.raises(ValueError, match="unknown GAN loss"):
        variants.gan_losses("least_squares", tf.zeros(2), tf.zeros(2))


def test_d_steps_makes_that_many_critic_updates_per_generator_update():
    x = np.random.default_rng(0).integers(0, 256, (200, 28, 28), dtype=np.uint8)
    gan = training.make_gan(models.dcgan_generator(8, 8), models.dcgan_discriminator(8, spectral_norm=True),
                            cls=variants.VariantGAN, loss="wasserstein", penalty="wgan-gp", d_steps=5,
                            steps_per_execution=2)
    experiments.fit_steps(gan, data.make_dataset(x, batch_size=5 * 8).repeat(), 6, log_every=3, verbose=0)
    assert int(gan.g_optimizer.iterations.numpy()) == 6
    assert int(gan.d_optimizer.iterations.numpy()) == 30


def test_spectral_norm_keeps_the_largest_singular_value_near_one():
    keras.utils.set_random_seed(0)  # the same initial weights whatever ran before (one power iteration per step)
    x = np.random.default_rng(0).integers(0, 256, (256, 28, 28), dtype=np.uint8)
    disc = models.dcgan_discriminator(8, spectral_norm=True)
    gan = training.make_gan(models.dcgan_generator(8, 8), disc, lr=1e-2, cls=variants.VariantGAN, loss="hinge")
    experiments.fit_steps(gan, data.make_dataset(x, batch_size=32).repeat(), 40, log_every=40, verbose=0)
    for wrapper in [l for l in disc.layers if isinstance(l, keras.layers.SpectralNormalization)]:
        kernel = wrapper.layer.kernel.numpy()
        sigma = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0]
        assert 0.8 < sigma < 1.2, (wrapper.layer.name, sigma)  # after 40 steps at a large learning rate
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in disc.layers)


def test_separate_learning_rates_and_clipnorm_reach_the_optimizers():
    gan = training.make_gan(models.dcgan_generator(8, 8), models.dcgan_discriminator(8), d_lr=4e-4, g_lr=1e-4,
                            clipnorm=1.0)
    assert float(gan.d_optimizer.learning_rate.numpy()) == pytest.approx(4e-4)
    assert float(gan.g_optimizer.learning_rate.numpy()) == pytest.approx(1e-4)
    assert gan.d_optimizer.clipnorm == gan.g_optimizer.clipnorm == 1.0


def test_ring_and_grid_and_mode_coverage_exact_answers():
    points, centres = data.ring(4000, modes=8, radius=2.0, std=0.02, seed=0)
    assert points.shape == (4000, 2) and centres.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 2.0, rtol=1e-6)
    every = metrics.mode_coverage(points, centres, 0.02)
    assert every["modes"] == 8 and every["high_quality"] > 0.98 and every["reverse_kl"] < 0.01
    one = metrics.mode_coverage(np.repeat(centres[:1], 100, axis=0), centres, 0.02)
    assert one == {"modes": 1, "high_quality": 1.0, "reverse_kl": pytest.approx(np.log(8))}
    far = metrics.mode_coverage(np.full((50, 2), 10.0), centres, 0.02)
    assert far["modes"] == 0 and far["high_quality"] == 0.0 and np.isnan(far["reverse_kl"])
    half = metrics.mode_coverage(np.concatenate([centres[:2], np.full((2, 2), 10.0)]), centres, 0.02)
    assert half == {"modes": 2, "high_quality": 0.5, "reverse_kl": pytest.approx(np.log(4))}
    g_points, g_centres = data.grid(1000, seed=1)
    assert g_centres.shape == (25, 2) and sorted(set(g_centres[:, 0].tolist())) == [-4.0, -2.0, 0.0, 2.0, 4.0]
    assert metrics.mode_coverage(g_points, g_centres, 0.05)["modes"] == 25
    with pytest.raises(ValueError):
        data.ring(10, std=0)


def test_a_toy_gan_trains_on_the_ring():
    points, centres = data.ring(2000, seed=0)
    keras.utils.set_random_seed(0)
    gan = training.make_gan(models.mlp_generator(2), models.mlp_discriminator(), lr=1e-3, steps_per_execution=50)
    z = np.random.default_rng(0).standard_normal((500, 2)).astype("float32")
    before = metrics.mode_coverage(gan.generate(z).numpy(), centres, 0.02)
    experiments.fit_steps(gan, families.point_dataset(points, 256), 1000, log_every=500, verbose=0)
    after = metrics.mode_coverage(gan.generate(z).numpy(), centres, 0.02)
    assert after["high_quality"] > before["high_quality"] and after["modes"] >= 1, (before, after)


def test_cli_trains_a_wgan_gp_and_resumes(tmp_path):
    out = str(tmp_path / "w")
    args = ["train", "dcgan", "--out", out, "--loss", "wasserstein", "--penalty", "wgan-gp", "--d-steps", "2",
            "--spectral-norm", "--d-lr", "1e-4", "--g-lr", "5e-5", "--clipnorm", "5", "--width", "8",
            "--batch-size", "16"]
    assert cli.main([*args, "--steps", "10"]) == 0
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert (cfg["loss"], cfg["penalty"], cfg["d_steps"], cfg["spectral_norm"], cfg["clipnorm"]) == (
        "wasserstein", "wgan-gp", 2, True, 5.0)
    assert cli.main(["train", "dcgan", "--out", out, "--resume", "--steps", "20"]) == 0
    log = [l.split(",") for l in open(os.path.join(out, "log.csv")).read().split()]
    assert "penalty" in log[0] and len(log) == 3
    model, _ = experiments.build({**cfg, "spectral_norm": False})  # a penalty: the critic has no batch norm
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in model.discriminator.layers)
    with pytest.raises(SystemExit, match="d_steps applies to dcgan, toy, not to vae"):
        cli.main(["train", "vae", "--out", str(tmp_path / "v"), "--d-steps", "2"])


def test_every_loss_and_penalty_trains_under_mirrored_strategy():
    code = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from helpers import data, models, training, variants
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        x = np.random.default_rng(0).integers(0, 256, (128, 28, 28), dtype=np.uint8)
        # every loss and every penalty at least once (each pairing traces a new graph: about 6 s)
        penalties = (None, *variants.PENALTIES)
        pairs = [(loss, penalties[i % len(penalties)]) for i, loss in enumerate(variants.LOSSES)]
        assert {p for _, p in pairs} == set(penalties), pairs
        for loss, penalty in pairs:
            with strategy.scope():
                gan = training.make_gan(models.dcgan_generator(8, 4), models.dcgan_discriminator(4),
                                        cls=variants.VariantGAN, loss=loss, penalty=penalty, d_steps=2)
            h = gan.fit(data.make_dataset(x, batch_size=32), epochs=1, shuffle=False, verbose=0).history
            assert all(np.isfinite(v[-1]) for v in h.values()), (loss, penalty, h)
            assert int(gan.d_optimizer.iterations.numpy()) == 2 * int(gan.g_optimizer.iterations.numpy())
        print("OK")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]


# ------------------------------------------------------------------------- toy runs in the experiment cache
def test_toy_runs_are_cached_scored_by_mode_coverage_and_resume(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_BUDGET", "smoke")
    cfg = experiments.config("toy", data="grid", steps=60, log_every=30, points=2000)
    assert (cfg["kind"], cfg["data"], cfg["z_dim"], cfg["policy"]) == ("toy", "grid", 2, "float32")
    folder = experiments.run_dir(cfg, str(tmp_path))
    # interrupted after 30 steps: the cached run continues from its checkpoint to the same end
    experiments.train({**cfg, "steps": 30}, folder, verbose=0)
    resumed = experiments.run(cfg, cache=str(tmp_path))
    straight = experiments.run(cfg, cache=str(tmp_path / "fresh"))
    assert resumed["status"] == "ok" and not resumed["cached"]
    assert {k: resumed[k] for k in ("modes", "high_quality")} == {k: straight[k] for k in ("modes", "high_quality")}
    assert resumed["wall_s"] > 0 and resumed["images_seen"] == 60 * 256
    samples = np.load(os.path.join(resumed["dir"], "samples.npy"))
    _, centres, std = data.toy("grid", 10)
    assert samples.shape == (2500, 2) and metrics.mode_coverage(samples, centres, std)["modes"] == resumed["modes"]
    snapshots = sorted(os.listdir(os.path.join(resumed["dir"], "samples")))
    assert snapshots == ["samples_000030.npy", "samples_000060.npy"]  # points over training, for the figures
    assert experiments.run(cfg, cache=str(tmp_path))["cached"]


def test_toy_and_gan_settings_are_validated_once_and_pick_their_model():
    with pytest.raises(ValueError, match="data must be one of"):
        experiments.config("toy", data="spiral")
    with pytest.raises(ValueError, match="label_smoothing applies to the cross-entropy"):
        experiments.config("toy", loss="hinge", label_smoothing=0.1)
    with pytest.raises(ValueError, match="train_size applies to"):
        experiments.config("toy", train_size=100)
    with pytest.raises(ValueError, match="unknown setting"):
        experiments.config("toy", trainsize=100)
    # ideas compose: augmentation (chapter 7) on chapter 8's levers and on chapter 9's self-conditioning
    model = experiments.build(experiments.config("dcgan", augment="cutout", clusters=5, d_steps=2, width=8))[0]
    assert type(model) is variants.ConditionalGAN and isinstance(model.discriminator, variants.Augmented)
    assert model.d_steps == 2 and model.discriminator.seed_generator is model.seed_generator
    model = experiments.build(experiments.config("dcgan", augment="cutout", loss="hinge", width=8))[0]
    assert type(model) is variants.VariantGAN and isinstance(model.discriminator, variants.Augmented)
    # a setting at its default is the default: the same run
    plain = experiments.config("dcgan")
    assert experiments.key(experiments.config("dcgan", label_smoothing=0.0)) == experiments.key(plain)
    assert type(experiments.build(experiments.config("dcgan", width=8))[0]) is training.GAN
    model, _ = experiments.build(experiments.config("dcgan", label_smoothing=0.1, width=8))
    assert isinstance(model, variants.VariantGAN) and model.label_smoothing == pytest.approx(0.1)
    model = experiments.build(experiments.config("dcgan", augment="cutout", width=8))[0]
    assert type(model) is training.GAN and isinstance(model.discriminator, variants.Augmented)


def test_a_diverging_toy_run_is_stopped_with_a_message(tmp_path):
    cfg = experiments.config("toy", policy="mixed_float16", lr=1.0, steps=500, log_every=500)
    row = experiments.run(cfg, cache=str(tmp_path))
    assert row["status"] == "diverged" and "No checkpoint had been written yet" in row["error"]


def test_chapter_8s_levers_change_the_self_conditioned_recipe_too(tmp_path):
    """The self-conditioned DCGAN (chapter 9's recipe, which meets the book's bar) with a loss, a penalty,
    d_steps, spectral norm: each reaches the model it trains, on (images, clusters) batches."""
    cfg = experiments.config("dcgan", clusters=3, width=8, steps=4, log_every=2, batch_size=16, train_size=60,
                             loss="wasserstein", penalty="wgan-gp", d_steps=2)
    model, _ = experiments.build(cfg)
    assert isinstance(model, variants.ConditionalGAN) and model.num_classes == 3 and model.d_steps == 2
    assert not any("batch_normalization" in layer.name for layer in model.discriminator.layers)  # a penalty: no batch norm
    row = experiments.run(cfg, cache=str(tmp_path))
    log = np.genfromtxt(f"{row['dir']}/log.csv", delimiter=",", names=True)
    assert np.all(np.isfinite(log["penalty"])) and np.all(log["penalty"] > 0) and row["status"] == "ok"
    assert row["images_seen"] == 4 * 16 * 2
    sn, _ = experiments.build(experiments.config("dcgan", clusters=3, width=8, spectral_norm=True))
    assert any(isinstance(layer, keras.layers.SpectralNormalization) for layer in sn.discriminator.layers)
    x = np.zeros((6, 28, 28, 1), np.float32)
    logits = model.discriminate(x, np.arange(6) % 3)
    assert logits.shape == (6,) and model.generate(np.zeros((6, 64), np.float32), np.arange(6) % 3).shape == (6, 28, 28, 1)
