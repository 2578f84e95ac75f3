"""The conditional models of the applications chapter: label handling, the conditional GAN and VAE,
sampling a chosen class from the command line, label noise and the train-on-synthetic score."""
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from helpers import data, metrics, models, training, variants
from lab import cli, experiments


def test_check_labels_accepts_integers_and_one_hot_and_says_what_is_wrong():
    y = np.array([3, 0, 9])
    np.testing.assert_array_equal(data.check_labels(np.eye(10)[y]), y)
    assert data.check_labels(y.astype(np.int64)).dtype == np.int32
    with pytest.raises(ValueError, match="label 10 is out of range: the classes are 0 to 9"):
        data.check_labels([1, 10])
    with pytest.raises(ValueError, match="label -1 is out of range"):
        data.check_labels([-1])
    with pytest.raises(ValueError, match="exactly one 1 per row"):
        data.check_labels(np.ones((2, 10)))
    with pytest.raises(ValueError, match="whole numbers"):
        data.check_labels([0.5, 1.0])
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        data.check_labels([1, 2], n=3)


def test_noisy_labels_replace_the_asked_share():
    y = np.arange(20_000) % 10
    assert np.array_equal(data.noisy_labels(y, 0.0), y)
    for fraction in (0.2, 0.5, 1.0):
        wrong = np.mean(data.noisy_labels(y, fraction, seed=1) != y)
        assert wrong == pytest.approx(fraction * 0.9, abs=0.015)  # a replaced label is right 1 time in 10
    with pytest.raises(ValueError, match="between 0 and 1"):
        data.noisy_labels(y, 1.5)


