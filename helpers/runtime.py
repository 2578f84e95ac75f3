"""Device detection, seeding, the run budget and the setup banner.

Introduced in the introduction ("How to run this book"); every chapter's first cell calls :func:`setup`.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from dataclasses import dataclass

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
    """Silence the C++ start-up lines TensorFlow writes straight to file descriptor 2 (CUDA probing on
    machines without a GPU). Python exceptions still propagate and are shown after the block."""
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
    if "tensorflow" not in sys.modules:
        with _quiet_stderr():
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # the CUDA probe logs here, once
    return sys.modules["tensorflow"]


def detect_device() -> Device:
    """Return the accelerator TensorFlow will use: the first GPU if there is one, else the CPU.

    Introduced in chapter 3. ``bf16`` says whether the hardware computes in bfloat16 natively
    (GPU compute capability >= 8.0; on x86 CPUs the AVX512_BF16 or AMX_BF16 instructions).
    """
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
    """Precision and XLA choices per device, from measurements (see the hands-on GAN chapter):
    bfloat16 mixed precision wherever the hardware computes in bf16 (about 1.3x faster on a CPU with
    AVX512_BF16); XLA on GPUs only (it was about 2x slower on a 2-core CPU). ``mixed_float16`` is never
    chosen (bfloat16 needs no loss scaling), but the training steps support it for older GPUs."""
    device = device or detect_device()
    return {
        "policy": "mixed_bfloat16" if device.bf16 else "float32",
        "jit_compile": device.kind == "gpu",
    }


@contextlib.contextmanager
def precision(policy: str):
    """Run the block under the Keras precision ``policy`` (``"float32"``, ``"mixed_bfloat16"``, ...) and put
    back the global policy that was in force before, also when the block raises."""
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(policy)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and TensorFlow/Keras so that a run can be repeated.

    Introduced in chapter 5. Kernels may still differ in the last bits between devices.
    """
    _tensorflow()
    import keras

    keras.utils.set_random_seed(int(seed))


def budget() -> str:
    """The budget in force: ``full`` (GPU), ``cpu`` (minutes on a laptop) or ``smoke`` (seconds, tests).

    Introduced in the introduction. The environment variable ``GENAI_BUDGET`` overrides the default,
    which is ``full`` when a GPU is present and ``cpu`` otherwise.
    """
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
    """Where MNIST comes from on the budget in force: the download (offline subset as fallback) on the
    full budget; on the cpu and smoke budgets the 4,000 offline digits on every machine, online or not,
    which the stored runs were trained on. Introduced in chapter 1."""
    return "auto" if budget() == "full" else "offline"


def pick(*, full, cpu, smoke):
    """Return the value for the budget in force, e.g. ``steps = pick(full=10_000, cpu=1_500, smoke=20)``.

    Introduced in the introduction. This is the one switch every chapter uses for its sizes.
    """
    return {"full": full, "cpu": cpu, "smoke": smoke}[budget()]


def versions() -> dict[str, str]:
    """Versions of Python and the libraries the book depends on."""
    tensorflow = _tensorflow()
    import keras
    import matplotlib
    import numpy

    return {
        "python": platform.python_version(),
        "tensorflow": tensorflow.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
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
    """The line that says how long ``chapter`` (``"03"``, ``"tools"``) takes on the full budget on a Colab
    T4, as ``scripts/estimate_t4.py`` estimated it (no GPU has measured it yet)."""
    import json

    path = os.path.join(os.path.dirname(__file__), "assets", "t4_estimate.json")
    found = None
    if os.path.exists(path):
        with open(path) as f:
            found = json.load(f).get(chapter)
    if not found:
        return f"full budget on a Colab T4: not estimated (run scripts/estimate_t4.py --chapters {chapter})"
    (lo, hi), n = found["t4_minutes"], found["trainings"]
    what = (f"{n} training{'s' if n != 1 else ''} of {found['steps']:,} steps in all" if n
            else "no model to train: runs stored, or none")
    span = f"{lo:g}" if lo == hi else f"{lo:g}-{hi:g}"
    return (f"full budget on a Colab T4: about {span} min, estimated ({what}; scripts/estimate_t4.py), "
            f"not yet measured on a GPU")


def setup(seed: int = 0, chapter: str | None = None) -> str:
    """Seed everything, print the banner (and :func:`t4_estimate` of ``chapter``) and return the budget
    name. The first cell of every chapter.

    It also starts the clock that :func:`report` reads at the end of the chapter.
    """
    global _started
    _started = time.perf_counter()
    seed_everything(seed)
    print(banner())
    if chapter:
        print(t4_estimate(chapter))
    return budget()


def report() -> None:
    """Print the wall time since :func:`setup`, with the budget and device: the last cell of a chapter."""
    print(
        f"wall time: {time.perf_counter() - _started:.1f} s with budget {budget()} "
        f"on {detect_device()}"
    )


@contextlib.contextmanager
def stopwatch(label: str = "wall time"):
    """Context manager that prints how long its block took, e.g. ``with stopwatch("training"): ...``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        print(f"{label}: {time.perf_counter() - start:.1f} s")
