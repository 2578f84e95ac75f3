import pytest

from helpers import runtime


@pytest.mark.parametrize("kind, expected", [("gpu", "full"), ("cpu", "cpu")])
def test_budget_defaults_to_device(monkeypatch, kind, expected):
    monkeypatch.delenv(runtime.BUDGET_ENV, raising=False)
    monkeypatch.setattr(runtime, "detect_device", lambda: runtime.Device(kind, "x", False))
    assert runtime.budget() == expected


@pytest.mark.parametrize("name", runtime.BUDGETS)
def test_budget_env_override_and_pick(monkeypatch, name):
    monkeypatch.setenv(runtime.BUDGET_ENV, name.upper())
    assert runtime.budget() == name
    assert runtime.pick(full=1, cpu=2, smoke=3) == {"full": 1, "cpu": 2, "smoke": 3}[name]


def test_bad_budget_says_what_to_do(monkeypatch):
    monkeypatch.setenv(runtime.BUDGET_ENV, "huge")
    with pytest.raises(ValueError, match="full, cpu, smoke"):
        runtime.budget()


def test_the_suite_runs_in_the_budget_conftest_chose():
    import os

    assert runtime.budget() == os.environ.get("GENAI_TEST_BUDGET", "smoke")


def test_seed_everything_repeats_random_draws():
    import numpy as np
    import tensorflow as tf

    runtime.seed_everything(7)
    a = (np.random.rand(3), tf.random.normal([3]).numpy())
    runtime.seed_everything(7)
    b = (np.random.rand(3), tf.random.normal([3]).numpy())
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_banner_names_versions_device_and_budget(capsys):
    import tensorflow as tf

    budget = runtime.setup(seed=0)
    out = capsys.readouterr().out
    assert budget == runtime.budget() and budget in runtime.BUDGETS
    assert f"tensorflow {tf.__version__}" in out
    assert "device: CPU" in out or "device: GPU" in out
    assert f"budget: {budget}" in out


@pytest.mark.parametrize("flags, bf16", [({"avx2", "avx512f"}, False), ({"avx512_bf16"}, True), ({"amx_bf16"}, True),
                                         (set(), False)])
def test_cpu_bf16_comes_from_the_cpu_flags(monkeypatch, flags, bf16):
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: [])  # no GPU
    monkeypatch.setattr(runtime, "_cpu_flags", lambda: flags)
    device = runtime.detect_device()
    assert device.kind == "cpu" and device.bf16 is bf16


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: x\nflags\t\t: fpu sse2 avx512_bf16\n\nprocessor\t: 1\n")
    assert runtime._cpu_flags(str(info)) == {"fpu", "sse2", "avx512_bf16"}
    assert runtime._cpu_flags(str(tmp_path / "missing")) == set()  # not Linux: no flags, no error


def test_t4_estimate_line_reads_the_estimates_file_and_says_what_is_missing():
    line = runtime.t4_estimate("03")
    assert line.startswith("full budget on a Colab T4: about ") and "not yet measured on a GPU" in line
    span = [float(v) for v in line.split("about ")[1].split(" min")[0].split("-")]
    assert 0 < span[0] <= span[-1]
    assert "not estimated (run scripts/estimate_t4.py --chapters 99)" in runtime.t4_estimate("99")
