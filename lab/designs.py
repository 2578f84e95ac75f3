"""The chapters' grid designs: the sizes, steps and seeds of each chapter's grids, read both by the chapters
and by the scripts that train the stored runs (``scripts/store_grid.py``), so the two cannot drift apart.
"""

from __future__ import annotations

from helpers import runtime

from .runs import config
from .settings import RECIPES

# Chapter 11's memorisation grid: two diffusion models per N on disjoint halves of Fashion-MNIST (seed =
# half, so they share neither an image nor their initial weights), the same steps for every N. Trained once
# (scripts/memorisation_grid.py) and stored: the same configuration in every budget.
MEMORISATION_SIZES = (10, 100, 1_000, 10_000)
MEMORISATION_STEPS = (1_500, 3_000)  # two training lengths: does longer training move the transition?
MEMORISATION = dict(data="fashion", width=16, steps=MEMORISATION_STEPS[0], policy="float32", jit_compile=False)


def memorisation_config(n: int, half: int, steps: int = MEMORISATION_STEPS[0]) -> dict:
    """The run of chapter 11's memorisation grid with ``n`` training images from half ``half``, trained for
    ``steps`` (the same for every ``n``)."""
    return config("diffusion", **{**MEMORISATION, "steps": steps}, train_size=n, half=half, seed=half)


# Chapter 7's compute x data grid: four training lengths (30x) for the self-conditioned DCGAN (chapter 9)
# and three (10x) for the VAE (chapter 5) x four sizes of Fashion-MNIST training set (100x). Trained once
# (scripts/store_grid.py) and stored, with the precision and compilation written out, so every budget
# and every machine finds the same runs.
DATA_SIZES = (600, 2_000, 6_000, 60_000)
DATA_STEPS = {"dcgan": (500, 1_600, 5_000, 15_000), "vae": (1_000, 3_200, 10_000)}
DATA_RUNS = {"dcgan": dict(data="fashion", clusters=50, policy="float32", jit_compile=False),
             "vae": dict(data="fashion", policy="mixed_bfloat16", jit_compile=False)}


# Chapter 7's last step to the readers' bar: the longest GAN runs again, sampled from the moving average of the
# generator's weights with this decay (fixed beforehand: chapter 11's diffusion model uses the same); the
# training is the grid's own, step for step
DATA_EMA = 0.999
AVERAGED_SIZES = (600, 60_000)  # the two ends of the span of 7.1
SEED_SPREAD_SIZES = (6_000, 60_000)  # chapter 7.1's plain DCGAN with two seeds: how much one run's FID moves

# Chapter 7's DiffAugment test: the plain DCGAN with and without augmentation on small Fashion-MNIST sets, long
# enough for the discriminator to memorise them (scripts/store_grid.py diffaugment trains them)
AUGMENT_SIZES, AUGMENT_STEPS = (250, 1_000), 5_000
# ... and on MNIST with chapter 8's recipe (:func:`remedy_mnist`), which meets the readers' bar: small sets of digits
AUGMENT_MNIST_SIZES = (500, 1_000)


# Chapter 10's privacy runs: the two recipes that meet the book's bar on MNIST, chapter 9's self-conditioned
# DCGAN and chapter 5's VAE, on 250, 1,000 and 4,000 training digits; the canary joins the 1,000
PRIVACY_SIZES, CANARY_SIZE, CANARY_COPIES = (250, 1_000, 4_000), 1_000, (1, 10, 100)


def cpu_recipe(kind: str, **extra) -> dict:
    """The :func:`grid` settings of ``kind``'s recipe as the cpu budget trained it for the stored results:
    every per-budget value of the recipe (steps, precision, XLA, width) at its cpu value and MNIST from
    the offline digits, on the full budget too, so that a GPU loads the stored runs as a laptop does; the
    smoke budget's values in the tests. ``extra`` settings on top."""
    budget = "smoke" if runtime.budget() == "smoke" else "cpu"
    pinned = {name: v[budget] for name, v in RECIPES[kind].items() if isinstance(v, dict) and name != "log_every"}
    return {"kind": kind, **pinned, "source": "offline", **extra}


def privacy_models() -> dict:
    """Chapter 10's two models as :func:`grid` settings: the recipes as the cpu budget trains them, on the
    full budget too (:func:`cpu_recipe`); narrow networks and 5 clusters on the smoke budget (the tests)."""
    if runtime.budget() == "smoke":
        return {"DCGAN": {"kind": "dcgan", "clusters": 5, "width": 8}, "VAE": {"kind": "vae", "width": 8}}
    return {"DCGAN": cpu_recipe("dcgan", clusters=50), "VAE": cpu_recipe("vae")}


