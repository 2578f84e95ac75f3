"""Runs as data: one training recipe over a grid of (condition x seed), every run cached on disk under a
key of its whole configuration, the results returned as one tidy table (a row per run).

Introduced in the data chapter (``07_data``); the command line (``python -m helpers train``) trains
through the same :func:`train`, so any run of a grid can be reproduced outside a notebook. A re-run of a
chapter loads what was already trained and trains only what changed; an interrupted run resumes from its
last checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import numpy as np

from . import data, runtime

# Bump when the training or scoring code changes what a cached run would contain.
CACHE_VERSION = 2
# The GAN's training variants (the instability chapter), at their defaults: the recipe's plain DCGAN.
GAN_DEFAULTS = {"loss": "non_saturating", "penalty": None, "penalty_weight": None, "d_steps": 1,
                "spectral_norm": False, "d_lr": None, "g_lr": None, "clipnorm": None}
# Settings added after runs were cached: a configuration holds them only when they differ from their default,
# so the runs cached before keep their keys.
LATER_DEFAULTS = {"label_smoothing": 0.0, "label_noise": 0.0, "canary": 0, "clusters": 0}
# The canary (challenges chapter): this training digit, marked (helpers.data.mark), appended ``canary`` times.
CANARY_INDEX = 0
# Data conditions, applied in this order to the training split: subset, imbalance, duplicate, corrupt.
DATA_KEYS = ("train_size", "imbalance", "duplicate", "corrupt")
DEFAULT_CACHE = os.path.join("runs", "experiments")


def config(kind: str, **overrides) -> dict:
    """The whole configuration of one run: the recipe of ``kind`` for the budget in force, the precision
    (the recipe's, else the device's), where the digits come from (``data_source``: a run on the offline
    subset is not the run on the full MNIST) and ``overrides`` (``steps``, ``batch_size``, ``seed``,
    ``width``, ``augment``, ``policy``,
    ``train_size``, ``imbalance`` (10 shares), ``duplicate`` ([index, copies]), ``canary`` (copies of the
    marked digit of :func:`canary`), ``corrupt`` ([kind, level]), ...). Unknown keys are an error, so a typo cannot silently train the default.

    ``kind="toy"`` is the instability chapter's MLP GAN on a 2-D mixture (:data:`helpers.training.TOY_RECIPE`;
    ``data="ring"`` or ``"grid"``, ``points`` in the training set, ``depth``); it takes the GAN settings
    (``loss``, ``penalty``, ``d_steps``, ...) as the DCGAN does."""
    from . import training

    if kind == "toy":
        return _toy_config(overrides)
    if kind not in training.RECIPES:
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(training.RECIPES)} or toy")
    recipe, gan = training.RECIPES[kind], kind in training.GANS
    cfg = {"kind": kind, "steps": recipe["steps"][runtime.budget()], "batch_size": recipe["batch_size"],
           "log_every": recipe["log_every"], "seed": 0, "z_dim": recipe["z_dim"], "width": recipe["width"],
           "lr": recipe["lr"], "augment": "", "prior": recipe.get("prior", "normal"),
           **(GAN_DEFAULTS if gan else {}), **{k: None for k in DATA_KEYS},
           "scale": (training.GAN if gan else training.VAE).scale, **runtime.device_choices(),
           **({"policy": recipe["policy"]} if "policy" in recipe else {}),
           **({"clusters": recipe["clusters"]} if recipe.get("clusters") else {}),
           "data_source": data.mnist_source()}
    optional = ({"label_smoothing"} if gan else set()) | ({"label_noise"} if kind in training.CONDITIONAL else set())
    optional |= {"canary"} | ({"clusters"} if kind == "dcgan" else set())
    if overrides.get("label_noise") and kind not in training.CONDITIONAL:
        raise ValueError("label_noise applies to the conditional models (cgan, cvae), which train on labels")
    _override(cfg, overrides, optional)
    if not gan and cfg["augment"]:
        raise ValueError("augment applies to the GAN's discriminator; the VAE has none")
    gan_only = sorted(k for k in GAN_DEFAULTS if k in overrides and overrides[k] is not None)
    if not gan and gan_only:
        raise ValueError(f"{', '.join(gan_only)} apply to the GAN; the VAE has no discriminator")
    if gan:
        _check_gan(cfg)
    if int(cfg.get("clusters", 0)) < 0 or int(cfg.get("clusters", 0)) == 1:
        raise ValueError(f"clusters is 0 (a plain DCGAN) or the number of k-means clusters, at least 2; "
                         f"got {cfg['clusters']}")
    if int(cfg.get("canary", 0)) < 0:
        raise ValueError(f"canary is a number of copies of the marked digit, >= 0; got {cfg['canary']}")
    if not 0.0 <= float(cfg.get("label_noise", 0.0)) <= 1.0:
        raise ValueError(f"label_noise is a fraction of the labels, between 0 and 1; got {cfg['label_noise']}")
    if cfg["prior"] not in ("normal", "mixture") or (kind != "vae" and cfg["prior"] != "normal"):
        raise ValueError(f"prior must be 'normal' or, for the VAE, 'mixture' (a Gaussian mixture fitted to the "
                         f"codes of the training digits after training); got {cfg['prior']!r}")
    cfg["augment"] = ",".join(training.parse_augment(cfg["augment"]))
    return _positive(cfg, ("steps", "batch_size", "log_every", *(["d_steps"] if gan else [])))


def _toy_config(overrides: dict) -> dict:
    from . import training

    recipe = training.TOY_RECIPE
    cfg = {"kind": "toy", "data": "ring", "points": recipe["points"], "steps": recipe["steps"][runtime.budget()],
           **{k: recipe[k] for k in ("batch_size", "log_every", "z_dim", "width", "depth", "lr")}, "seed": 0,
           **GAN_DEFAULTS, "policy": recipe["policy"], "jit_compile": recipe["jit_compile"]}
    _override(cfg, overrides, LATER_DEFAULTS.keys())
    if cfg["data"] not in data.TOYS:
        raise ValueError(f"data must be one of {', '.join(data.TOYS)}, got {cfg['data']!r}")
    _check_gan(cfg)
    return _positive(cfg, ("steps", "batch_size", "log_every", "d_steps", "points", "z_dim", "width", "depth"))


def _override(cfg: dict, overrides: dict, optional) -> None:
    """Apply ``overrides`` to ``cfg``; ``optional`` keys (of :data:`LATER_DEFAULTS`) only when not at their
    default. Unknown keys are an error."""
    unknown = {k for k, v in overrides.items() if v is not None} - set(cfg) - set(GAN_DEFAULTS) - set(optional)
    if unknown:
        raise ValueError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(set(cfg) | set(optional))}")
    for k, v in overrides.items():
        if k in LATER_DEFAULTS and v == LATER_DEFAULTS[k]:
            cfg.pop(k, None)  # at its default: not stored, so the key is the one it had before the setting existed
        elif v is not None:
            cfg[k] = v


def _check_gan(cfg: dict) -> None:
    from . import training

    if cfg["loss"] not in training.LOSSES or cfg["penalty"] not in training.PENALTIES:
        raise ValueError(f"loss must be one of {training.LOSSES} and penalty one of {training.PENALTIES}; "
                         f"got {cfg['loss']!r}, {cfg['penalty']!r}")
    if cfg.get("label_smoothing") and cfg["loss"] not in ("non_saturating", "saturating"):
        raise ValueError(f"label_smoothing applies to the cross-entropy losses, not to {cfg['loss']!r}")


def _positive(cfg: dict, keys) -> dict:
    for key in keys:
        if int(cfg[key]) < 1:
            raise ValueError(f"{key} must be a positive integer, got {cfg[key]}")
    # json round trip: tuples become lists, so a configuration equals the one read back from disk
    return json.loads(json.dumps(cfg))


def training_data(cfg: dict, verbose: bool = False):
    """The training images and labels of a run (the data conditions of ``cfg`` applied to MNIST's
    training split, ``label_noise`` to its labels) and the real held-out test images. The canary's copies
    come after the other conditions' images."""
    (x, y), (x_test, _) = data.load_mnist(seed=0, verbose=verbose)
    seed = cfg["seed"]
    if cfg.get("train_size"):
        x, y = data.subset(x, y, cfg["train_size"], seed=seed)
    if cfg.get("imbalance"):
        x, y = data.imbalance(x, y, cfg["imbalance"], seed=seed)
    if cfg.get("duplicate"):
        x, y = data.duplicate(x, y, *cfg["duplicate"])
    if cfg.get("corrupt"):
        x = data.corrupt(x, *cfg["corrupt"], seed=seed)
    if cfg.get("label_noise"):
        y = data.noisy_labels(y, cfg["label_noise"], seed=seed)
    if cfg.get("canary"):
        x, y = data.add_canary(x, y, *canary(), cfg["canary"])
    return x, y, x_test


