"""A stored run's key depends on what the run is, never on the machine that asks for it: on a CPU with
bfloat16 or without, with the internet or without, every chapter's stored runs resolve to the keys they
were stored under (issue: readers without bfloat16 trained chapters 3, 6 and 11 again for an hour)."""
import numpy as np
import pytest

from helpers import data, runtime
from lab import designs, experiments, families, store

MACHINES = [(bf16, online) for bf16 in (True, False) for online in (True, False)]
DERIVED = ("scale", "data_source")  # what config() adds to the settings


@pytest.fixture
def machine(monkeypatch):
    """Make this process look like a CPU with or without bfloat16, with or without the internet."""
    monkeypatch.setenv("GENAI_BUDGET", "cpu")
    monkeypatch.delenv("GENAI_RETRAIN", raising=False)
    full = ((np.zeros((60_000, 28, 28), np.uint8), np.arange(60_000, dtype=np.uint8) % 10),
            (np.zeros((10_000, 28, 28), np.uint8), np.arange(10_000, dtype=np.uint8) % 10))

    def be(bf16: bool, online: bool):
        monkeypatch.setattr(runtime, "detect_device", lambda: runtime.Device("cpu", "test", bf16))
        monkeypatch.setattr(data, "_cache", {})

        def download(name):
            if not online or name != "mnist":
                raise OSError("no internet")
            return full

        monkeypatch.setattr(data, "_download", download)

    return be


def test_every_stored_run_resolves_to_its_key_on_every_machine(machine):
    runs = store.runs()
    assert len(runs) > 300
    for bf16, online in MACHINES:
        machine(bf16, online)
        for key, record in runs:
            cfg = dict(record["config"])
            kind = cfg.pop("kind")
            again = experiments.config(kind, source=families.source(cfg), **{k: v for k, v in cfg.items() if k not in DERIVED})
            assert experiments.key(again) == key, (key, bf16, online)


def test_the_chapters_grids_load_their_stored_runs_on_every_machine(machine):
    """The grids the chapters ask for (lab.designs.stored_grids, with the recipes of chapters 3, 5 and 11)
    resolve to the same keys everywhere, and seed 0 of each is stored."""
    keys = {}
    for bf16, online in MACHINES:
        machine(bf16, online)
        keys[bf16, online] = {(grid, name): experiments.key(experiments.config(**dict(settings, seed=0)))
                              for grid, conditions in designs.stored_grids().items()
                              for name, settings in conditions.items()}
    first = keys[MACHINES[0]]
    assert all(k == first for k in keys.values())
    missing = [where for where, key in first.items() if store.load(key) is None]
    assert not missing, f"not stored: {missing}"
    assert experiments.config("vae")["policy"] == "mixed_bfloat16"  # as stored, on a CPU without bfloat16 too