def privacy_grids(sizes=PRIVACY_SIZES, copies=CANARY_COPIES) -> dict:
    """Chapter 10's grids (conditions for :func:`grid`): ``sizes``, each model on each training-set size;
    ``shorter``, each on :data:`CANARY_SIZE` digits for half its recipe's steps; ``canary``, each on
    :data:`CANARY_SIZE` digits with the canary's ``copies``."""
    models, grids = privacy_models(), {"sizes": {}, "shorter": {}, "canary": {}}
    for name, m in models.items():
        half = config(**m)["steps"] // 2
        grids["sizes"].update({f"{name} n={n}": dict(m, train_size=n) for n in sizes})
        grids["shorter"][f"{name} n={CANARY_SIZE}, {half} steps"] = dict(m, train_size=CANARY_SIZE, steps=half)
        grids["canary"].update({f"{name} +{c}": dict(m, train_size=CANARY_SIZE, canary=c) for c in copies})
    return grids


def remedy_mnist() -> dict:
    """Chapter 8's MNIST runs as :func:`grid` settings (chapter 10 measures their spread between seeds):
    chapter 9's self-conditioned DCGAN at width 32, 1,800 steps of 128, the same on the full and cpu
    budgets with its precision fixed (the runs are stored); narrow and 10 steps on the smoke budget."""
    written = {"clusters": 50, "batch_size": 128, "lr": 1e-3, "policy": "float32"}  # the chapters read them
    if runtime.budget() == "smoke":
        return cpu_recipe("dcgan", **written, width=8, steps=10)
    return cpu_recipe("dcgan", **written, width=32)


# Chapter 7's opening figure: chapter 8's MNIST recipe (:func:`remedy_mnist`) on growing subsets of the offline
# digits, three seeds each (all 4,000 digits: chapter 8's own runs)
THESIS_SIZES, THESIS_SEEDS = (500, 1_000, 2_000, 4_000), (0, 1, 2)


def thesis_settings(n: int) -> dict:
    """A run of chapter 7's opening figure (for :func:`grid`): :func:`remedy_mnist` on ``n`` digits."""
    return dict(remedy_mnist(), **({"train_size": n} if n < THESIS_SIZES[-1] else {}))


def thesis_levers(n: int) -> dict:
    """The same recipe on ``n`` digits with twice the compute, spent two ways (chapter 7.2's levers): twice the
    steps, or networks twice as wide (chapter 10's DCGAN runs, which name their training-set size)."""
    base = thesis_settings(n)
    return {"twice the steps": dict(base, steps=2 * base["steps"]),
            "twice the width": dict(base, width=2 * base["width"], train_size=n)}


def data_settings(kind: str, n: int, steps: int, **extra) -> dict:
    """The settings (for :func:`grid`) of a run of chapter 7's Fashion-MNIST grids: ``kind`` (``"dcgan"``
    or ``"vae"``) on ``n`` training images for ``steps`` steps, with ``extra`` settings on top (the plain
    DCGAN of the DiffAugment test: ``clusters=0``)."""
    return {"kind": kind, **DATA_RUNS[kind], "train_size": n, "steps": steps, **extra}


def data_config(kind: str, n: int, steps: int, seed: int = 0, **extra) -> dict:
    """The whole configuration of that run (:func:`data_settings`) for ``seed``."""
    settings_ = data_settings(kind, n, steps, **extra)
    return config(settings_.pop("kind"), **settings_, seed=seed)


CGAN_CPU = {"kind": "cgan", "steps": 1000, "batch_size": 64, "width": 32, "log_every": 200}  # chapter 9's, cpu budget
CVAE_CPU = {"kind": "cvae", "steps": 2000, "batch_size": 64, "width": 32, "log_every": 200, "policy": "float32"}
SCARCE = 500  # chapter 9's scarce training set: real digits topped up with generated ones
PLAIN = {"clusters": 0}  # the plain DCGAN of chapter 3 instead of the self-conditioned recipe
BF16 = "mixed_bfloat16"