def test_conditional_gan_generates_per_label_and_rejects_bad_labels():
    keras.utils.set_random_seed(0)
    gan = training.make_gan(models.cdcgan_generator(8, 8), models.cdcgan_discriminator(8), cls=variants.ConditionalGAN)
    z = np.random.default_rng(0).standard_normal((4, 8)).astype("float32")
    y = np.array([0, 3, 3, 9])
    images = gan.generate(z, y).numpy()
    assert images.shape == (4, 28, 28, 1) and np.abs(images).max() <= 1
    np.testing.assert_allclose(gan.generate(z, np.eye(10)[y]).numpy(), images, atol=1e-6)  # one-hot = integers
    assert not np.allclose(gan.generate(z, np.array([1, 3, 3, 9])).numpy()[0], images[0])  # the label matters
    assert gan.discriminate(gan.generate(z, y), y).shape == (4,)
    with pytest.raises(ValueError, match="out of range"):
        gan.generate(z, np.array([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="needs a class label"):
        gan.generate(z)
    with pytest.raises(ValueError, match="4 images but 3 labels"):
        gan.generate(z, np.array([0, 1, 2]))
    plain = training.make_gan(models.dcgan_generator(8, 8), models.dcgan_discriminator(8))
    with pytest.raises(TypeError):  # chapter 3's GAN takes no labels
        plain.generate(z, y)


def test_conditional_vae_encodes_and_decodes_with_labels():
    vae = training.make_vae(models.cvae_encoder(4, 8), models.cvae_decoder(4, 8), cls=variants.ConditionalVAE)
    x = np.random.default_rng(0).random((5, 28, 28, 1)).astype("float32")
    y = np.array([0, 1, 2, 3, 4])
    mean, log_var = vae.encode(x, labels=y)
    assert mean.shape == log_var.shape == (5, 4)
    out = vae.generate(mean, y).numpy()
    assert out.shape == (5, 28, 28, 1) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match="needs a class label"):
        vae.encode(x)


@pytest.mark.parametrize("kind", ["cgan", "cvae"])
def test_conditional_runs_learn_the_class_and_are_scored_per_class(tmp_path, kind, monkeypatch):
    """A short run on 1,000 digits: the table row has the agreement with the class asked for (above the
    0.1 of chance: the label already steers the samples) and the labels are saved beside the samples."""
    cfg = experiments.config(kind, steps=300, batch_size=64, log_every=100, width=16, train_size=1000)
    row = experiments.run(cfg, cache=str(tmp_path))
    assert row["status"] == "ok" and 0.0 <= row["agreement"] <= 1.0
    assert row["agreement"] > 0.3, row["agreement"]
    assert {f"agreement_{c}" for c in range(10)} <= set(row)
    labels = np.load(os.path.join(row["dir"], "samples.labels.npy"))
    np.testing.assert_array_equal(labels, np.arange(1000) % 10)
    assert len(os.listdir(os.path.join(row["dir"], "samples"))) >= 2


def test_label_noise_is_a_setting_of_the_conditional_models_only():
    cfg = experiments.config("cgan", label_noise=0.2, train_size=500)
    x, y, _ = experiments.training_data(cfg)
    _, y_clean, _ = experiments.training_data({**cfg, "label_noise": 0.0})
    assert 0.1 < np.mean(y != y_clean) < 0.26 and len(x) == 500
    assert experiments.config("cgan")["label_noise"] == 0.0
    with pytest.raises(ValueError, match="label_noise applies to cgan, cvae, not to dcgan"):
        experiments.config("dcgan", label_noise=0.2)


def test_cli_sample_label(tmp_path, capsys):
    out = str(tmp_path / "c")
    assert cli.main(["train", "cgan", "--out", out, "--steps", "10", "--batch-size", "16", "--width", "8"]) == 0
    npy = str(tmp_path / "three.npy")
    assert cli.main(["sample", out, "--n", "30", "--label", "3", "--out", npy]) == 0
    assert np.load(npy).shape == (30, 28, 28)
    np.testing.assert_array_equal(np.load(str(tmp_path / "three.labels.npy")), np.full(30, 3))
    with pytest.raises(SystemExit, match="out of range"):
        cli.main(["sample", out, "--n", "5", "--label", "10", "--out", npy])
    plain = str(tmp_path / "d")
    assert cli.main(["train", "dcgan", "--out", plain, "--steps", "10", "--batch-size", "16", "--width", "8"]) == 0
    with pytest.raises(SystemExit, match="not conditional"):
        cli.main(["sample", plain, "--n", "5", "--label", "3", "--out", npy])


def test_train_on_synthetic_test_on_real_on_a_tiny_set():
    (x, y), (x_test, y_test) = data.load_mnist(verbose=False)
    xs, ys = data.subset(x, y, 500, seed=0)
    real = metrics.classification_accuracy_score(xs, ys, x_test, y_test, steps=150)
    shuffled = metrics.classification_accuracy_score(xs, np.random.default_rng(0).permutation(ys), x_test, y_test,
                                                     steps=150)
    assert real > 0.7, real  # 500 real digits teach the small classifier most of MNIST
    assert shuffled < 0.3, shuffled  # labels that carry no information teach nothing
    with pytest.raises(ValueError, match="labels"):
        metrics.classification_accuracy_score(xs, ys[:10], x_test, y_test)


def test_conditional_models_train_under_mirrored_strategy():
    code = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from helpers import data, models, training, variants
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        rng = np.random.default_rng(0)
        x, y = rng.integers(0, 256, (128, 28, 28), dtype=np.uint8), rng.integers(0, 10, 128)
        with strategy.scope():
            gan = training.make_gan(models.cdcgan_generator(8, 4), models.cdcgan_discriminator(4),
                                    cls=variants.ConditionalGAN)
            vae = training.make_vae(models.cvae_encoder(4, 4), models.cvae_decoder(4, 4), cls=variants.ConditionalVAE)
        for model, scale in ((gan, "tanh"), (vae, "unit")):
            h = model.fit(data.make_dataset(x, y, batch_size=32, scale=scale), epochs=1, verbose=0).history
            assert all(np.isfinite(v[-1]) for v in h.values()), h
        print("OK")
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and "OK" in r.stdout, r.stderr[-3000:]
