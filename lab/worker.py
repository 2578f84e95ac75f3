"""The start of a worker process of :func:`lab.grids.grid`. This module imports no TensorFlow (nor does
``lab/__init__.py``), so a worker can send its own output to /dev/null before TensorFlow loads and prints."""

import os

from threadpoolctl import threadpool_limits


def quiet(threads: int) -> None:
    """Send the worker's own output (download attempts, TensorFlow's start-up notes) to /dev/null, so that it
    does not land in the notebook, then give TensorFlow and the BLAS under numpy and scikit-learn ``threads``
    threads each (workers that share the cores and spin up more threads than there are cores made a
    mixture fit 20x slower). Its exceptions still reach the caller."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.environ["OPENBLAS_NUM_THREADS"] = str(threads)  # read when numpy's BLAS loads
    threadpool_limits(threads)  # and for a BLAS loaded already
    import tensorflow as tf  # only now: its start-up lines go to /dev/null

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
