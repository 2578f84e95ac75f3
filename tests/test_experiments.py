"""Differentiable augmentation, the cached experiment grid, and the copy check."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from helpers import data, metrics, models, training, variants
from lab import cli, experiments, runs


# ------------------------------------------------------------------------------------------ augmentation
def test_translation_shifts_whole_images_and_fills_the_border():
    import keras

    x = tf.random.uniform((64, 28, 28, 1), 0.1, 1.0)
    out = variants.translate(x, 4, -1.0, keras.random.SeedGenerator(0)).numpy()
    x = x.numpy()
    assert out.shape == x.shape
    moved = 0
    for a, b in zip(x, out):
        found = False
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                shifted = np.full_like(a, -1.0)
                src = a[max(0, -dy):28 - max(0, dy), max(0, -dx):28 - max(0, dx)]
                shifted[max(0, dy):max(0, dy) + src.shape[0], max(0, dx):max(0, dx) + src.shape[1]] = src
                if np.array_equal(shifted, b):
                    found, moved = True, moved + (dy != 0 or dx != 0)
        assert found, "every output is its input shifted by at most 4 pixels, border filled"
    assert moved > 50  # most images actually move (1 in 81 stays put)


def test_cutout_blanks_a_square_of_half_the_side():
    import keras

    x = tf.ones((32, 28, 28, 1))
    out = variants.cutout(x, 14, -1.0, keras.random.SeedGenerator(1)).numpy()[..., 0]
    for im in out:
        rows, cols = np.nonzero(im == -1.0)
        assert 0 < len(rows) <= 14 * 14
        assert rows.max() - rows.min() <= 13 and cols.max() - cols.min() <= 13
        assert len(rows) == (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)  # a rectangle
    assert ((out == -1.0).sum(axis=(1, 2)) == 14 * 14).mean() > 0.1  # about 29% lie fully inside (centre in 7..20)


def test_augmentation_lets_gradients_through_and_off_is_identity():
    import keras

    x = tf.Variable(tf.random.uniform((8, 28, 28, 1)))
    with tf.GradientTape() as tape:
        y = variants.diff_augment(x, ("translation", "cutout"), 0.0, keras.random.SeedGenerator(0))
        loss = tf.reduce_sum(y * y)
    grad = tape.gradient(loss, x).numpy()
    assert np.isfinite(grad).all() and (grad != 0).mean() > 0.3
    # every output pixel is one input pixel or the fill (0): d/dx sum(y^2) sends 2y back to its source
    np.testing.assert_allclose(grad.sum(), 2 * y.numpy().sum(), rtol=1e-4)
    assert (grad == 0).mean() > 0.05  # pixels cut away or shifted out get no gradient
    assert variants.diff_augment(x, (), 0.0, keras.random.SeedGenerator(0)) is x
    assert variants.parse_augment("translation, cutout") == ("translation", "cutout")
    assert variants.parse_augment(None) == variants.parse_augment("") == ()
    with pytest.raises(ValueError, match="not mirror-symmetric"):
        variants.parse_augment("translation,flip")


def test_gan_with_augmentation_trains_and_sees_augmented_images():
    """Chapter 7's Augmented discriminator augments only while it trains, and the plain GAN trains with it."""
    x = data.load_mnist(source="offline", verbose=False)[0][0][:256]
    critic = variants.Augmented(models.dcgan_discriminator(8), "translation,cutout")
    gan = training.make_gan(models.dcgan_generator(8, 8), critic, jit_compile=False)
    critic.seed_generator = gan.seed_generator
    assert critic.augment == ("translation", "cutout")
    images = data.scaled(x[:8], "tanh")
    np.testing.assert_array_equal(critic(images), critic.discriminator(images))  # inference: no augmentation
    assert not np.allclose(critic(images, training=True), critic.discriminator(images, training=True))
    h = gan.fit(data.make_dataset(x, batch_size=64), epochs=2, shuffle=False, verbose=0).history
    assert all(np.isfinite(v[-1]) for v in h.values())
    with pytest.raises(ValueError, match="unknown augmentation"):
        variants.Augmented(models.dcgan_discriminator(8), augment="mixup")


