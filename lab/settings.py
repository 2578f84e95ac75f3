"""The recipes and the settings of a run, declared once: name, default, which models take it, how it is read
from text and checked. :func:`experiments.config` builds and validates a run's configuration from them, the
command line (``python -m lab train``) derives its flags from them, and the cache key hashes them.
"""
from __future__ import annotations

from dataclasses import dataclass

from helpers import choices, runtime

# The recipes of the command line, the chapters and the grids: steps per budget, batch size, log interval,
# network sizes, learning rate and the precision ("policy") and XLA choice. On the cpu and smoke budgets both
# are written out (what the stored runs were trained in), so a run's key never depends on the machine that
# asks for it; on the full budget (None) the GPU's own choice applies (runtime.device_choices): it trains
# its own runs. One definition, read by everyone who trains.
GPU_OWN = {"full": None, "cpu": False, "smoke": False}
BF16_ON_CPU = {"full": None, "cpu": "mixed_bfloat16", "smoke": "float32"}
RECIPES = {
    # chapter 3's DCGAN: width 64, Adam(1e-3, beta_1 0.5), float32 (bfloat16 scored within the seed spread, chapter 3, and
    # runs several times slower on a CPU without it)
    "dcgan": {"steps": {"full": 10_000, "cpu": 1_800, "smoke": 20}, "batch_size": 128, "log_every": 100,
              "z_dim": 64, "width": 64, "lr": 1e-3, "policy": "float32", "jit_compile": GPU_OWN},
    # chapter 5's VAE, sampled through a Gaussian mixture fitted to its codes after training; bfloat16 on
    # the cpu budget, as stored (a CPU without bfloat16 emulates it several times slower: chapter 5 trains
    # its own run in float32 there)
    "vae": {"steps": {"full": 10_000, "cpu": 4_600, "smoke": 20}, "batch_size": 64, "log_every": 100,
            "z_dim": 16, "width": 32, "lr": 1e-3, "prior": "mixture", "policy": BF16_ON_CPU, "jit_compile": GPU_OWN},
    # chapter 9's conditional models: the same networks, told the class
    "cgan": {"steps": {"full": 10_000, "cpu": 1_800, "smoke": 20}, "batch_size": 128, "log_every": 100,
             "z_dim": 64, "width": 64, "lr": 1e-3, "policy": "float32", "jit_compile": GPU_OWN},
    "cvae": {"steps": {"full": 10_000, "cpu": 4_600, "smoke": 20}, "batch_size": 64, "log_every": 100,
             "z_dim": 16, "width": 32, "lr": 1e-3, "policy": BF16_ON_CPU, "jit_compile": GPU_OWN},
    # chapter 8's toy GAN: two small MLPs on a 2-D Gaussian mixture (helpers.data.toy), many steps per
    # compiled call (a step takes about a millisecond on a CPU; XLA was slower there)
    "toy": {"steps": {"full": 20_000, "cpu": 10_000, "smoke": 40}, "batch_size": 256,
            "log_every": {"full": 2_000, "cpu": 1_000, "smoke": 500},
            "z_dim": 2, "width": 128, "lr": 1e-3, "policy": "float32", "jit_compile": False},
    # chapter 11's diffusion model: a U-Net of widths 32/64/96, AdamW at 2e-3, an EMA of its weights, 20
    # DDIM steps (smoke: a narrow U-Net, so the tests sample it quickly)
    "diffusion": {"steps": {"full": 20_000, "cpu": 2_200, "smoke": 20}, "batch_size": 64, "log_every": 200,
                  "width": {"full": 32, "cpu": 32, "smoke": 8}, "lr": 2e-3, "ema": 0.999, "sample_steps": 20,
                  "policy": BF16_ON_CPU, "jit_compile": GPU_OWN},
}
STEPS_PER_EXECUTION = 10  # train steps per compiled call (fewer Python round trips; see fit_steps)
TOY_STEPS_PER_EXECUTION = 50  # the toy GAN's steps take about a millisecond


GANS, VAES, CONDITIONAL = ("dcgan", "cgan", "toy"), ("vae", "cvae"), ("cgan", "cvae")
IMAGES = ("dcgan", "cgan", "vae", "cvae", "diffusion")
KINDS = IMAGES + ("toy",)
POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def _pair(text: str, first):
    parts = str(text).split(":")
    if len(parts) != 2:
        raise ValueError(f"takes two values separated by ':', got {text!r}")
    return [first(parts[0]), float(parts[1]) if first is str else int(parts[1])]


