"""The book's experiments, as the chapters call them: ``from lab import experiments``, then
``experiments.grid(...)``, ``experiments.config(...)``, ``experiments.run(...)``. Each name lives in the
module of :mod:`lab` that says what it is; this module only gathers them.
"""

# ruff: noqa: F401
from .designs import (AUGMENT_MNIST_SIZES, AVERAGED_SIZES, SEED_SPREAD_SIZES, stored_grids, AUGMENT_SIZES, AUGMENT_STEPS, CANARY_COPIES, CANARY_SIZE,
                      DATA_EMA, DATA_RUNS, DATA_SIZES, DATA_STEPS, MEMORISATION, MEMORISATION_SIZES,
                      MEMORISATION_STEPS, PRIVACY_SIZES, cpu_recipe, data_config, data_settings,
                      memorisation_config, privacy_grids, privacy_models, remedy_mnist, THESIS_SEEDS,
                      THESIS_SIZES, thesis_levers, thesis_settings)
from .families import CANARY_INDEX, DCGAN, FAMILIES, canary, score_samples, test_images, training_data
from .fitting import Checkpoint, CSVLog, NaNGuard, TrainingDiverged, fit_steps, restore
from .grids import difference, grid, load_samples, summarize
from .privacy import privacy
from .runs import (build, cache_dir, config, derived, images_seen, key, load_model, load_sampler, record, run,
                   run_config, run_dir, sample, score, train, WEIGHTS)
from .settings import RECIPES
