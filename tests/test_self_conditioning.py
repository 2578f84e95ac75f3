"""The self-conditioned DCGAN (chapter 9, `train dcgan --clusters 50`): k-means clusters of the training
pixels play the labels of a conditional DCGAN, and its sampler takes noise only."""
import numpy as np
import pytest

from helpers import data, models, variants
from lab import experiments


def test_clusters_are_seeded_and_group_similar_digits():
    (x, y), _ = data.load_mnist(verbose=False)
    a = data.clusters(x[:1000], 20, seed=0)
    np.testing.assert_array_equal(a, data.clusters(x[:1000], 20, seed=0))
    assert a.dtype == np.int32 and set(a) == set(range(20))
    purity = sum(np.bincount(y[:1000][a == c]).max() for c in range(20)) / 1000
    assert purity > 0.5  # pixels alone group digits well above the 0.1 of chance
    with pytest.raises(ValueError, match="between 2"):
        data.clusters(x[:10], 20)


def test_a_held_out_image_takes_the_cluster_whose_mean_is_nearest():
    (x, _), (xt, _) = data.load_mnist(verbose=False)
    a = data.clusters(x[:1000], 20, seed=0)
    own = data.nearest_cluster(x[:1000], x[:1000], a)  # k-means' own rule: its images sit in their clusters
    assert own.dtype == np.int32 and np.mean(own == a) > 0.99
    flat = x[:1000].reshape(1000, -1) / 255.0
    means = np.stack([flat[a == c].mean(0) for c in range(20)])
    d = ((xt[:50].reshape(50, 1, -1) / 255.0 - means[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(data.nearest_cluster(xt[:50], x[:1000], a), d.argmin(1))


def test_cluster_choice_follows_the_shares_and_passes_the_noise_through():
    layer = models.ClusterChoice([0.5, 0.3, 0.2])
    noise = np.random.default_rng(0).standard_normal((20_000, 5)).astype("float32")
    z, c = layer(noise)
    np.testing.assert_allclose(np.bincount(np.asarray(c), minlength=3) / 20_000, [0.5, 0.3, 0.2], atol=0.01)
    np.testing.assert_array_equal(np.asarray(z), noise[:, 1:])


def test_config_checks_clusters_and_the_recipe_is_the_plain_dcgan():
    assert experiments.config("dcgan")["clusters"] == 0  # `train dcgan` trains chapter 3's plain DCGAN
    with pytest.raises(ValueError, match="clusters is 0 or at least 2"):
        experiments.config("dcgan", clusters=1)
    with pytest.raises(ValueError, match="clusters applies to dcgan, not to cgan"):  # a cgan has its labels
        experiments.config("cgan", clusters=10)
    cfg = experiments.config("dcgan", clusters=10, augment="translation", d_steps=2)  # ideas compose
    assert cfg["augment"] == "translation" and cfg["d_steps"] == 2


def test_the_watch_sees_a_self_conditioned_discriminator_memorise_and_augmentation_join_it(tmp_path):
    """A self-conditioned run logs its discriminator's gap too (each image judged with its cluster): on 64
    digits it soon scores its training digits above held-out ones; with DiffAugment the run trains the
    augmented conditional GAN and logs the same columns."""
    import pandas as pd
    logs = {}
    for augment, steps in (("", 300), ("translation,cutout", 20)):
        cfg = experiments.config("dcgan", width=8, clusters=4, train_size=64, steps=steps, log_every=min(steps, 100),
                                 batch_size=64, augment=augment)
        model, _, _ = experiments.train(cfg, str(tmp_path / str(bool(augment))), verbose=0)
        assert type(model) is variants.ConditionalGAN
        assert isinstance(model.discriminator, variants.Augmented) == bool(augment)
        logs[augment] = log = pd.read_csv(tmp_path / str(bool(augment)) / "log.csv")
        np.testing.assert_allclose(log["val_d_gap"], log["val_d_train"] - log["val_d_held_out"], atol=1e-6)
    assert logs[""].loc[logs[""]["step"] >= 200, "val_d_gap"].mean() > 0.03, logs[""]


def test_self_conditioned_run_samples_from_noise_alone_and_resumes(tmp_path, assert_same_state):
    cfg = experiments.config("dcgan", steps=20, log_every=10, width=8, batch_size=32, train_size=200, clusters=8)
    row = experiments.run(cfg, cache=str(tmp_path))
    sampler = experiments.load_sampler(row["dir"])
    assert sampler.input_shape[-1] == cfg["z_dim"] + 1  # one noise number picks the cluster
    images, labels = experiments.sample(sampler, 50, cfg)
    assert images.shape == (50, 28, 28) and images.dtype == np.uint8 and labels is None
    assert np.isfinite(row["fid"]) and row["images"] == 200
    # half the steps, then the rest, equals the straight run: the clusters are recomputed identically
    half = dict(cfg, steps=10)
    model_a, _, _ = experiments.train(half, str(tmp_path / "a"), verbose=0)
    model_a, _, _ = experiments.train(cfg, str(tmp_path / "a"), resume=True, verbose=0)
    model_b, _, _ = experiments.train(cfg, str(tmp_path / "b"), verbose=0)
    assert_same_state(model_a.generator.weights, model_b.generator.weights)


def test_a_weight_average_run_trains_alike_samples_the_average_and_resumes(tmp_path, assert_same_state):
    """``ema`` (chapter 7): the training is the run's without it (the same log), the saved sampler holds the
    generator's moving average (decay 0: the last weights themselves), and a resumed run ends with a
    straight run's average."""
    import pandas as pd

    base = dict(steps=8, log_every=4, width=8, batch_size=32, train_size=200, clusters=4)
    assert "ema" not in experiments.config("dcgan", **base)  # unset: stored runs keep their keys
    models_ = {}
    for name, ema in (("plain", None), ("zero", 0.0), ("average", 0.9)):
        cfg = experiments.config("dcgan", **base, ema=ema)
        models_[name] = experiments.train(cfg, str(tmp_path / name), verbose=0)[0]
        log = pd.read_csv(tmp_path / name / "log.csv")[["step", "d_loss", "g_loss"]]
        pd.testing.assert_frame_equal(log, pd.read_csv(tmp_path / "plain" / "log.csv")[["step", "d_loss", "g_loss"]])
    raw, averaged = models_["plain"].generator.weights, models_["average"].generator.weights
    assert_same_state(models_["zero"].generator.weights, raw)
    assert not all(np.allclose(a, b) for a, b in zip(averaged, raw))  # the average is not the last weights
    saved = experiments.load_sampler(str(tmp_path / "average")).get_layer(models_["average"].generator.name)
    assert_same_state(saved.weights, averaged)
    cfg = experiments.config("dcgan", **base, ema=0.9)
    experiments.train(dict(cfg, steps=4), str(tmp_path / "resumed"), verbose=0)
    resumed = experiments.train(cfg, str(tmp_path / "resumed"), resume=True, verbose=0)[0]
    assert_same_state(resumed.generator.weights, averaged)
    with pytest.raises(ValueError, match="ema must be in"):
        experiments.config("dcgan", ema=1.0)
