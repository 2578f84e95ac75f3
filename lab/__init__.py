"""lab: the machinery that runs the book's experiments. A reader learning the models needs :mod:`helpers`
(the lessons: data, networks, train steps, metrics, plots); ``lab`` reproduces the book's numbers with
them: a run's settings declared once and its key (:mod:`lab.settings`, :mod:`lab.runs`), the model
families (:mod:`lab.families`), exact steps, checkpoints and the NaN guard (:mod:`lab.fitting`), the
stored results kept in the repository (:mod:`lab.store`), grids of runs as tables (:mod:`lab.grids`), the
chapters' grid designs (:mod:`lab.designs`), chapter 10's tests of finished runs (:mod:`lab.privacy`), and
the command line (``python -m lab``: :mod:`lab.cli` reads and checks the arguments, :mod:`lab.commands`
runs them). Chapters write ``from lab import experiments``
(:mod:`lab.experiments` gathers what they call). ``lab`` imports ``helpers``; ``helpers`` never imports
``lab``. This file imports nothing, so that ``python -m lab -h`` answers before TensorFlow loads.
"""