# ------------------------------------------------------------------------------------------ copy check
def test_copy_distances_tell_copies_from_new_digits():
    (xtr, _), (xte, _) = data.load_mnist(source="offline", verbose=False)
    train, fresh = xtr[:1000], xte[:300]
    copies_s, held = metrics.copy_distances(train[:300], train, fresh)
    assert copies_s.shape == (300,) and held.shape == (300,)
    np.testing.assert_allclose(copies_s, 0.0, atol=1e-3)  # exact copies: 0 (up to float round-off)
    new_s, held2 = metrics.copy_distances(xte[300:600], train, fresh)
    assert held.min() > 0
    assert 0.8 < np.median(new_s) / np.median(held2) < 1.25  # other held-out digits look like held-out digits
    pix_s, pix_h = metrics.copy_distances(train[:10], train, fresh, space="pixels")
    assert pix_s.max() < 1e-6 and pix_h.min() > 1.0
    with pytest.raises(ValueError, match="space"):
        metrics.copy_distances(train[:10], train, fresh, space="inception")


# ------------------------------------------------------------------------------------------- the cache
SMALL = {"steps": 20, "batch_size": 32, "log_every": 10, "width": 8}


def test_config_validates_and_is_json_stable():
    cfg = experiments.config("dcgan", train_size=500, corrupt=("noise", 0.1), **SMALL)
    assert cfg["corrupt"] == ["noise", 0.1] and cfg["train_size"] == 500 and cfg["augment"] == ""
    assert experiments.key(cfg) == experiments.key(json.loads(json.dumps(cfg)))
    assert experiments.key(cfg) != experiments.key({**cfg, "seed": 1})
    with pytest.raises(ValueError, match="unknown setting"):
        experiments.config("dcgan", train_sise=500)
    with pytest.raises(ValueError, match="unknown model"):
        experiments.config("gpt")
    with pytest.raises(ValueError, match="augment applies to dcgan, not to vae"):
        experiments.config("vae", augment="translation")


def test_grid_trains_once_caches_and_retrains_only_what_changed(tmp_path, monkeypatch):
    calls = []
    real_train = experiments.train

    def counting_train(cfg, out, **kw):
        calls.append((cfg["kind"], cfg.get("train_size"), cfg["seed"]))
        return real_train(cfg, out, **kw)

    monkeypatch.setattr(runs, "train", counting_train)  # what experiments.run calls
    conditions = {"n=200": {"kind": "dcgan", "train_size": 200, **SMALL},
                  "vae n=200": {"kind": "vae", "train_size": 200, **SMALL}}
    table = experiments.grid(conditions, seeds=(0, 1), cache=str(tmp_path))
    assert len(calls) == 4 and len(table) == 4
    assert list(table["condition"]) == ["n=200", "n=200", "vae n=200", "vae n=200"]
    assert (table["images"] == 200).all() and (table["images_seen"] == 640).all()
    assert table["fid"].notna().all() and (table["status"] == "ok").all()
    vae = table[table["kind"] == "vae"]
    assert vae["neg_elbo_train"].notna().all() and vae["neg_elbo_test"].notna().all()
    samples = np.load(os.path.join(table["dir"][0], "samples.npy"))
    assert samples.shape == (1000, 28, 28) and samples.dtype == np.uint8

    again = experiments.grid(conditions, seeds=(0, 1), cache=str(tmp_path))
    assert len(calls) == 4 and again["cached"].all()  # the second call trains nothing
    np.testing.assert_array_equal(again["fid"], table["fid"])

    changed = {"n=200": {"kind": "dcgan", "train_size": 200, **SMALL}, "n=300": {"kind": "dcgan", "train_size": 300, **SMALL}}
    experiments.grid(changed, seeds=(0, 1), cache=str(tmp_path))
    assert calls[4:] == [("dcgan", 300, 0), ("dcgan", 300, 1)]  # only the new setting trains

    summary = experiments.summarize(table, ["fid", "copy_ratio"])
    assert list(summary.index) == ["n=200", "vae n=200"] and (summary["runs"] == 2).all()
    pair = table[table["condition"] == "n=200"]["fid"]
    assert summary.loc["n=200", "fid_se"] == pytest.approx(pair.std(ddof=1) / np.sqrt(2))
    assert "±" in experiments.summarize(table, ["fid"], text=True).loc["n=200", "fid"]