def _shares(text: str):
    return [float(v) for v in str(text).split(",")]


def _flag(text: str) -> bool:
    return str(text).lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Setting:
    name: str
    default: object  # a value, or "recipe" (the recipe of the kind, e.g. its steps for the budget)
    kinds: tuple
    help: str
    parse: object = str  # text -> value (the command line)
    check: object = None  # value -> error text, or None when the value is fine
    choices: tuple | None = None
    cli: bool = True


def _at_least(n):
    return lambda v: None if v is None or v >= n else f"must be at least {n}"


def _positive(v):
    return None if v is None or v > 0 else "must be positive"


def _between(lo, hi):
    return lambda v: None if lo <= v <= hi else f"must be between {lo} and {hi}"


SETTINGS = [
    Setting("steps", "recipe", KINDS, "train until this step", int, _at_least(1)),
    Setting("batch_size", "recipe", KINDS, "images (points) per step", int, _at_least(1)),
    Setting("log_every", "recipe", KINDS, "steps between log rows, checkpoints and sample grids", int, _at_least(1)),
    Setting("seed", 0, KINDS, "seed of the weights, noise and data order", int),
    Setting("z_dim", "recipe", GANS + VAES, "size of the noise / latent code", int, _at_least(1)),
    Setting("width", "recipe", KINDS, "network width (diffusion: the U-Net's first; then 2x and 3x)", int,
            _at_least(1)),
    Setting("ema", "recipe", ("diffusion", "dcgan"), "decay of the weights' moving average that samples "
            "(chapter 11; a DCGAN's generator, chapter 7: default none)", float,
            lambda v: None if 0 <= v < 1 else "must be in [0, 1)"),
    Setting("sample_steps", "recipe", ("diffusion",), "DDIM steps of the scored samples (chapter 11)", int,
            _at_least(1)),
    Setting("lr", "recipe", KINDS, "learning rate", float, _positive),
    Setting("policy", "recipe", KINDS, "precision policy (default: the recipe's, else the device's)", str,
            choices=POLICIES),
    Setting("jit_compile", "recipe", KINDS, "compile with XLA (default: the device's choice)", _flag, cli=False),
    Setting("prior", "recipe", ("vae",), "sample codes from N(0, I) or from a Gaussian mixture fitted to the "
            "training digits' codes after training (chapter 5)", str, choices=("normal", "mixture")),
    Setting("augment", "", ("dcgan",), "differentiable augmentation of all the discriminator sees, e.g. "
            "translation,cutout (chapter 7)", lambda t: ",".join(choices.parse_augment(t))),
    Setting("loss", "non_saturating", ("dcgan", "toy"), "the GAN loss (chapter 8)", str, choices=choices.LOSSES),
    Setting("penalty", None, ("dcgan", "toy"), "a gradient penalty on the discriminator, which then has no batch "
            "norm (chapter 8)", str, choices=choices.PENALTIES),
    Setting("penalty_weight", 10.0, ("dcgan", "toy"), "weight of the penalty", float, _at_least(0)),
    Setting("d_steps", 1, ("dcgan", "toy"), "discriminator updates per generator update, each on its own batch",
            int, _at_least(1)),
    Setting("label_smoothing", 0.0, ("dcgan", "toy"), "one-sided label smoothing: real targets 1 - s", float,
            lambda v: None if 0 <= v < 0.5 else "must be in [0, 0.5)"),
    Setting("spectral_norm", False, ("dcgan", "toy"), "spectral normalisation in the discriminator (and no batch "
            "norm there)", _flag),
    Setting("d_lr", None, ("dcgan", "toy"), "the discriminator's learning rate (default: lr)", float, _positive),
    Setting("g_lr", None, ("dcgan", "toy"), "the generator's learning rate (default: lr)", float, _positive),
    Setting("beta_1", 0.5, ("dcgan", "cgan", "toy"), "Adam's beta_1 for both players", float, _between(0, 1)),
    Setting("beta_2", 0.999, ("dcgan", "cgan", "toy"), "Adam's beta_2 for both players", float, _between(0, 1)),
    Setting("clipnorm", None, ("dcgan", "toy"), "clip each gradient tensor's norm to this value", float,
            _positive),
    Setting("clusters", 0, ("dcgan",), "self-conditioning on K k-means clusters of the training pixels "
            "(chapter 9; 0: the plain DCGAN)", int, lambda v: None if v == 0 or v >= 2 else "is 0 or at least 2"),
    Setting("half", None, ("diffusion",), "train on one of two disjoint halves of the training split, 0 or 1, "
            "before train_size picks its images (chapter 11: two networks that share no image)", int,
            choices=(0, 1)),
    Setting("train_size", None, IMAGES, "train on N images, stratified by class (default: all)", int, _at_least(1)),
    Setting("imbalance", None, IMAGES, "keep these fractions of each class: ten comma-separated values", _shares,
            lambda v: None if len(v) == 10 and all(0 <= s <= 1 for s in v) else "takes 10 fractions in [0, 1]"),
    Setting("duplicate", None, IMAGES, "repeat one training image: INDEX:COPIES", lambda t: _pair(t, int)),
    Setting("corrupt", None, IMAGES, "corrupt the training images: KIND:LEVEL, KIND one of "
            + ", ".join(choices.CORRUPTIONS), lambda t: _pair(t, str),
            lambda v: None if v[0] in choices.CORRUPTIONS else f"kind must be one of {', '.join(choices.CORRUPTIONS)}"),
    Setting("canary", 0, IMAGES, "add COPIES copies of chapter 10's marked training digit", int, _at_least(0)),
    Setting("label_noise", 0.0, CONDITIONAL, "replace this fraction of the labels by random classes", float,
            _between(0, 1)),
    Setting("data", "recipe", KINDS, "what the model trains on: mnist or fashion (the image models), a toy "
            "mixture (the toy)", str, choices=choices.IMAGE_DATA + choices.TOYS),
    Setting("points", 10_000, ("toy",), "points in the toy training set", int, _at_least(1)),
    Setting("depth", 2, ("toy",), "hidden layers of the toy MLPs", int, _at_least(1)),
]
BY_NAME = {s.name: s for s in SETTINGS}
# Settings added after runs were stored: left out of a configuration while unset, so those runs keep their keys
UNSET_OMITTED = ("ema",)


