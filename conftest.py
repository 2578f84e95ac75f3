"""Test-suite set-up shared by the unit tests and the nbval runs of the notebooks.

Plain `pytest` must be quick, so it runs every notebook in the `smoke` budget. The kernels that nbval
starts inherit this environment. GENAI_TEST_BUDGET=cpu pytest runs them in the cpu budget instead.
"""
import os

os.environ["GENAI_BUDGET"] = os.environ.get("GENAI_TEST_BUDGET", "smoke")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