def canary():
    """The canary of the challenges chapter: training digit :data:`CANARY_INDEX`, marked with
    :func:`helpers.data.mark`, and its class, ``(image (28, 28), label)``."""
    (x, y), _ = data.load_mnist(seed=0, verbose=False)
    return data.mark(x[CANARY_INDEX:CANARY_INDEX + 1])[0], int(y[CANARY_INDEX])


def toy_data(cfg: dict):
    """The points of a toy run (``cfg["points"]`` from its mixture, drawn with the run's seed), the
    mixture's centres and its component standard deviation."""
    return data.toy(cfg["data"], cfg["points"], seed=cfg["seed"])


def build(cfg: dict, shares=None):
    """The compiled model of a run and the network ``sample`` loads (the GAN's generator; for the VAE
    the decoder with a sigmoid, so it outputs pixel means). ``cgan`` and ``cvae`` build the conditional
    networks (their samplers take ``[noise, labels]``); ``toy`` the MLPs of the instability chapter. A
    self-conditioned DCGAN (``clusters``) builds the conditional networks with one class per cluster, and a
    sampler that takes noise only and picks the clusters in proportion to ``shares`` (their shares of the
    training set; equal when not given)."""
    from . import models, training

    gan_options = {k: cfg.get(k, GAN_DEFAULTS[k]) for k in ("d_lr", "g_lr", "clipnorm", "loss", "d_steps")}
    gan_options.update(gradient_penalty=cfg.get("penalty"), penalty_weight=cfg.get("penalty_weight"),
                       label_smoothing=cfg.get("label_smoothing", 0.0))
    if cfg["kind"] == "toy":
        model = training.make_gan(
            models.mlp_generator(cfg["z_dim"], cfg["width"], cfg["depth"]),
            models.mlp_discriminator(cfg["width"], cfg["depth"], spectral_norm=cfg["spectral_norm"]),
            seed=cfg["seed"], lr=cfg["lr"], jit_compile=cfg["jit_compile"],
            steps_per_execution=training.TOY_RECIPE["steps_per_execution"], **gan_options)
        return model, model.generator
    k = training.NUM_CLASSES if cfg["kind"] in training.CONDITIONAL else cfg.get("clusters") or None
    if cfg["kind"] in training.GANS:
        options = dict(spectral_norm=cfg["spectral_norm"], batch_norm=cfg["penalty"] is None)  # a penalty needs
        model = training.make_gan(                                                          # per-image outputs
            models.cdcgan_generator(cfg["z_dim"], cfg["width"], k) if k else
            models.dcgan_generator(cfg["z_dim"], cfg["width"]),
            models.cdcgan_discriminator(cfg["width"], k, **options) if k else
            models.dcgan_discriminator(cfg["width"], **options), num_classes=k,
            seed=cfg["seed"], lr=cfg["lr"], jit_compile=cfg["jit_compile"], augment=cfg["augment"] or None,
            steps_per_execution=training.STEPS_PER_EXECUTION, **gan_options,
        )
        if cfg.get("clusters"):
            return model, models.self_conditioned_sampler(model.generator, np.full(k, 1 / k) if shares is None
                                                          else shares)
        return model, model.generator
    model = training.make_vae(
        models.cvae_encoder(cfg["z_dim"], cfg["width"], k) if k else models.vae_encoder(cfg["z_dim"], cfg["width"]),
        models.cvae_decoder(cfg["z_dim"], cfg["width"], k) if k else models.vae_decoder(cfg["z_dim"], cfg["width"]),
        seed=cfg["seed"], lr=cfg["lr"], jit_compile=cfg["jit_compile"], num_classes=k,
        steps_per_execution=training.STEPS_PER_EXECUTION,
    )
    return model, vae_sampler(model)


