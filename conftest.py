"""Test-suite set-up shared by the unit tests and the nbval runs of the notebooks.

Plain `pytest` must be quick, so it runs every notebook in the `smoke` budget. The kernels that nbval
starts inherit this environment. GENAI_TEST_BUDGET=cpu pytest runs them in the cpu budget instead.
"""
import atexit
import os
import shutil
import tempfile

import pytest
from threadpoolctl import threadpool_limits

os.environ["GENAI_BUDGET"] = os.environ.get("GENAI_TEST_BUDGET", "smoke")
# Experiment grids (lab.experiments) cache their runs; the tests start from an empty cache so that
# every notebook really trains, whatever an earlier run of the chapters left in book/runs/.
os.environ["GENAI_CACHE"] = tempfile.mkdtemp(prefix="genai-cache-")
atexit.register(shutil.rmtree, os.environ["GENAI_CACHE"], ignore_errors=True)  # ~30 MB of smoke runs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The tests run in two processes (pytest-xdist) beside the notebooks' kernels: one BLAS thread each, or
# numpy's BLAS spins more threads than there are cores (a mixture fit took 20x longer that way).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
threadpool_limits(1)


def _assert_same_state(a, b):
    """Two lists of arrays (a resumed run's variables and a straight run's) are the same state: equal up to
    float32 rounding, which multi-threaded CPU kernels may accumulate in a different order from run to run
    (seen in CI: 1.2e-6 on a kernel whose largest entry is 2.7). The absolute tolerance is 1e-5 of each
    array's largest entry, so a step taken twice, skipped or on another batch (an Adam update moves a weight
    by about the learning rate, 1e-4 to 1e-3) still fails."""
    import numpy as np

    assert len(a) == len(b)
    for va, vb in zip(a, b):
        va, vb = np.asarray(va), np.asarray(vb)
        scale = float(np.max(np.abs(vb))) if vb.size else 0.0
        np.testing.assert_allclose(va, vb, rtol=1e-5, atol=1e-5 * scale + 1e-12)


@pytest.fixture
def assert_same_state():
    return _assert_same_state