def default(setting: Setting, kind: str, budget: str | None = None, device: bool = True):
    """The value a run of ``kind`` takes when ``setting`` is not given: the recipe's for ``budget`` (default:
    the one in force; on the full budget the GPU's own precision and XLA choice where the recipe leaves them
    open, or ``None`` without ``device``)."""
    if setting.default != "recipe":
        return setting.default
    if setting.name == "data":
        return "ring" if kind == "toy" else "mnist"
    value = RECIPES[kind].get(setting.name, "normal" if setting.name == "prior" else None)
    if isinstance(value, dict):  # one value per budget
        value = value[budget or runtime.budget()]
    if value is None and device and setting.name in ("policy", "jit_compile"):
        return runtime.device_choices()[setting.name]
    return value


def _check_value(s: Setting, value) -> None:
    if s.choices and value not in s.choices:
        raise ValueError(f"{s.name} must be one of {', '.join(map(str, s.choices))}, got {value!r}")
    problem = s.check(value) if s.check else None
    if problem:
        raise ValueError(f"{s.name} {problem}, got {value!r}")


def check(kind: str, values: dict) -> dict:
    """The settings given for a run of ``kind`` (``None`` ones left out), each checked without TensorFlow: an
    unknown name, a setting that does not apply to ``kind`` or a bad value is a ``ValueError`` that says why."""
    if kind not in KINDS:
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(KINDS)}")
    given = {k: v for k, v in values.items() if v is not None}
    unknown = sorted(set(given) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown setting(s) {unknown}; known: {sorted(BY_NAME)}")
    for name, value in given.items():
        if kind not in BY_NAME[name].kinds:
            raise ValueError(f"{name} applies to {', '.join(BY_NAME[name].kinds)}, not to {kind}")
        _check_value(BY_NAME[name], value)
    allowed = choices.TOYS if kind == "toy" else choices.IMAGE_DATA
    if given.get("data", allowed[0]) not in allowed:
        raise ValueError(f"a {kind} run trains on {', '.join(allowed)}, not on {given['data']!r}")
    return given


def validate(kind: str, values: dict) -> dict:
    """The whole configuration of a run of ``kind``: every setting that applies to it, at ``values`` where
    given (:func:`check`), else at its default."""
    given = check(kind, values)
    cfg = {"kind": kind}
    for s in SETTINGS:
        if kind not in s.kinds:
            continue
        if s.name in given:  # checked by check()
            cfg[s.name] = given[s.name]
            continue
        value = default(s, kind)
        if value is None and s.name in UNSET_OMITTED:
            continue
        if value is not None:
            _check_value(s, value)
        cfg[s.name] = value
    return cfg
