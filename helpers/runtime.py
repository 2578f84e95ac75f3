"""Device detection, seeding, the run budget and the setup banner. Introduced in the introduction ("How to
run this book"); every chapter's first cell calls :func:`setup`.
"""
from __future__ import annotations

import contextlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass
from importlib.metadata import version

BUDGETS = ("full", "cpu", "smoke")
BUDGET_ENV = "GENAI_BUDGET"


@dataclass(frozen=True)
class Device:
    """What the code runs on. ``kind`` is ``"gpu"`` or ``"cpu"``."""

    kind: str
    name: str
    bf16: bool  # hardware support for bfloat16 arithmetic

    def __str__(self) -> str:
        return f"{self.kind.upper()}: {self.name} (bfloat16 {'yes' if self.bf16 else 'no'})"


def _cpu_flags(path: str = "/proc/cpuinfo") -> set[str]:
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@contextlib.contextmanager
def _quiet_stderr():
    """Silence what C++ code writes straight to file descriptor 2 in the block (Python exceptions still show)."""
    try:
        saved = os.dup(2)
    except OSError:  # no real stderr (some hosted kernels)
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _tensorflow():
    """TensorFlow, with Keras, imported on first use."""
    # Imported here, not at the top: every chapter's first cell imports this module, which must stay fast, and
    # TensorFlow's first import writes C++ start-up lines (CUDA probing) that _quiet_stderr hides. Keras 3
    # loads TensorFlow, so it is imported here too.
    if "tensorflow" not in sys.modules or "keras" not in sys.modules:
        with _quiet_stderr():
            import keras  # noqa: F401  (read from sys.modules by _keras)
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe logs here, once
    return sys.modules["tensorflow"]


def _keras():
    _tensorflow()
    return sys.modules["keras"]


def detect_device() -> Device:
    """The accelerator TensorFlow will use: the first GPU if there is one, else the CPU. ``bf16``: bfloat16
    in hardware (compute capability >= 8.0; AVX512_BF16 or AMX_BF16 on x86). Introduced in chapter 3."""
    tf = _tensorflow()
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        cc = details.get("compute_capability") or (0, 0)
        name = details.get("device_name", "GPU")
        if len(gpus) > 1:
            name += f" (x{len(gpus)})"
        return Device("gpu", name, tuple(cc) >= (8, 0))
    flags = _cpu_flags()
    name = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    return Device("cpu", name, bool(flags & {"avx512_bf16", "amx_bf16"}))


def device_choices(device: Device | None = None) -> dict:
    """The measured precision and XLA choices of a device: bfloat16 where the hardware has it (never ``mixed_float16``,
    which needs loss scaling), XLA on GPUs only (2x slower on a 2-core CPU)."""
    device = device or detect_device()
    return {
        "policy": "mixed_bfloat16" if device.bf16 else "float32",
        "jit_compile": device.kind == "gpu",
    }


@contextlib.contextmanager
def precision(policy: str):
    """Run the block under the Keras precision ``policy``, then put back the one in force before."""
    keras = _keras()
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and TensorFlow/Keras so that a run can be repeated. Introduced in chapter 5."""
    _keras().utils.set_random_seed(int(seed))


def budget() -> str:
    """The budget in force: ``full`` (GPU), ``cpu`` (minutes on a laptop) or ``smoke`` (seconds, tests), by device
    unless ``GENAI_BUDGET`` says. Introduced in the introduction."""
    name = os.environ.get(BUDGET_ENV, "").strip().lower()
    if name:
        if name not in BUDGETS:
            raise ValueError(
                f"{BUDGET_ENV}={name!r} is not a budget; use one of {', '.join(BUDGETS)} "
                f"(or unset it to choose by device)."
            )
        return name
    return "full" if detect_device().kind == "gpu" else "cpu"


def data_source() -> str:
    """Where MNIST comes from on the budget in force: the download on the full budget, the 4,000 offline
    digits the stored runs were trained on otherwise."""
    return "auto" if budget() == "full" else "offline"


def pick(*, full, cpu, smoke):
    """The value for the budget in force: ``pick(full=10_000, cpu=1_500, smoke=20)``. Introduced in the introduction."""
    return {"full": full, "cpu": cpu, "smoke": smoke}[budget()]


def versions() -> dict[str, str]:
    """Versions of Python and the libraries the book depends on."""
    tensorflow, keras = _tensorflow(), _keras()
    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": version("numpy"),
        "matplotlib": version("matplotlib"),
    }


def banner() -> str:
    """The text of the setup banner: versions, device, budget."""
    v = " | ".join(f"{k} {val}" for k, val in versions().items())
    where = "Colab" if "google.colab" in sys.modules else platform.system()
    return (
        f"{v}\n"
        f"device: {detect_device()} on {where}\n"
        f"budget: {budget()} (set {BUDGET_ENV}=full|cpu|smoke before starting to change it)"
    )


_started = time.perf_counter()


def t4_estimate(chapter: str) -> str:
    """How long ``chapter`` takes on the full budget on a Colab T4, as ``scripts/estimate_t4.py`` estimated it."""
    path = os.path.join(os.path.dirname(__file__), "assets", "t4_estimate.json")
    with open(path) as f:
        found = json.load(f).get(chapter)
    if not found:
        return f"full budget on a Colab T4: not estimated (run scripts/estimate_t4.py --chapters {chapter})"
    lo, hi = found["t4_minutes"]
    span = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
    return f"full budget on a Colab T4: about {span} min (estimated; not yet measured on a GPU)"


def setup(seed: int = 0, chapter: str | None = None) -> str:
    """The first cell of a chapter: seed, start the clock, print the banner (and T4 estimate), return the budget."""
    global _started
    _started = time.perf_counter()
    seed_everything(seed)
    print(banner())
    if chapter:
        print(t4_estimate(chapter))
    return budget()


def report() -> None:
    """Print the wall time since :func:`setup`, with the budget and device: the last cell of a chapter."""
    print(f"wall time: {time.perf_counter() - _started:.1f} s with budget {budget()} on {detect_device()}")


@contextlib.contextmanager
def stopwatch(label: str = "wall time"):
    """Context manager that prints how long its block took, e.g. ``with stopwatch("training"): ...``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        print(f"{label}: {time.perf_counter() - start:.1f} s")