def vae_sampler(vae, prior=None):
    """The network ``sample`` loads for a VAE: standard normal noise in, pixel means out (the decoder and a
    sigmoid, after ``prior``, a :class:`helpers.models.MixturePrior`, when there is one). A conditional
    VAE's sampler takes ``[noise, labels]``."""
    import keras

    if vae.num_classes:  # [z, label] -> pixel means
        z, y = keras.Input((vae.z_dim,), name="z"), keras.Input((), dtype="int32", name="label")
        out = keras.layers.Activation("sigmoid", dtype="float32")(vae.decoder([z, y]))
        return keras.Model([z, y], out, name="cvae_sampler")
    width = vae.z_dim + 1 if prior is not None else vae.z_dim
    layers = [keras.Input((width,)), *([prior] if prior is not None else []), vae.decoder,
              keras.layers.Activation("sigmoid", dtype="float32")]
    return keras.Sequential(layers, name="vae_sampler")


def load_sampler(folder: str):
    """The sampling network of the run in ``folder`` (``generator.keras``): noise of its input width in,
    images in the run's scale out."""
    import keras

    from . import models  # noqa: F401  (registers MixturePrior for loading)

    return keras.models.load_model(os.path.join(folder, "generator.keras"), compile=False)


def train(cfg: dict, out: str, resume: bool = False, verbose: int = 2, callbacks=()):
    """Train the run ``cfg`` into the folder ``out`` (config.json, log.csv, samples/, checkpoint/,
    generator.keras) up to ``cfg["steps"]`` steps and return ``(model, x_train, info)``, ``info`` holding
    ``labels`` (of the training images; ``None`` for a toy run), ``from_step`` (where this call started),
    ``steps``, ``seconds`` (training time of this call), ``history`` (the logged values of this call, one per
    log row) and ``sampler`` (the network saved as ``generator.keras``; for a VAE with ``prior="mixture"`` it
    includes the mixture fitted after training). ``resume=True`` continues from the last checkpoint in ``out``
    (or extends a finished run to more steps); ``callbacks`` run after the run's own (NaN guard, CSV log, sample
    grids, checkpoint). Raises :class:`helpers.callbacks.TrainingDiverged` if a loss becomes NaN, ``ValueError``
    if the checkpoint does not fit ``cfg``. Introduced in the hands-on GAN chapter (as the command line's
    ``train``), moved here in the data chapter.
    """
    from . import callbacks as cb
    from . import models, training

    ckpt = os.path.join(out, "checkpoint")
    toy, conditional = cfg["kind"] == "toy", cfg["kind"] in training.CONDITIONAL
    if toy:
        x_train, y_train, x_test = toy_data(cfg)[0], None, None
    else:
        x_train, y_train, x_test = training_data(cfg)
    per_step = cfg["batch_size"] * cfg.get("d_steps", 1)  # real images per step: a batch per D update
    if len(x_train) < per_step:
        raise ValueError(f"the training set has {len(x_train)} images, fewer than the {per_step} one step needs; "
                         f"use a smaller batch_size (or d_steps)")
    clusters, shares = int(cfg.get("clusters", 0)), None
    if clusters:  # self-conditioning: k-means clusters of the training pixels play the labels
        y_model = data.clusters(x_train, clusters, seed=cfg["seed"])
        shares = np.bincount(y_model, minlength=clusters) / len(y_model)
    else:
        y_model = y_train if conditional else None
    with runtime.precision(cfg["policy"]):
        runtime.seed_everything(cfg["seed"])
        model, sampler = build(cfg, shares)
        start = cb.restore(model, ckpt) if resume else 0
        if start > cfg["steps"]:
            raise ValueError(f"{out} has already trained {start} steps, more than the {cfg['steps']} asked for")
        os.makedirs(out, exist_ok=True)
        _write_json(os.path.join(out, "config.json"), cfg)
        if toy:
            ds = data.make_point_dataset(x_train, batch_size=per_step, seed=cfg["seed"])
        else:
            ds = data.make_dataset(x_train, y_model, batch_size=per_step, scale=cfg["scale"], seed=cfg["seed"],
                                   num_classes=clusters or training.NUM_CLASSES).repeat()
        held_out = None
        if cfg["kind"] in training.VAES:  # the held-out negative ELBO and its parts, at every log row
            _, (_, y_test) = data.load_mnist(seed=0, verbose=False)
            held_out = data.make_dataset(x_test, y_test if conditional else None, batch_size=500,
                                         scale=cfg["scale"], shuffle=False, drop_remainder=False)
        rows = max(1, cfg["steps"] // cfg["log_every"])
        run_callbacks = [
            cb.NaNGuard(ckpt),
            cb.CSVLog(os.path.join(out, "log.csv"), per_step),
            cb.SampleGrid(n=1000 if toy else 100 if conditional else 64, out_dir=os.path.join(out, "samples"),
                          every=cfg["log_every"] * max(1, rows // 10)),
            cb.Checkpoint(ckpt, sampler, os.path.join(out, "generator.keras")),
            *callbacks,
        ]
        t0 = time.perf_counter()
        history = training.fit_steps(model, ds, cfg["steps"], cfg["log_every"], run_callbacks,
                                     validation_data=held_out, verbose=verbose)
        seconds = time.perf_counter() - t0
        saved = os.path.join(out, "generator.keras")
        if start == cfg["steps"] and os.path.exists(saved):  # nothing trained: keep what the run saved
            sampler = load_sampler(out)
        if cfg.get("prior") == "mixture" and not any(isinstance(l, models.MixturePrior) for l in sampler.layers):
            # fitted to the finished model's codes; replaces the N(0, I) sampler the checkpoints saved
            sampler = vae_sampler(model, training.fit_mixture_prior(model, x_train, seed=cfg["seed"]))
            sampler.save(saved)
        elif not os.path.exists(saved):  # steps == 0
            sampler.save(saved)
    return model, x_train, {"labels": y_train, "from_step": start, "steps": cfg["steps"], "seconds": seconds,
                            "history": history.history, "sampler": sampler}


def _write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.replace(tmp, path)


def sample(sampler, n: int, cfg: dict, seed: int = 1234, label: int | None = None):
    """``n`` uint8 samples ``(n, 28, 28)`` of a run's sampler from seeded standard normal noise, and their
    labels: for a conditional run every sample of class ``label``, or (``None``) the classes spread evenly
    (``0, 1, ..., 9, 0, 1, ...``); ``None`` for an unconditional run (which takes no ``label``)."""
    from . import training

    conditional = cfg["kind"] in training.CONDITIONAL
    if label is not None and not conditional:
        raise ValueError(f"this {cfg['kind']} run is not conditional: it cannot be asked for a class; "
                         f"train a cgan or cvae for that")
    width = int((sampler.input_shape[0] if conditional else sampler.input_shape)[-1])
    z = np.random.default_rng(seed).standard_normal((n, width)).astype("float32")
    labels = None
    if conditional:
        labels = np.arange(n) % training.NUM_CLASSES if label is None else np.full(n, label)
        labels = data.check_labels(labels, training.NUM_CLASSES)
    out = [sampler([z[i:i + 500], labels[i:i + 500]] if conditional else z[i:i + 500], training=False)
           for i in range(0, n, 500)]
    return data.to_uint8(np.concatenate([np.asarray(o, np.float32) for o in out]), cfg["scale"]), labels


def score(model, cfg: dict, x_train, sampler, n: int = 1000, seed: int = 1234,
          y_train=None) -> tuple[dict, np.ndarray, np.ndarray | None]:
    """Score a trained run against the real held-out digits: FID, KID, IS, precision/recall and the
    class shares of ``n`` samples of ``sampler`` (shipped classifier), the copy check (median
    nearest-training-image distance of the samples and of held-out digits,
    :func:`helpers.metrics.copy_distances`), and for the VAE the negative ELBO on the training and held-out
    images. A toy run is scored by :func:`helpers.metrics.mode_coverage` of ``2.5 n`` samples (2,500, as
    VEEGAN and PacGAN count). A conditional run asks for the classes in turn and adds ``agreement`` (the
    share of samples the shipped classifier puts in the class asked for) and ``agreement_0`` ... ``_9``;
    its VAE ELBOs use the training labels ``y_train``. Returns ``(row, samples, labels)`` (``labels``:
    the classes asked for, ``None`` for an unconditional run)."""
    from . import metrics, training

    if cfg["kind"] == "toy":
        _, centres, std = toy_data(cfg)
        z = np.random.default_rng(seed).standard_normal((n * 5 // 2, cfg["z_dim"])).astype("float32")
        samples = np.asarray(sampler(z, training=False), np.float32)
        return metrics.mode_coverage(samples, centres, std), samples, None
    _, (x_test, y_test) = data.load_mnist(seed=0, verbose=False)  # the held-out digits, never changed
    samples, labels = sample(sampler, n, cfg, seed=seed)
    row = metrics.evaluate(samples, x_test)
    row = {k: row[k] for k in ("fid", "kid", "is", "precision", "recall")}
    rec = metrics.recognition(samples)
    row["confidence"], row["classes"] = rec["mean_confidence"], rec["classes_at_2pct"]
    row.update({f"share_{c}": s for c, s in enumerate(rec["class_shares"])})
    to_train, test_to_train = metrics.copy_distances(samples, x_train, x_test)
    row["nn_sample"], row["nn_heldout"] = float(np.median(to_train)), float(np.median(test_to_train))
    row["copy_ratio"] = row["nn_sample"] / row["nn_heldout"]
    if labels is not None:  # a conditional model: does the classifier see the class that was asked for?
        predicted = metrics.class_probabilities(samples).argmax(1)
        row["agreement"] = float(np.mean(predicted == labels))
        row.update({f"agreement_{c}": float(np.mean(predicted[labels == c] == c)) for c in range(training.NUM_CLASSES)})
    if cfg["kind"] in training.VAES:
        for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            ds = data.make_dataset(x, y if labels is not None else None, batch_size=500, scale=cfg["scale"],
                                   shuffle=False, drop_remainder=False)
            row[f"neg_elbo_{name}"] = float(model.evaluate(ds, verbose=0, return_dict=True)["neg_elbo"])
    return row, samples, labels


def key(cfg: dict) -> str:
    """The cache key of a configuration: a hash of all its settings (and of :data:`CACHE_VERSION`)."""
    text = json.dumps({"v": CACHE_VERSION, **cfg}, sort_keys=True)
    return f"{cfg['kind']}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def cache_dir(path: str | None = None) -> str:
    """Where runs are cached: ``path``, else ``$GENAI_CACHE``, else ``runs/experiments`` (relative to
    the working directory, i.e. beside the notebook)."""
    return path or os.environ.get("GENAI_CACHE") or DEFAULT_CACHE


def images_seen(cfg: dict) -> int:
    """Real training images a run draws: steps x batch size (x d_steps for a GAN whose discriminator
    makes several updates per step)."""
    return cfg["steps"] * cfg["batch_size"] * cfg.get("d_steps", 1)


def run_dir(cfg: dict, cache: str | None = None) -> str:
    """The folder a run of ``cfg`` is kept in: ``cache_dir(cache)/key(cfg)``."""
    return os.path.join(cache_dir(cache), key(cfg))


def run(cfg: dict, cache: str | None = None, verbose: int = 0) -> dict:
    """Train and score one configuration, or load it from the cache if it was done before. Returns the
    run's row: its settings, ``images`` (training images), ``images_seen`` (steps x batch), ``wall_s``
    (training seconds, when it was trained), ``status`` (``"ok"`` or ``"diverged"``), the scores of
    :func:`score`, ``cached`` and ``dir`` (the run folder, with ``samples.npy`` and ``generator.keras``)."""
    from . import callbacks

    folder = run_dir(cfg, cache)
    result_path = os.path.join(folder, "result.json")
    if os.path.exists(result_path):
        with open(result_path) as f:
            row = json.load(f)
        return {**row, "cached": True, "dir": folder}
    try:
        # an interrupted run left a checkpoint: continue it
        model, x_train, info = train(cfg, folder, resume=True, verbose=verbose)
    except callbacks.TrainingDiverged as err:
        row = {**cfg, "images_seen": images_seen(cfg), "status": "diverged", "error": str(err)}
        _write_json(result_path, row)  # the checkpoint before the divergence stays, as the message says
        return {**row, "cached": False, "dir": folder}
    return record(cfg, model, x_train, info, cache)


def record(cfg: dict, model, x_train, info: dict, cache: str | None = None) -> dict:
    """Score a model trained with the settings ``cfg`` (by :func:`train`, which returned ``info``, e.g. in
    a chapter that shows the training) and keep it in the cache as :func:`run` would: ``samples.npy``,
    the whole model's weights (``model.weights.h5``, read by :func:`load_model`) and ``result.json`` in
    :func:`run_dir`, the checkpoint removed. Returns the run's row (``wall_s``: the
    training time in the run's log, across resumes). Introduced in the
    hands-on GAN chapter, so that later chapters load the chapter's run instead of training it again."""
    folder = run_dir(cfg, cache)
    scores, samples, labels = score(model, cfg, x_train, info["sampler"], y_train=info.get("labels"))
    log = os.path.join(folder, "log.csv")  # its wall_s adds up the training time across resumes
    wall = float(np.atleast_1d(np.genfromtxt(log, delimiter=",", names=True)["wall_s"])[-1]) \
        if os.path.exists(log) else info["seconds"]
    row = {**cfg, "images_seen": images_seen(cfg), "images": len(x_train), "wall_s": wall,
           "status": "ok", **scores}
    np.save(os.path.join(folder, "samples.npy"), samples)
    model.save_weights(os.path.join(folder, WEIGHTS))  # for load_model: the discriminator, the encoder, ...
    if labels is not None:
        np.save(os.path.join(folder, "samples.labels.npy"), labels)
    _write_json(os.path.join(folder, "result.json"), row)  # the run counts as done only once its row is written
    shutil.rmtree(os.path.join(folder, "checkpoint"), ignore_errors=True)  # finished: keep the results only
    return {**row, "cached": False, "dir": folder}


WEIGHTS = "model.weights.h5"


def run_config(folder: str) -> dict:
    """The configuration a run folder was trained with (its ``config.json``)."""
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: {folder} is not a run folder")
    with open(path) as f:
        return json.load(f)


def load_model(folder: str):
    """The whole trained model of a cached run (a GAN with its discriminator, a VAE with its encoder), as
    :func:`record` saved it, and the run's configuration: ``(model, cfg)``. Introduced in the challenges
    chapter, whose membership inference needs the discriminator and the encoder, not only the sampler."""
    path = os.path.join(folder, WEIGHTS)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: this run was cached before whole models were kept "
                                f"(or is not finished); delete {folder} and run it again to keep its model")
    cfg = run_config(folder)
    with runtime.precision(cfg["policy"]):
        model, _ = build(cfg)
        model.load_weights(path)
    return model, cfg


def membership_scores(model, cfg: dict, images, labels=None) -> np.ndarray:
    """White-box membership scores of uint8 images ``(N, 28, 28)``, higher meaning "more likely a training
    image": a GAN's discriminator logit (Hayes et al. 2019, LOGAN) or a VAE's ELBO, i.e. minus its
    negative ELBO per image (Hilprecht et al. 2019). A conditional model needs the images' ``labels``."""
    from . import training

    a, b = data.SCALES[cfg["scale"]]
    x = data.check_images(images).astype("float32") / a + b
    out = []
    for i in range(0, len(x), 500):
        y = None if labels is None else np.asarray(labels)[i:i + 500]  # the model checks them
        if cfg["kind"] in training.GANS:
            out.append(np.asarray(model.discriminate(x[i:i + 500], y), np.float64).reshape(-1))
        else:
            out.append(-np.asarray(model.neg_elbo_per_image(x[i:i + 500], y), np.float64))
    return np.concatenate(out)


def membership(row: dict, members: int = 1000, samples: int = 10_000, seed: int = 0) -> dict:
    """Membership inference against the cached run ``row`` (a row of :func:`grid`'s table): can its
    training digits be told from the held-out ones? Up to ``members`` of its training images (the
    canary's copies excluded) against the 1,000 held-out digits, two attacks, each an AUC with its
    standard error (:func:`helpers.metrics.membership_auc`; 0.5 is chance):

    - ``white``: the model's own score (:func:`membership_scores`: discriminator logit, or ELBO);
    - ``black``: only ``samples`` generated digits: a digit is judged a member the closer its nearest
      sample is, in pixels (Chen et al. 2020, GAN-Leaks). Pixels, not the shipped classifier's features:
      that classifier was trained on the training split, so its features would favour members anyway.

    Returns ``{"auc_white", "se_white", "auc_black", "se_black", "members", "nonmembers"}``."""
    from . import metrics, training

    model, cfg = load_model(row["dir"])
    x_train, y_train, x_test = training_data(cfg)
    _, (_, y_test) = data.load_mnist(seed=0, verbose=False)
    n = len(x_train) - int(cfg.get("canary", 0))  # the canary's copies are not ordinary members
    pick = np.random.default_rng(seed).permutation(n)[:members]
    inside, outside = x_train[pick], x_test
    conditional = cfg["kind"] in training.CONDITIONAL
    labels_in, labels_out = (y_train[pick], y_test) if conditional else (None, None)
    out = {"members": len(inside), "nonmembers": len(outside)}
    out["auc_white"], out["se_white"] = metrics.membership_auc(
        membership_scores(model, cfg, inside, labels_in), membership_scores(model, cfg, outside, labels_out))
    fake, _ = sample(load_sampler(row["dir"]), samples, cfg, seed=seed + 1)
    out["auc_black"], out["se_black"] = metrics.membership_auc(
        -metrics.nearest_distances(inside, fake, "pixels"), -metrics.nearest_distances(outside, fake, "pixels"))
    return out


def _init_worker(threads: int) -> None:
    # A worker's own output (TensorFlow's C++ start-up lines, download attempts) would land in the
    # notebook between the progress lines: silence it. Its exceptions still reach the caller.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def grid(conditions: dict, seeds=(0, 1, 2), cache: str | None = None, progress: bool = True, workers: int = 1):
    """Run every condition with every seed and return one tidy ``pandas.DataFrame`` (a row per run, a
    ``condition`` column with the condition's name). ``conditions`` maps a name to the settings of
    :func:`config`, e.g. ``{"n=500": {"kind": "dcgan", "train_size": 500}}``. Cached runs load in
    milliseconds; one progress line per run says what was trained or loaded.

    ``workers=2`` trains two runs at a time in separate processes, one thread each: small networks use
    two CPU cores better that way (measured about 1.3x on a 2-core machine). Keep 1 on a GPU.
    """
    import pandas as pd
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # every run builds new models: TensorFlow's retracing notice is expected
    jobs = []
    for name, settings in conditions.items():
        settings = dict(settings)
        kind = settings.pop("kind")
        jobs += [(name, config(kind, **{**settings, "seed": seed})) for seed in seeds]
    rows, start = [None] * len(jobs), time.perf_counter()

    def report(i, name, cfg, row):
        rows[i] = {"condition": name, **row}
        if progress:
            what = ("cached" if row["cached"] else "stopped" if row["status"] != "ok" else
                    f"trained {cfg['steps']} steps in {row['wall_s']:.1f} s")
            result = ("DIVERGED" if row["status"] != "ok" else f"FID {row['fid']:.1f}" if "fid" in row else
                      f"{row['modes']} modes, {row['high_quality']:.0%} high quality")
            done = sum(r is not None for r in rows)
            print(f"[{done}/{len(jobs)}] {cfg['kind']} {name} seed {cfg['seed']}: {what}, {result} "
                  f"({time.perf_counter() - start:.0f} s so far)", flush=True)

    todo = []
    for i, (name, cfg) in enumerate(jobs):
        if workers > 1 and not os.path.exists(os.path.join(run_dir(cfg, cache), "result.json")):
            todo.append(i)
        else:
            report(i, name, cfg, run(cfg, cache))
    if todo:
        from concurrent.futures import as_completed

        futures = {_pool(workers).submit(run, jobs[i][1], cache_dir(cache)): i for i in todo}
        for future in as_completed(futures):
            i = futures[future]
            report(i, jobs[i][0], jobs[i][1], future.result())
    return pd.DataFrame(rows)


_pools: dict = {}


def _pool(workers: int):
    """One pool of worker processes per size, kept for the session (TensorFlow starts once per worker)."""
    if workers not in _pools:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # a fresh TensorFlow in each worker
        _pools[workers] = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(1,))
    return _pools[workers]


def summarize(table, metrics=("fid",), by="condition", text: bool = False):
    """Mean and standard error (std / sqrt(runs)) of ``metrics`` per ``by`` group, in the order the
    groups first appear. ``text=True`` gives strings ``"mean ± se"`` for display."""
    import pandas as pd

    groups = table.groupby(by, sort=False)
    out = {}
    for m in metrics:
        mean, se, n = groups[m].mean(), groups[m].std(ddof=1) / np.sqrt(groups[m].count()), groups[m].count()
        if text:
            out[m] = [f"{a:.3g} ± {b:.2g}" for a, b in zip(mean, se)]
        else:
            out[f"{m}_mean"], out[f"{m}_se"] = mean.values, se.values
    frame = pd.DataFrame(out, index=mean.index)
    frame["runs"] = n.values
    return frame


def difference(table, a: str, b: str, metric: str = "fid", by: str = "condition") -> tuple[float, float]:
    """Mean of ``metric`` in group ``b`` minus its mean in group ``a``, with the standard error of that
    difference (independent runs: the two standard errors added in quadrature)."""
    s = summarize(table, [metric], by=by)
    return (float(s.loc[b, f"{metric}_mean"] - s.loc[a, f"{metric}_mean"]),
            float(np.hypot(s.loc[a, f"{metric}_se"], s.loc[b, f"{metric}_se"])))


def load_samples(table, condition: str, seed: int = 0) -> np.ndarray:
    """The scored samples of one run of a grid's table: 1,000 uint8 images ``(N, 28, 28)``, or for a toy
    run 2,500 float32 points ``(N, 2)``. A conditional run's classes are beside them, in
    ``samples.labels.npy`` (0, 1, ..., 9, 0, 1, ...)."""
    row = table[(table["condition"] == condition) & (table["seed"] == seed)]
    if row.empty:
        raise KeyError(f"no run of condition {condition!r} with seed {seed} in this table")
    return np.load(os.path.join(row["dir"].iloc[0], "samples.npy"))