def test_an_interrupted_run_resumes_from_its_checkpoint(tmp_path, monkeypatch):
    """A run killed after its first checkpoint continues from there and ends like an uninterrupted one."""
    cfg = experiments.config("dcgan", train_size=200, seed=2, **SMALL)
    folder = os.path.join(str(tmp_path), experiments.key(cfg))
    half = {**cfg, "steps": 10}
    experiments.train(half, folder, verbose=0)  # the first interval's checkpoint is now on disk
    import tensorflow as tf
    assert tf.train.latest_checkpoint(os.path.join(folder, "checkpoint")).endswith("ckpt-10")
    resumed = experiments.run(cfg, cache=str(tmp_path))
    straight = experiments.run(cfg, cache=str(tmp_path / "fresh"))
    assert not resumed["cached"] and resumed["status"] == "ok"
    assert resumed["fid"] == pytest.approx(straight["fid"], rel=1e-3)


def test_diverged_run_is_a_row_not_a_crash(tmp_path):
    cfg = experiments.config("dcgan", train_size=200, lr=1e9, **SMALL)
    row = experiments.run(cfg, cache=str(tmp_path))
    assert row["status"] == "diverged" and "diverged" in row["error"]
    assert experiments.run(cfg, cache=str(tmp_path))["cached"]


def test_cli_trains_on_a_subset_with_augmentation(tmp_path):
    out = str(tmp_path / "r")
    assert cli.main(["train", "dcgan", "--out", out, "--steps", "20", "--batch-size", "32", "--log-every", "10",
                     "--width", "8", "--lr", "5e-4", "--train-size", "100", "--augment", "translation,cutout"]) == 0
    cfg = json.load(open(os.path.join(out, "config.json")))
    assert cfg["train_size"] == 100 and cfg["augment"] == "translation,cutout" and cfg["width"] == 8
    assert cfg["lr"] == 5e-4
    # the same settings through the library give the same configuration: a grid's run, reproduced
    assert cfg == experiments.config("dcgan", steps=20, batch_size=32, log_every=10, width=8, lr=5e-4,
                                     train_size=100, augment="translation,cutout")
    assert os.path.exists(os.path.join(out, "generator.keras"))
    with pytest.raises(SystemExit, match="augment"):
        cli.main(["train", "vae", "--out", str(tmp_path / "v"), "--augment", "translation"])
    with pytest.raises(SystemExit, match="only 400"):
        cli.main(["train", "dcgan", "--out", str(tmp_path / "w"), "--train-size", "5000"])


@pytest.mark.skipif(not os.path.isdir("/usr/share/datasets/fashion-mnist") and not os.environ.get("GENAI_FASHION_MNIST_DIR"),
                    reason="Fashion-MNIST offline: apt-get install dataset-fashion-mnist")
def test_cli_gives_a_run_of_chapter_7s_compute_x_data_grid_its_stored_configuration(tmp_path):
    """`python -m lab train dcgan --data fashion --train-size N --steps S --clusters 50` is the grid's run:
    the same configuration, so the same key as the stored one (trained here for 2 of its steps only)."""
    out = str(tmp_path / "c7")
    assert cli.main(["train", "dcgan", "--out", out, "--data", "fashion", "--train-size", "600", "--steps", "2",
                     "--log-every", "1", "--clusters", "50", "--policy", "float32"]) == 0
    cfg = experiments.run_config(out)
    grid_run = experiments.data_config("dcgan", 600, experiments.DATA_STEPS["dcgan"][-1])
    assert {**cfg, "steps": grid_run["steps"], "log_every": grid_run["log_every"]} == grid_run