def stored_grids() -> dict:
    """Every grid whose runs are kept in ``book/stored_runs``, by name (``scripts/store_grid.py NAME`` trains
    one; ``tests/test_keys.py`` checks that each resolves to its stored keys on any machine)."""
    privacy = privacy_grids()
    return {
        # chapter 7's compute x data grid: the self-conditioned DCGAN and the VAE, longest runs first
        "fashion-scgan": {f"self-conditioned n={n} steps={s}": data_settings("dcgan", n, s)
                          for n in DATA_SIZES[::-1] for s in DATA_STEPS["dcgan"][::-1]},
        # its longest runs again, sampled from the generator's weight average (the same training, step for step)
        "fashion-scgan-ema": {f"self-conditioned n={n} steps={DATA_STEPS['dcgan'][-1]} ema": data_settings(
            "dcgan", n, DATA_STEPS["dcgan"][-1], ema=DATA_EMA) for n in AVERAGED_SIZES},
        "fashion-vae": {f"vae n={n} steps={s}": data_settings("vae", n, s)
                        for s in DATA_STEPS["vae"][::-1] for n in DATA_SIZES[::-1]},
        # the plain DCGAN (no clusters) at two sizes, two seeds: chapter 7's measure of one run's seed spread
        "fashion-gan": {f"dcgan n={n} steps={AUGMENT_STEPS}": data_settings("dcgan", n, AUGMENT_STEPS, **PLAIN)
                        for n in SEED_SPREAD_SIZES},
        # DiffAugment where its paper says it helps (chapter 7, #23): small Fashion-MNIST sets trained long enough
        # for the discriminator to memorise them (its log's val_d_gap shows it), with and without augmentation
        "diffaugment": {f"{name} n={n}": data_settings("dcgan", n, AUGMENT_STEPS, **PLAIN, **extra)
                        for n in AUGMENT_SIZES for name, extra in (("plain", {}), ("DiffAugment", {"augment": "translation,cutout"}))},
        # the same test on offline MNIST with chapter 8's recipe (the self-conditioned DCGAN, which meets the bar)
        "diffaugment-mnist": {f"{name} n={n}": dict(remedy_mnist(), train_size=n, **extra) for n in AUGMENT_MNIST_SIZES[::-1]
                              for name, extra in (("plain", {}), ("DiffAugment", {"augment": "translation,cutout"}))},
        # chapter 3's DCGAN and chapter 5's VAE recipes at the budget in force (chapter 11 sets them beside
        # its diffusion model)
        "thesis": {**{f"n={n}": thesis_settings(n) for n in THESIS_SIZES[::-1]},
                   **{f"{name} n={n}": settings_ for n in (1_000, THESIS_SIZES[-1])
                      for name, settings_ in thesis_levers(n).items()}},
        "recipes": {"DCGAN (chapter 3)": {"kind": "dcgan"}, "VAE (chapter 5)": {"kind": "vae"}},
        # chapter 3's recipe against the paper's settings, and the recipe in bfloat16 (seeds 0 1); chapter 11's
        # diffusion recipe (seed 0)
        "chapter-3": {"paper's settings": {"kind": "dcgan", "width": 32, "lr": 2e-4, "policy": BF16},
                      "the recipe": {"kind": "dcgan"}, "the recipe in " + BF16: {"kind": "dcgan", "policy": BF16}},
        "diffusion": {"diffusion (chapter 11)": {"kind": "diffusion"}},
        # chapter 9's runs (seeds 0 1 2): the cGAN and cVAE on all digits and on 500, whose generated digits
        # the chapter draws once and keeps beside them (derived/), the cGAN with noisy labels, and the VAE
        # recipe's seeds, whose decoders repair digits; the plain and self-conditioned DCGANs (seeds 0 1)
        "applications": {**{f"noise {p:.0%}": {**CGAN_CPU, "label_noise": p} for p in (0.2, 0.5)},
                         "VAE of chapter 5": {"kind": "vae"}, "cGAN": CGAN_CPU, "cVAE": CVAE_CPU,
                         f"cGAN on {SCARCE}": {**CGAN_CPU, "train_size": SCARCE},
                         f"cVAE on {SCARCE}": {**CVAE_CPU, "train_size": SCARCE}},
        "self-conditioning": {"plain DCGAN (chapter 3)": {"kind": "dcgan"},
                              "self-conditioned, 50 clusters": {"kind": "dcgan", "clusters": 50}},
        # chapter 10's privacy runs (their networks stay in the cache: the chapter's tests need them, and store
        # what they find beside the stored runs when it is executed with GENAI_STORE=1)
        "privacy": privacy["sizes"],
        "privacy-shorter": privacy["shorter"],
        "privacy-canary": privacy["canary"],
        # chapter 8's plain toy GAN on both mixtures, as the cpu budget trained it before 10,000 steps: the small
        # runs tests/test_store.py retrains
        "toy-plain": {f"{name}: plain": {"kind": "toy", "data": name, "steps": 2_500, "log_every": 500}
                      for name in ("ring", "grid")},
    }
