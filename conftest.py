"""Test-suite set-up shared by the unit tests and the nbval runs of the notebooks.

Plain `pytest` must be quick, so it runs every notebook in the `smoke` budget. The kernels that nbval
starts inherit this environment. GENAI_TEST_BUDGET=cpu pytest runs them in the cpu budget instead.
"""
import atexit
import os
import shutil
import tempfile

os.environ["GENAI_BUDGET"] = os.environ.get("GENAI_TEST_BUDGET", "smoke")
# Experiment grids (helpers.experiments) cache their runs; the tests start from an empty cache so that
# every notebook really trains, whatever an earlier run of the chapters left in book/runs/.
os.environ["GENAI_CACHE"] = tempfile.mkdtemp(prefix="genai-cache-")
atexit.register(shutil.rmtree, os.environ["GENAI_CACHE"], ignore_errors=True)  # ~30 MB of smoke runs
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
