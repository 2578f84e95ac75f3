"""helpers: the small package every chapter of *Generative AI: data matters more* imports.

Modules, in the direction data flows:
``runtime`` (device, seeds, budget, banner) -> ``data`` (MNIST loaders, ``tf.data`` pipelines)
-> ``models`` -> ``training`` (the models' train steps, the recipes, ``fit_steps``) with ``callbacks``
(sample grids, CSV log, checkpoints, NaN guard) -> ``metrics`` / ``plotting``, and ``experiments`` on top
(cached training runs and grids of them, as tables; the command line trains through it).
"""
import os

# Quiet TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
