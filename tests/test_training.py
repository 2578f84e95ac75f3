import csv
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import __main__ as cli
from helpers import data, models, training


@pytest.fixture(scope="module")
def mnist():
    return data.load_mnist(source="offline", verbose=False)


def test_article_generator_as_printed_fails_and_the_fix_builds():
    with pytest.raises(ValueError, match=r"target_shape=\(28, 28, 1\)"):
        models.article_generator_as_printed(100)
    g = models.article_generator(100)
    assert g.output_shape == (None, 28, 28, 1)
    out = g(np.random.default_rng(0).standard_normal((4, 100)).astype("float32")).numpy()
    assert out.min() >= -1 and out.max() <= 1
    d = models.article_discriminator_as_printed()
    assert d.output_shape == (None, 1)
    assert models.article_discriminator().output_shape == (None, 1)


def test_dcgan_shapes():
    g, d = models.dcgan_generator(64, 16), models.dcgan_discriminator(16)
    assert g.output_shape == (None, 28, 28, 1) and d.output_shape == (None, 1)


def _gan(width=16, **compile_kw):
    return training.make_gan(models.dcgan_generator(32, width), models.dcgan_discriminator(width), seed=0,
                             **compile_kw)


def test_gan_trains_both_players_and_moves_toward_the_data(mnist):
    keras.utils.set_random_seed(0)
    (x, _), _ = mnist
    ds = data.make_dataset(x, batch_size=64).repeat()
    gan = _gan()
    z = np.random.default_rng(0).standard_normal((256, 32)).astype("float32")
    real_mean = x[:2000].astype(np.float32).mean(0) / 127.5 - 1
    before_g = [w.numpy().copy() for w in gan.generator.trainable_weights]
    dist_before = np.abs(gan.generate(z).numpy()[..., 0].mean(0) - real_mean).mean()
    hist = gan.fit(ds, steps_per_epoch=150, epochs=2, shuffle=False, verbose=0).history
    dist_after = np.abs(gan.generate(z).numpy()[..., 0].mean(0) - real_mean).mean()
    assert set(hist) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(np.isfinite(v[-1]) for v in hist.values())
    assert hist["d_loss"][-1] < np.log(4)  # the discriminator beats chance (ln 4 is the loss at D = 1/2)
    assert hist["d_real"][-1] > hist["d_fake"][-1]
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before_g, gan.generator.trainable_weights))
    assert dist_after < 0.5 * dist_before  # the mean sample has moved toward the mean digit (0.74 -> 0.15)


def test_gan_compile_rejects_bad_options():
    with pytest.raises(ValueError, match="g_loss"):
        _gan(g_loss="wasserstein")
    with pytest.raises(ValueError, match="label_smoothing"):
        _gan(label_smoothing=0.7)


def test_saturating_loss_and_label_smoothing_run(mnist):
    (x, _), _ = mnist
    gan = _gan(g_loss="saturating", label_smoothing=0.1)
    hist = gan.fit(data.make_dataset(x[:256], batch_size=64), epochs=1, shuffle=False, verbose=0).history
    assert hist["g_loss"][-1] < 0  # log(1 - D(G(z))) is negative


def test_nan_guard_stops_before_anything_is_saved(tmp_path):
    bad = tf.data.Dataset.from_tensor_slices(np.full((64, 28, 28, 1), np.nan, np.float32)).batch(16)
    gan = _gan()
    ckpt = str(tmp_path / "ckpt")
    with pytest.raises(training.TrainingDiverged, match="within the first 1 steps"):
        gan.fit(bad, epochs=2, shuffle=False, verbose=0, callbacks=[training.NaNGuard(ckpt), training.Checkpoint(ckpt)])
    assert not os.path.exists(ckpt)
    # several steps per execution (as the command line runs): caught at the end of the first block
    gan = _gan(steps_per_execution=4)
    with pytest.raises(training.TrainingDiverged, match="within the first 4 steps"):
        gan.fit(bad, epochs=2, shuffle=False, verbose=0, callbacks=[training.NaNGuard(ckpt), training.Checkpoint(ckpt)])
    assert not os.path.exists(ckpt)


def _read_log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.mark.parametrize("kind, losses", [("dcgan", {"d_loss", "g_loss"}), ("vae", {"neg_elbo", "val_neg_elbo"})])
def test_cli_trains_resumes_exactly_and_samples(tmp_path, monkeypatch, kind, losses):
    """A run stopped after 20 steps and resumed to 40 ends with the same weights as 40 steps straight."""
    monkeypatch.setitem(cli.RECIPES[kind], "width", 8)
    common = ["--batch-size", "32", "--log-every", "10", "--seed", "3"]
    straight, resumed = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli.main(["train", kind, "--out", straight, "--steps", "40", *common]) == 0
    assert cli.main(["train", kind, "--out", resumed, "--steps", "20", *common]) == 0
    with pytest.raises(SystemExit, match="--resume"):
        cli.main(["train", kind, "--out", resumed, "--steps", "40", *common])
    assert cli.main(["train", kind, "--out", resumed, "--steps", "40", "--resume", *common]) == 0

    a = keras.models.load_model(os.path.join(straight, "generator.keras"))
    b = keras.models.load_model(os.path.join(resumed, "generator.keras"))
    for wa, wb in zip(a.weights, b.weights):
        np.testing.assert_allclose(wa.numpy(), wb.numpy(), rtol=1e-5, atol=1e-6)
    log = _read_log(os.path.join(resumed, "log.csv"))
    assert [int(r["step"]) for r in log] == [10, 20, 30, 40]
    assert losses | {"images_per_s"} <= set(log[0])
    assert len(os.listdir(os.path.join(resumed, "samples"))) == 4

    npy = str(tmp_path / "s.npy")
    assert cli.main(["sample", resumed, "--n", "1500", "--out", npy]) == 0
    s = np.load(npy)
    assert s.shape == (1500, 28, 28) and s.dtype == np.uint8 and s.max() > s.min()
    with pytest.raises(SystemExit, match="train first"):
        cli.main(["sample", str(tmp_path / "nothing"), "--out", npy])


def test_device_choices():
    from helpers.runtime import Device

    assert training.device_choices(Device("cpu", "x", False)) == {"policy": "float32", "jit_compile": False}
    assert training.device_choices(Device("cpu", "x", True))["policy"] == "mixed_bfloat16"
    assert training.device_choices(Device("gpu", "x", True)) == {"policy": "mixed_bfloat16", "jit_compile": True}


def test_gan_runs_under_mirrored_strategy_on_two_logical_cpus():
    code = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from helpers import data, models, training
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        with strategy.scope():
            gan = training.make_gan(models.dcgan_generator(16, 8), models.dcgan_discriminator(8))
        x = np.random.default_rng(0).integers(0, 256, (128, 28, 28), dtype=np.uint8)
        before = gan.generator.trainable_weights[0].numpy().copy()
        h = gan.fit(data.make_dataset(x, batch_size=32), epochs=1, shuffle=False, verbose=0).history
        assert strategy.num_replicas_in_sync == 2
        assert all(np.isfinite(v[-1]) for v in h.values()), h
        assert not np.allclose(before, gan.generator.trainable_weights[0].numpy())
        with strategy.scope():
            vae = training.make_vae(models.vae_encoder(4, 8), models.vae_decoder(4, 8))
        h = vae.fit(data.make_dataset(x, batch_size=32, scale="unit"), epochs=1, shuffle=False, verbose=0).history
        assert np.isfinite(h["neg_elbo"][-1]), h
        print("OK", strategy.num_replicas_in_sync)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK 2" in r.stdout, r.stderr[-3000:]
