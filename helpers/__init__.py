"""helpers: the teaching package of *Generative AI: data matters more*, the code its chapters print and call.

``runtime`` (device, seeds, budget), ``choices`` (the options' names), ``data``, ``models``, ``training`` (the plain GAN, VAE and diffusion model),
``variants`` (one idea each on top of them), ``diffusion``, ``callbacks``, ``metrics``, ``plotting`` and ``privacy``.
The machinery that runs, caches and stores experiments is the separate package ``lab``, which imports helpers and is
never imported by it.
"""
import os

# Quiet TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