def test_saving_sample_grids_leaves_the_notebook_backend_alone(tmp_path):
    """A grid run in the notebook's own process saves PNGs; the notebook's figures must still show."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import matplotlib
        matplotlib.use("svg")  # stands for the notebook's inline backend: anything but Agg
        from lab import experiments
        cfg = experiments.config("dcgan", train_size=100, steps=20, batch_size=32, log_every=10, width=8)
        experiments.train(cfg, {str(tmp_path / 'run')!r}, verbose=0)
        import os
        files = sorted(os.listdir({str(tmp_path / 'run' / 'samples')!r}))
        assert files == ["samples_000010.npy", "samples_000010.png", "samples_000020.npy", "samples_000020.png"], files
        print("BACKEND", matplotlib.get_backend())
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "BACKEND svg" in r.stdout


def test_the_log_watches_a_discriminator_memorise_a_small_training_set(tmp_path):
    """The log's overfitting watch: on 64 images a discriminator soon scores its training images above
    held-out ones (val_d_gap > 0); on 4,000 it cannot, and the gap stays near zero."""
    import pandas as pd

    gaps = {}
    for n in (64, 4000):
        cfg = experiments.config("dcgan", width=8, train_size=n, steps=500, log_every=100, batch_size=64)
        experiments.train(cfg, str(tmp_path / str(n)), verbose=0)
        log = pd.read_csv(tmp_path / str(n) / "log.csv")
        np.testing.assert_allclose(log["val_d_gap"], log["val_d_train"] - log["val_d_held_out"], atol=1e-6)
        assert log[["val_d_train", "val_d_held_out"]].stack().between(0, 1).all()
        gaps[n] = log.loc[log["step"] >= 300, "val_d_gap"].mean()
    assert gaps[64] > 0.03 and gaps[64] > gaps[4000] + 0.03, gaps


def test_a_run_logged_before_the_watch_existed_resumes_with_its_own_columns(tmp_path):
    """Extending a run whose log.csv has no val_d_* columns (an older version's) keeps that header."""
    import pandas as pd

    cfg = experiments.config("dcgan", width=8, steps=10, log_every=5)
    experiments.train(cfg, str(tmp_path), verbose=0)
    path = tmp_path / "log.csv"
    old = pd.read_csv(path).drop(columns=["val_d_gap", "val_d_held_out", "val_d_train"])
    old.to_csv(path, index=False)
    experiments.train({**cfg, "steps": 20}, str(tmp_path), resume=True, verbose=0)
    log = pd.read_csv(path)
    assert list(log.columns) == list(old.columns) and log["step"].tolist() == [5, 10, 15, 20]
    assert log.notna().all().all()


def test_a_grid_with_worker_processes_matches_one_process_and_keeps_the_notebook_quiet(tmp_path):
    """``grid(workers=2)`` trains in spawned processes: the same rows as in one process, and nothing from the
    workers' own TensorFlow start-up on the notebook's stderr (the workers inherit it)."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(f"""
        import os, json
        from lab import experiments
        log = os.open({str(tmp_path / 'stderr.txt')!r}, os.O_WRONLY | os.O_CREAT)
        os.dup2(log, 2)  # what the workers inherit as their stderr from here on
        conditions = {{"ring": {{"kind": "toy", "data": "ring", "steps": 20, "log_every": 10}}}}
        rows = []
        for workers, cache in ((2, "a"), (1, "b")):
            table = experiments.grid(conditions, seeds=(0, 1), workers=workers, progress=False,
                                     cache=os.path.join({str(tmp_path)!r}, cache))
            rows.append(table[["seed", "modes", "high_quality"]].to_dict("records"))
        print(json.dumps(rows))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    in_workers, in_one = json.loads(out.stdout.strip().splitlines()[-1])
    assert in_workers == in_one
    noise = (tmp_path / "stderr.txt").read_text()
    assert "InitializeLog" not in noise and "cudart_stub" not in noise, noise[:500]
