"""Runs as data: one recipe over a grid of (condition x seed), every run cached on disk under a key of its
whole configuration, the results returned as one tidy table (a row per run). Each model family
(:data:`FAMILIES`) knows how to build, sample and score itself, so nothing here branches on the kind.

Introduced in chapter 3 (a run kept for chapter 6), used by chapters 5 to 10; the command line
(``python -m helpers train``) trains through the same :func:`train`. A re-run of a chapter loads what was
already trained and trains only what changed; an interrupted run resumes from its last checkpoint.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import numpy as np

from . import data, runtime, settings, store, training, variants
from .training import STEPS_PER_EXECUTION, TOY_STEPS_PER_EXECUTION

# Bump when the training or scoring code changes what a cached run would contain.
CACHE_VERSION = 4
# The canary (chapter 10): this training digit, marked (helpers.data.mark), appended ``canary`` times.
CANARY_INDEX = 0
DEFAULT_CACHE = os.path.join("runs", "experiments")
WEIGHTS = "model.weights.h5"
VARIANT_KEYS = ("loss", "penalty", "d_steps", "label_smoothing")  # settings that need chapter 8's VariantGAN


def config(kind: str, **overrides) -> dict:
    """The whole configuration of one run: every setting of :data:`helpers.settings.SETTINGS` that applies
    to ``kind`` (the recipe for the budget in force where not given), the pixel ``scale`` and where the
    digits come from (``data_source``: a run on the offline subset is not the run on the full MNIST).
    Unknown or inapplicable settings and bad values are errors, so a typo cannot silently train the
    default. Introduced in chapter 3."""
    cfg = settings.validate(kind, overrides)
    family = FAMILIES[kind]
    if "augment" in cfg:
        cfg["augment"] = ",".join(variants.parse_augment(cfg["augment"]))
    family.check(cfg)
    cfg["scale"] = family.scale
    if cfg["data"] == "mnist":  # the offline subset or the whole MNIST (Fashion-MNIST is whole either way)
        cfg["data_source"] = data.mnist_source()
    return json.loads(json.dumps(cfg))  # tuples become lists: equal to the configuration read back from disk


def training_data(cfg: dict, verbose: bool = False):
    """The training images and labels of an image run (its data conditions applied to the training split
    of its ``data``, MNIST or Fashion-MNIST, in the order half, subset, imbalance, duplicate, corrupt, label
    noise, canary) and the real held-out test images."""
    (x, y), (x_test, _) = data.load_images(cfg["data"], verbose=verbose)
    seed = cfg["seed"]
    if cfg.get("half") is not None:
        x, y = data.half(x, y, cfg["half"])
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
        x, y = data.add_canary(x, y, *canary(cfg["data"]), cfg["canary"])
    return x, y, x_test


def canary(name: str = "mnist"):
    """The canary of chapter 10: training image :data:`CANARY_INDEX` of the data set ``name``, marked
    with :func:`helpers.data.mark`, and its class, ``(image (28, 28), label)``."""
    (x, y), _ = data.load_images(name)
    return data.mark(x[CANARY_INDEX:CANARY_INDEX + 1])[0], int(y[CANARY_INDEX])


# ----------------------------------------------------------------------------------------- families
class Family:
    """What a model family does differently: its networks and model class, its data, its sampler and how
    its samples are scored. ``conditional`` families train on (images, labels) and are asked for classes."""

    scale, conditional, gan = "tanh", False, True
    keep_snapshots = False  # does a stored run keep the sample grids saved during training?

    def check(self, cfg: dict) -> None:
        pass

    def finish(self, model, sampler, cfg, x_train, path):
        """The sampler of a trained run (the one :func:`train` built, or read back from ``path``), after any
        last step the family takes; saved to ``path`` when that changes it."""
        return sampler

    def data(self, cfg: dict):
        """``(x_train, y_train, x_test)``: the images (or points) a run trains on."""
        return training_data(cfg)

    def dataset(self, cfg, x, y, labels, batch: int):
        return data.make_dataset(x, labels, batch_size=batch, scale=self.scale, seed=cfg["seed"],
                                 num_classes=cfg.get("clusters") or 10).repeat()

    def held_out(self, cfg, x_train, x_test, labels=None):
        """What the log evaluates at every row (``validation_data``), or ``None``."""
        return None

    def train_labels(self, cfg, x, y):
        """The labels the model trains on (``None`` for an unconditional one) and the sampler's shares."""
        return (y if self.conditional else None), None

    def sample(self, sampler, n: int, cfg: dict, seed: int = 1234, label: int | None = None):
        """``n`` uint8 samples ``(n, 28, 28)`` from seeded standard normal noise and the classes asked for
        (every one ``label``, else 0, 1, ..., 9, 0, ...; ``None`` for an unconditional family)."""
        if label is not None and not self.conditional:
            raise ValueError(f"this {cfg['kind']} run is not conditional: it cannot be asked for a class; "
                             f"train a cgan or cvae for that")
        width = int(sampler.inputs[0].shape[-1])
        z = np.random.default_rng(seed).standard_normal((n, width)).astype("float32")
        labels = None
        if self.conditional:
            labels = data.check_labels(np.arange(n) % 10 if label is None else np.full(n, label), 10)
        out = [sampler([z[i:i + 500], labels[i:i + 500]] if self.conditional else z[i:i + 500], training=False)
               for i in range(0, n, 500)]
        return data.to_uint8(np.concatenate([np.asarray(o, np.float32) for o in out]), cfg["scale"]), labels

    def score(self, model, cfg, x_train, y_train, sampler, n: int = 1000, seed: int = 1234):
        """The run's row of scores, its samples and their classes (see :func:`score`)."""
        samples, labels = self.sample(sampler, n, cfg, seed=seed)
        return score_samples(samples, labels, cfg, x_train), samples, labels


def score_samples(samples, labels, cfg: dict, x_train) -> dict:
    """The scores of an image run's uint8 ``samples`` (and the classes asked for, ``labels``, or ``None``)
    against the held-out images of its ``data``, read by that data set's shipped classifier: FID, KID and
    IS against all held-out images; precision, recall, density and coverage against as many held-out
    images as there are samples (the k-NN measures assume equal sizes); recognition, the second reader's
    agreement, the copy distances and Gu et al.'s memorised share against ``x_train``."""
    from . import metrics

    _, (x_test, _) = data.load_images(cfg["data"])  # the held-out images, never changed
    reader = cfg["data"]  # the shipped classifier of the run's data set
    row = metrics.evaluate(samples, x_test, dataset=reader, knn_size=len(samples))
    row = {k: row[k] for k in ("fid", "kid", "is", "precision", "recall", "density", "coverage")}
    rec = metrics.recognition(samples, reader)
    row["confidence"], row["classes"] = rec["mean_confidence"], rec["classes_at_2pct"]
    row["readers_agree"] = metrics.readers_agree(samples, reader)  # a second, independent reader
    row.update({f"share_{c}": s for c, s in enumerate(rec["class_shares"])})
    to_train, test_to_train = metrics.copy_distances(samples, x_train, x_test, dataset=reader)
    row["nn_sample"], row["nn_heldout"] = float(np.median(to_train)), float(np.median(test_to_train))
    row["copy_ratio"] = row["nn_sample"] / row["nn_heldout"]
    row["memorised"] = metrics.memorised(samples, x_train)[0]  # Gu et al.'s rule, in pixels (chapter 6)
    if labels is not None:  # does the classifier see the class that was asked for?
        predicted = metrics.class_probabilities(samples, reader).argmax(1)
        row["agreement"] = float(np.mean(predicted == labels))
        row.update({f"agreement_{c}": float(np.mean(predicted[labels == c] == c)) for c in range(10)})
    return row


class DCGAN(Family):
    """The DCGAN of chapter 3 with chapter 7's augmentation, chapter 8's levers or chapter 9's
    self-conditioning (one idea at a time)."""

    def check(self, cfg):
        variants.check_variant(cfg["loss"], cfg["penalty"], cfg["penalty_weight"], cfg["d_steps"],
                               cfg["label_smoothing"])
        if cfg.get("augment") and self._variant(cfg):  # augmentation may join the self-conditioned recipe only
            raise ValueError("augmentation is not combined with chapter 8's loss, penalty, d_steps or label smoothing")

    @staticmethod
    def _variant(cfg):
        return any(cfg[k] != settings.BY_NAME[k].default for k in VARIANT_KEYS)

    def options(self, cfg) -> dict:
        """The model class and its options for ``cfg``."""
        levers = {k: cfg[k] for k in (*VARIANT_KEYS, "penalty_weight")} if self._variant(cfg) else None
        if cfg.get("clusters"):
            if levers:
                return {"cls": variants.ConditionalVariantGAN, "num_classes": cfg["clusters"], **levers}
            if cfg.get("augment"):
                return {"cls": variants.AugmentedConditionalGAN, "num_classes": cfg["clusters"], "augment": cfg["augment"]}
            return {"cls": variants.ConditionalGAN, "num_classes": cfg["clusters"]}
        if cfg.get("augment"):
            return {"cls": variants.AugmentedGAN, "augment": cfg["augment"]}
        if levers:
            return {"cls": variants.VariantGAN, **levers}
        return {}

    def networks(self, cfg, k):
        from . import models

        options = dict(spectral_norm=cfg.get("spectral_norm", False),  # a cgan takes neither setting
                       batch_norm=cfg.get("penalty") is None)  # a penalty: no batch norm
        if k:
            return (models.cdcgan_generator(cfg["z_dim"], cfg["width"], k),
                    models.cdcgan_discriminator(cfg["width"], k, **options))
        return models.dcgan_generator(cfg["z_dim"], cfg["width"]), models.dcgan_discriminator(cfg["width"], **options)

    def build(self, cfg, shares=None):
        """The compiled model of a run and the network ``sample`` loads."""
        from . import models, training

        options = self.options(cfg)
        k = options.get("num_classes")
        optim = {key: cfg.get(key) for key in ("d_lr", "g_lr", "clipnorm", "beta_1", "beta_2", "ema")
                 if cfg.get(key) is not None}
        model = training.make_gan(*self.networks(cfg, k), seed=cfg["seed"], lr=cfg["lr"], jit_compile=cfg["jit_compile"],
                                  steps_per_execution=self.steps_per_execution, **optim, **options)
        if cfg.get("clusters"):
            return model, models.self_conditioned_sampler(model.generator, np.full(k, 1 / k) if shares is None else shares)
        return model, model.generator

    steps_per_execution = STEPS_PER_EXECUTION

    def finish(self, model, sampler, cfg, x_train, path):
        """With ``ema`` (chapter 7), the generator samples with the moving average of its weights, which its
        optimizer kept beside the weights it trained (the checkpoints hold both, so a resumed run averages on)."""
        if cfg.get("ema") is None:
            return sampler
        model.g_optimizer.finalize_variable_values(model.generator.trainable_variables)
        name = model.generator.name  # the sampler is the generator, or wraps it (self-conditioning)
        generator = sampler if sampler.name == name else sampler.get_layer(name)
        generator.set_weights(model.generator.get_weights())  # changes something only in a sampler read from disk
        sampler.save(path)
        return sampler

    def held_out(self, cfg, x_train, x_test, labels=None):
        """A DCGAN logs its discriminator's mean output on 500 of its training images and 500 held-out ones
        (``val_d_train``, ``val_d_held_out``, ``val_d_gap``: the overfitting watch of
        :meth:`helpers.training.GAN.test_step`); a self-conditioned one judges each with its cluster (a
        held-out image's: the nearest cluster mean)."""
        import tensorflow as tf

        if self.conditional:
            return None
        n = min(500, len(x_train), len(x_test))
        train, held_out = (data.scaled(x[:n], self.scale) for x in (x_train, x_test))
        if cfg.get("clusters"):
            return tf.data.Dataset.from_tensors(((train, labels[:n]),
                                                 (held_out, data.nearest_cluster(x_test[:n], x_train, labels))))
        return tf.data.Dataset.from_tensors(((train,), (held_out,)))

    def train_labels(self, cfg, x, y):
        if not cfg.get("clusters"):
            return None, None
        clusters = data.clusters(x, cfg["clusters"], seed=cfg["seed"])  # k-means clusters play the labels
        return clusters, np.bincount(clusters, minlength=cfg["clusters"]) / len(clusters)


class ConditionalDCGAN(DCGAN):
    """Chapter 9's cGAN: the DCGAN's networks, told the real class of every image."""

    conditional = True

    def check(self, cfg):
        pass

    def options(self, cfg):
        return {"cls": variants.ConditionalGAN, "num_classes": 10}

    def train_labels(self, cfg, x, y):
        return y, None


class VAEFamily(Family):
    """The VAE of chapter 5 (with its fitted prior) and chapter 9's conditional VAE."""

    scale, gan = "unit", False

    def __init__(self, conditional=False):
        self.conditional = conditional

    def build(self, cfg, shares=None):
        from . import models, training

        if self.conditional:
            nets = models.cvae_encoder(cfg["z_dim"], cfg["width"]), models.cvae_decoder(cfg["z_dim"], cfg["width"])
        else:
            nets = models.vae_encoder(cfg["z_dim"], cfg["width"]), models.vae_decoder(cfg["z_dim"], cfg["width"])
        model = training.make_vae(*nets, seed=cfg["seed"], lr=cfg["lr"], jit_compile=cfg["jit_compile"],
                                  steps_per_execution=STEPS_PER_EXECUTION, cls=variants.ConditionalVAE if self.conditional else None)
        return model, vae_sampler(model)

    def held_out(self, cfg, x_train, x_test, labels=None):
        _, (_, y_test) = data.load_images(cfg["data"])
        return data.make_dataset(x_test, y_test if self.conditional else None, batch_size=500, scale=self.scale,
                                 shuffle=False, drop_remainder=False)

    def finish(self, model, sampler, cfg, x_train, path):
        """Fit chapter 5's mixture prior to the finished model's codes (``prior="mixture"``)."""
        from . import models

        if cfg.get("prior") == "mixture" and not any(isinstance(l, models.MixturePrior) for l in sampler.layers):
            sampler = vae_sampler(model, variants.fit_mixture_prior(model, x_train, seed=cfg["seed"]))
            sampler.save(path)
        return sampler

    def score(self, model, cfg, x_train, y_train, sampler, n=1000, seed=1234):
        row, samples, labels = super().score(model, cfg, x_train, y_train, sampler, n, seed)
        _, (x_test, y_test) = data.load_images(cfg["data"])
        for name, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
            ds = data.make_dataset(x, y if self.conditional else None, batch_size=500, scale=self.scale,
                                   shuffle=False, drop_remainder=False)
            row[f"neg_elbo_{name}"] = float(model.evaluate(ds, verbose=0, return_dict=True)["neg_elbo"])
        return row, samples, labels


class Toy(DCGAN):
    """Chapter 8's MLP GAN on a 2-D Gaussian mixture, scored by mode coverage."""

    steps_per_execution, grid_size = TOY_STEPS_PER_EXECUTION, 1000  # grid_size: points per snapshot
    keep_snapshots = True  # a stored toy run keeps its point clouds over training (chapter 8 draws them)

    def networks(self, cfg, k):
        from . import models

        return (models.mlp_generator(cfg["z_dim"], cfg["width"], cfg["depth"]),
                models.mlp_discriminator(cfg["width"], cfg["depth"], spectral_norm=cfg["spectral_norm"]))

    def data(self, cfg):
        return data.toy(cfg["data"], cfg["points"], seed=cfg["seed"])[0], None, None

    def dataset(self, cfg, x, y, labels, batch):
        return data.make_point_dataset(x, batch_size=batch, seed=cfg["seed"])

    def held_out(self, cfg, x_train, x_test, labels=None):
        return None

    def score(self, model, cfg, x_train, y_train, sampler, n=1000, seed=1234):
        from . import metrics

        _, centres, std = data.toy(cfg["data"], cfg["points"], seed=cfg["seed"])
        z = np.random.default_rng(seed).standard_normal((n * 5 // 2, cfg["z_dim"])).astype("float32")
        samples = np.asarray(sampler(z, training=False), np.float32)
        return metrics.mode_coverage(samples, centres, std), samples, None


class DiffusionFamily(Family):
    """Chapter 11's diffusion model: a U-Net of widths (w, 2w, 3w) predicting the noise, sampled with
    DDIM (``sample_steps``) from its weights' moving average."""

    gan = False

    def check(self, cfg):
        if cfg["width"] % 8:
            raise ValueError(f"a diffusion run's width must be a multiple of 8 (its group norm has 8 groups), "
                             f"got {cfg['width']}")

    def build(self, cfg, shares=None):
        from . import models, training

        w = cfg["width"]
        model = training.make_diffusion(models.unet((w, 2 * w, 3 * w)), ema=cfg["ema"], seed=cfg["seed"],
                                        lr=cfg["lr"], jit_compile=cfg["jit_compile"],
                                        steps_per_execution=STEPS_PER_EXECUTION)
        return model, model.ema_network

    def sample(self, sampler, n, cfg, seed=1234, label=None):
        from . import diffusion

        if label is not None:
            raise ValueError("this diffusion run is not conditional: it cannot be asked for a class")
        z = np.random.default_rng(seed).standard_normal((n, 28 * 28))
        return data.to_uint8(diffusion.sample(sampler, z, cfg["sample_steps"]), "tanh"), None

    def score(self, model, cfg, x_train, y_train, sampler, n=1000, seed=1234):
        """The image scores, and the denoising loss of the sampling network on ``n`` training images (the
        set repeated where it is smaller: ``train_loss``) and on ``n`` held-out images (``heldout_loss``),
        both at the same noise levels and noise (chapter 11's memorisation grid: the gap says how much the
        network fits its own images)."""
        from . import diffusion

        row, samples, labels = super().score(model, cfg, x_train, y_train, sampler, n, seed)
        _, (x_test, _) = data.load_images(cfg["data"])
        for name, images in (("train_loss", np.resize(x_train, (n, 28, 28))), ("heldout_loss", x_test[:n])):
            row[name] = diffusion.denoising_loss(sampler, data.scaled(images, "tanh"))
        return row, samples, labels


FAMILIES = {"dcgan": DCGAN(), "cgan": ConditionalDCGAN(), "vae": VAEFamily(), "cvae": VAEFamily(conditional=True),
            "toy": Toy(), "diffusion": DiffusionFamily()}


def build(cfg: dict, shares=None):
    """The compiled model of a run and the network ``sample`` loads (a GAN's generator, a self-conditioned
    GAN's sampler that picks clusters by their ``shares``, a VAE's decoder with a sigmoid)."""
    return FAMILIES[cfg["kind"]].build(cfg, shares)


def vae_sampler(vae, prior=None):
    """The network ``sample`` loads for a VAE: standard normal noise in, pixel means out (the decoder and a
    sigmoid, after ``prior``, a :class:`helpers.models.MixturePrior`, when there is one). A conditional
    VAE's sampler takes ``[noise, labels]``."""
    import keras

    if getattr(vae, "num_classes", None):  # [z, label] -> pixel means
        z, y = keras.Input((vae.z_dim,), name="z"), keras.Input((), dtype="int32", name="label")
        out = keras.layers.Activation("sigmoid", dtype="float32")(vae.decoder([z, y]))
        return keras.Model([z, y], out, name="cvae_sampler")
    width = vae.z_dim + 1 if prior is not None else vae.z_dim
    layers = [keras.Input((width,)), *([prior] if prior is not None else []), vae.decoder,
              keras.layers.Activation("sigmoid", dtype="float32")]
    return keras.Sequential(layers, name="vae_sampler")


def load_sampler(folder: str):
    """The sampling network of the run in ``folder`` (``generator.keras``)."""
    import keras

    from . import models  # noqa: F401  (registers MixturePrior and ClusterChoice for loading)

    _not_stored(folder, "generator.keras")
    return keras.models.load_model(os.path.join(folder, "generator.keras"), compile=False)


def _not_stored(folder: str, network: str = "model.weights.h5") -> None:
    if os.path.exists(os.path.join(folder, store.FILE)) and not os.path.exists(os.path.join(folder, network)):
        raise FileNotFoundError(f"{folder} is a stored run: its scores and {store.KEEP} samples, no networks; "
                                f"train it here (GENAI_RETRAIN=1, or a cache of your own) to sample it again")


def _callbacks(cfg, out, sampler, per_step, extra):
    from . import callbacks as cb

    ckpt, rows = os.path.join(out, "checkpoint"), max(1, cfg["steps"] // cfg["log_every"])
    family = FAMILIES[cfg["kind"]]
    n = family.grid_size if hasattr(family, "grid_size") else 100 if family.conditional else 64
    return [cb.NaNGuard(ckpt), cb.CSVLog(os.path.join(out, "log.csv"), per_step),
            cb.SampleGrid(n=n, out_dir=os.path.join(out, "samples"), every=cfg["log_every"] * max(1, rows // 10)),
            cb.Checkpoint(ckpt, sampler, os.path.join(out, "generator.keras")), *extra]


def train(cfg: dict, out: str, resume: bool = False, verbose: int = 2, callbacks=()):
    """Train the run ``cfg`` into the folder ``out`` (config.json, log.csv, samples/, checkpoint/,
    generator.keras) up to ``cfg["steps"]`` steps and return ``(model, x_train, info)``, ``info`` holding
    ``labels`` (of the training images), ``from_step``, ``steps``, ``seconds`` (training time of this call),
    ``history`` (this call's log rows) and ``sampler`` (the network saved as ``generator.keras``).
    ``resume=True`` continues from the last checkpoint in ``out`` (or extends a finished run);
    ``callbacks`` run after the run's own (NaN guard, CSV log, sample grids, checkpoint). Raises
    :class:`helpers.callbacks.TrainingDiverged` if a loss becomes NaN, ``ValueError`` if the checkpoint
    does not fit ``cfg``. Introduced in chapter 3."""
    from . import callbacks as cb
    from . import training

    family = FAMILIES[cfg["kind"]]
    x_train, y_train, x_test = family.data(cfg)
    per_step = cfg["batch_size"] * cfg.get("d_steps", 1)  # real images per step: a batch per D update
    labels, shares = family.train_labels(cfg, x_train, y_train)
    # a set smaller than one step's images (chapter 11's N = 10) is repeated until it fills a step; each image
    # stays equally likely, and x_train (what the scores compare with) keeps one copy of each
    reps = -(-per_step // len(x_train))
    fill = lambda a: a if a is None or reps == 1 else np.concatenate([a] * reps)  # noqa: E731
    saved = os.path.join(out, "generator.keras")
    with runtime.precision(cfg["policy"]):
        runtime.seed_everything(cfg["seed"])
        model, sampler = family.build(cfg, shares)
        start = cb.restore(model, os.path.join(out, "checkpoint")) if resume else 0
        if start > cfg["steps"]:
            raise ValueError(f"{out} has already trained {start} steps, more than the {cfg['steps']} asked for")
        os.makedirs(out, exist_ok=True)
        _write_json(os.path.join(out, "config.json"), cfg)
        t0 = time.perf_counter()
        dataset = family.dataset(cfg, fill(x_train), fill(y_train), fill(labels), per_step)
        history = training.fit_steps(model, dataset, cfg["steps"], cfg["log_every"],
                                     _callbacks(cfg, out, sampler, per_step, callbacks),
                                     validation_data=family.held_out(cfg, x_train, x_test, labels), verbose=verbose)
        seconds = time.perf_counter() - t0
        if start == cfg["steps"] and os.path.exists(saved):  # nothing trained: keep what the run saved
            sampler = load_sampler(out)
        sampler = family.finish(model, sampler, cfg, x_train, saved)
        if not os.path.exists(saved):  # steps == 0
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
    return FAMILIES[cfg["kind"]].sample(sampler, n, cfg, seed, label)


def score(model, cfg: dict, x_train, sampler, n: int = 1000, seed: int = 1234, y_train=None):
    """Score a trained run against the real held-out digits: FID, KID, IS, precision/recall and the class
    shares of ``n`` samples (shipped classifier), the copy check (median nearest-training-image distance
    of the samples and of held-out digits), a VAE's negative ELBO on the training and held-out images, a
    conditional run's ``agreement`` with the class asked for, a toy run's mode coverage of 2,500 samples.
    Returns ``(row, samples, labels)``."""
    return FAMILIES[cfg["kind"]].score(model, cfg, x_train, y_train, sampler, n, seed)


def key(cfg: dict) -> str:
    """The cache key of a configuration: a hash of all its settings (and of :data:`CACHE_VERSION`)."""
    text = json.dumps({"v": CACHE_VERSION, **cfg}, sort_keys=True)
    return f"{cfg['kind']}-{hashlib.sha1(text.encode()).hexdigest()[:12]}"


def cache_dir(path: str | None = None) -> str:
    """Where runs are cached: ``path``, else ``$GENAI_CACHE``, else ``runs/experiments`` (relative to
    the working directory, i.e. beside the notebook)."""
    return path or os.environ.get("GENAI_CACHE") or DEFAULT_CACHE


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

# Chapter 7's DiffAugment test: the plain DCGAN with and without augmentation on small Fashion-MNIST sets, long
# enough for the discriminator to memorise them (scripts/store_grid.py diffaugment trains them)
AUGMENT_SIZES, AUGMENT_STEPS = (250, 1_000), 5_000
# ... and on MNIST with chapter 8's recipe (:func:`remedy_mnist`), which meets the readers' bar: small sets of digits
AUGMENT_MNIST_SIZES = (500, 1_000)


# Chapter 10's privacy runs: the two recipes that meet the book's bar on MNIST, chapter 9's self-conditioned
# DCGAN and chapter 5's VAE, on 250, 1,000 and 4,000 training digits; the canary joins the 1,000
PRIVACY_SIZES, CANARY_SIZE, CANARY_COPIES = (250, 1_000, 4_000), 1_000, (1, 10, 100)


def cpu_recipe(kind: str, **extra) -> dict:
    """The :func:`grid` settings of ``kind``'s recipe as the cpu budget trained it for the stored results
    (its steps, its precision and no XLA written out), on the full budget too, so that a GPU loads the
    stored runs as a laptop does; the smoke budget's steps in the tests. ``extra`` settings on top."""
    recipe = training.RECIPES[kind]
    smoke = runtime.budget() == "smoke"
    pinned = {"steps": recipe["steps"]["smoke" if smoke else "cpu"], "jit_compile": False}
    if "policy" not in recipe and not smoke:  # the device's choice: bfloat16 on the CPU that trained them
        pinned["policy"] = "mixed_bfloat16"
    return {"kind": kind, **pinned, **extra}


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


def data_settings(kind: str, n: int, steps: int, **extra) -> dict:
    """The settings (for :func:`grid`) of a run of chapter 7's Fashion-MNIST grids: ``kind`` (``"dcgan"``
    or ``"vae"``) on ``n`` training images for ``steps`` steps, with ``extra`` settings on top (the plain
    DCGAN of the DiffAugment test: ``clusters=0``)."""
    return {"kind": kind, **DATA_RUNS[kind], "train_size": n, "steps": steps, **extra}


def data_config(kind: str, n: int, steps: int, seed: int = 0, **extra) -> dict:
    """The whole configuration of that run (:func:`data_settings`) for ``seed``."""
    settings_ = data_settings(kind, n, steps, **extra)
    return config(settings_.pop("kind"), **settings_, seed=seed)


def images_seen(cfg: dict) -> int:
    """Real training images a run draws: steps x batch size (x d_steps for a GAN whose discriminator
    makes several updates per step)."""
    return cfg["steps"] * cfg["batch_size"] * cfg.get("d_steps", 1)


def run_dir(cfg: dict, cache: str | None = None) -> str:
    """The folder a run of ``cfg`` is kept in: ``cache_dir(cache)/key(cfg)``."""
    return os.path.join(cache_dir(cache), key(cfg))


def run(cfg: dict, cache: str | None = None, verbose: int = 0, stored: bool = True) -> dict:
    """Train and score one configuration, or load it from the cache if it was done before. Returns the
    run's row: its settings, ``images`` (training images), ``images_seen`` (steps x batch), ``wall_s``
    (training seconds, when it was trained), ``status`` (``"ok"`` or ``"diverged"``), the scores of
    :func:`score`, ``cached`` and ``dir`` (the run folder, with ``samples.npy`` and ``generator.keras``).
    ``stored=False`` leaves the stored results alone: neither loaded nor written (:func:`derived` trains a
    stored run again for its networks)."""
    from . import callbacks

    folder = run_dir(cfg, cache)
    result_path = os.path.join(folder, "result.json")
    if os.path.exists(result_path):
        with open(result_path) as f:
            row = json.load(f)
        if stored and store.writing() and store.load(key(cfg)) is None:  # trained before GENAI_STORE was set
            samples = os.path.join(folder, "samples.npy")
            _store(cfg, row, np.load(samples) if os.path.exists(samples) else None, folder)
        return {**row, "cached": True, "dir": folder}
    kept = store.load(key(cfg)) if stored else None  # trained before and kept in the repository (helpers.store)
    if kept is not None:
        return {**kept, "cached": True}
    try:
        # an interrupted run left a checkpoint: continue it
        model, x_train, info = train(cfg, folder, resume=True, verbose=verbose)
    except callbacks.TrainingDiverged as err:
        row = {**cfg, "images_seen": images_seen(cfg), "status": "diverged", "error": str(err)}
        _write_json(result_path, row)  # the checkpoint before the divergence stays, as the message says
        if stored and store.writing():
            _store(cfg, row, None, folder)
        return {**row, "cached": False, "dir": folder}
    return record(cfg, model, x_train, info, cache, stored=stored)


def record(cfg: dict, model, x_train, info: dict, cache: str | None = None, stored: bool = True) -> dict:
    """Score a model trained with the settings ``cfg`` (by :func:`train`, which returned ``info``, e.g. in
    a chapter that shows the training) and keep it in the cache as :func:`run` would: ``samples.npy``,
    the whole model's weights (``model.weights.h5``, read by :func:`load_model`) and ``result.json`` in
    :func:`run_dir`, the checkpoint removed. Returns the run's row (``wall_s``: the
    training time in the run's log, across resumes). Introduced in chapter 3, so that later chapters load the chapter's run instead of training it again."""
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
    if stored and store.writing():
        _store(cfg, row, samples, folder)
    return {**row, "cached": False, "dir": folder}


def _store(cfg: dict, row: dict, samples, folder: str) -> None:
    """Keep a finished run in the repository's stored results (helpers.store); a recipe run (the budget's
    ``config(kind)`` with any seed, which other chapters sample again) keeps its sampling network too."""
    recipe = row.get("status") == "ok" and {**cfg, "seed": 0} == config(cfg["kind"])
    store.save(key(cfg), cfg, row, samples, folder, networks=recipe, snapshots=FAMILIES[cfg["kind"]].keep_snapshots)


def run_config(folder: str) -> dict:
    """The configuration a run folder was trained with (its ``config.json``, or a stored run's)."""
    path = os.path.join(folder, "config.json")
    if not os.path.exists(path) and os.path.exists(os.path.join(folder, store.FILE)):
        with open(os.path.join(folder, store.FILE)) as f:
            return json.load(f)["config"]
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: {folder} is not a run folder")
    with open(path) as f:
        return json.load(f)


def derived(row: dict, name: str, compute, cache: str | None = None) -> dict:
    """What ``compute(folder)`` finds in the folder of a finished run (its whole model, its 1,000 scored
    samples), a dict of numbers and arrays, kept beside the run as ``derived/<name>.npz``: computed once;
    with ``GENAI_STORE=1`` also kept beside the run's stored results, so that a reader who loads the run
    from there (no networks, 64 samples) loads this too. Where neither place has it, the run is trained
    again into the cache. Give ``name`` a new version when ``compute`` changes (chapter 10's tests)."""
    cfg = run_config(row["dir"])
    folder, kept = run_dir(cfg, cache), os.path.join(store.folder(), key(cfg))
    for place in (folder, kept if store.reading() else None):
        path = os.path.join(place or "", "derived", f"{name}.npz")
        if place and os.path.exists(path):
            with np.load(path) as f:
                return {k: f[k] if f[k].ndim else f[k].item() for k in f.files}
    if not os.path.exists(os.path.join(folder, WEIGHTS)):
        again = run(cfg, cache, stored=False)  # a stored run keeps no networks: train it again here
        if "fid" in row and not np.isclose(again.get("fid", np.nan), row["fid"], rtol=1e-6):
            print(f"note: {name} is measured on a network trained again here (FID {again.get('fid', np.nan):.1f}), "
                  f"not the stored run's (FID {row['fid']:.1f}): threads or hardware differ", flush=True)
    result = compute(folder)
    for place in (folder, kept if store.writing() and os.path.isdir(kept) else None):
        if place:
            os.makedirs(os.path.join(place, "derived"), exist_ok=True)
            with open(os.path.join(place, "derived", f"{name}.npz.tmp"), "wb") as f:
                np.savez(f, **{k: np.asarray(v) for k, v in result.items()})
            os.replace(os.path.join(place, "derived", f"{name}.npz.tmp"), os.path.join(place, "derived", f"{name}.npz"))
    return result


def load_model(folder: str):
    """The whole trained model of a cached run (a GAN with its discriminator, a VAE with its encoder), as
    :func:`record` saved it, and the run's configuration: ``(model, cfg)``. Introduced in chapter 10, whose membership inference needs the discriminator and the encoder, not only the sampler."""
    path = os.path.join(folder, WEIGHTS)
    _not_stored(folder)
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
    image": a GAN's discriminator logit (Hayes et al. 2019, LOGAN; a self-conditioned one's highest over
    its clusters) or a VAE's ELBO, i.e. minus its negative ELBO per image (Hilprecht et al. 2019). A
    conditional model needs the images' ``labels``.
    Introduced in chapter 10."""
    x = data.scaled(images, cfg["scale"])
    gan, out = FAMILIES[cfg["kind"]].gan, []
    for i in range(0, len(x), 500):
        y = None if labels is None else data.check_labels(np.asarray(labels)[i:i + 500], 10)
        if gan and cfg.get("clusters"):  # self-conditioned: an image's cluster is unknown, take D's best one
            out.append(np.max([model.discriminate(x[i:i + 500], np.full(len(x[i:i + 500]), c))
                               for c in range(cfg["clusters"])], axis=0).astype(np.float64))
        elif gan:
            out.append(np.asarray(model.discriminate(x[i:i + 500], *([] if y is None else [y])), np.float64))
        else:
            out.append(-np.asarray(model.neg_elbo_per_image(x[i:i + 500] if y is None else (x[i:i + 500], y)), np.float64))
    return np.concatenate([o.reshape(-1) for o in out])


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
    from . import metrics

    model, cfg = load_model(row["dir"])
    x_train, y_train, x_test = training_data(cfg)
    _, (_, y_test) = data.load_images(cfg["data"])
    n = len(x_train) - int(cfg.get("canary", 0))  # the canary's copies are not ordinary members
    pick = np.random.default_rng(seed).permutation(n)[:members]
    inside, outside = x_train[pick], x_test
    conditional = FAMILIES[cfg["kind"]].conditional
    labels_in, labels_out = (y_train[pick], y_test) if conditional else (None, None)
    out = {"members": len(inside), "nonmembers": len(outside)}
    out["auc_white"], out["se_white"] = metrics.membership_auc(
        membership_scores(model, cfg, inside, labels_in), membership_scores(model, cfg, outside, labels_out))
    fake, _ = sample(load_sampler(row["dir"]), samples, cfg, seed=seed + 1)
    out["auc_black"], out["se_black"] = metrics.membership_auc(
        -metrics.nearest_distances(inside, fake, "pixels"), -metrics.nearest_distances(outside, fake, "pixels"))
    return out


def copying(folder: str) -> dict:
    """Chapter 10's copying measures of a finished run, from its 1,000 scored samples: Meehan et al.'s Z_U
    in the classifier's features and in pixels; ``own / other``, the median pixel distance from a sample to
    the nearest of the run's training images over the same to as many held-out ones (below 1: nearer to its
    own); Gu et al.'s memorised share; the 8 samples nearest to a training image (``closest``), those
    training images (``partners``) and the ``distances``."""
    from . import metrics

    cfg = run_config(folder)
    train, _, x_test = training_data(cfg)
    fake = np.load(os.path.join(folder, "samples.npy"))
    out = {f"Z_U {space}": metrics.copy_test(*metrics.copy_distances(fake, train, x_test, space, cfg["data"]))
           for space in ("features", "pixels")}
    m, rng = min(len(train), len(x_test)), np.random.default_rng(cfg["seed"])
    own, other = train[rng.permutation(len(train))[:m]], x_test[rng.permutation(len(x_test))[:m]]
    out["own / other"] = float(np.median(metrics.nearest_distances(fake, own, "pixels"))
                               / np.median(metrics.nearest_distances(fake, other, "pixels")))
    out["memorised"] = metrics.memorised(fake, train)[0]
    d = metrics.nearest_distances(fake, train, "pixels")
    closest = np.argsort(d)[:8]
    flat = train.reshape(len(train), -1).astype(np.float64) / 255.0
    partners = [int(np.argmin(((flat - fake[i].reshape(1, -1) / 255.0) ** 2).sum(1))) for i in closest]
    return {**out, "closest": fake[closest], "partners": train[partners], "distances": d[closest]}


def canary_test(folder: str, samples: int = 10_000) -> dict:
    """Chapter 10's canary measures of a finished run on ``samples`` new samples: the share that carries the
    mark (:func:`helpers.data.mark_strength` above 0.5), the strongest mark, the pixel distance from the
    canary to its nearest sample and the 4 samples nearest to it."""
    from . import metrics

    cfg = run_config(folder)
    fake, _ = sample(load_sampler(folder), samples, cfg, seed=99)
    strength = data.mark_strength(fake)
    d = metrics.nearest_distances(fake, canary(cfg["data"])[0][None], "pixels")
    return {"marked samples": float((strength > 0.5).mean()), "strongest mark": float(strength.max()),
            "closest to canary": float(d.min()), "4 closest": fake[np.argsort(d)[:4]]}


def privacy(row: dict, test: str, samples: int = 10_000) -> dict:
    """Chapter 10's ``test`` of the run ``row``: ``"copying"`` (:func:`copying`), ``"canary"``
    (:func:`canary_test`) or ``"membership"`` (:func:`membership`, with the white-box scores of 1,000 of
    its training images and the held-out ones, ``scores in`` and ``scores out``), computed once from the
    run's networks and kept beside it (:func:`derived`)."""
    def membership_with_scores(folder):
        model, cfg = load_model(folder)
        inside, _, outside = training_data(cfg)
        inside = inside[:len(inside) - cfg.get("canary", 0)][:1000]  # the canary's copies are not ordinary members
        scores = [membership_scores(model, cfg, x).astype(np.float32) for x in (inside, outside)]
        return {**membership({"dir": folder}, samples=samples), "scores in": scores[0], "scores out": scores[1]}

    tests = {"copying": copying, "canary": lambda folder: canary_test(folder, samples),
             "membership": membership_with_scores}
    return derived(row, f"{test}-v1-{samples}", tests[test])


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
            done = sum(r is not None for r in rows)
            print(f"[{done}/{len(jobs)}] {_progress(name, cfg, row)} ({time.perf_counter() - start:.0f} s so far)",
                  flush=True)

    todo = []
    for i, (name, cfg) in enumerate(jobs):
        done_before = os.path.exists(os.path.join(run_dir(cfg, cache), "result.json")) or store.load(key(cfg))
        if workers > 1 and not done_before:
            todo.append(i)
        else:
            report(i, name, cfg, run(cfg, cache))
    if todo:
        from concurrent.futures import as_completed

        todo.sort(key=lambda i: -jobs[i][1].get("steps", 0))  # longest first: no long run left alone at the end

        futures = {_pool(workers).submit(run, jobs[i][1], cache_dir(cache)): i for i in todo}
        for future in as_completed(futures):
            i = futures[future]
            report(i, jobs[i][0], jobs[i][1], future.result())
    if progress and rows:  # an empty grid has nothing to report
        print(_provenance(rows))
    return pd.DataFrame(rows)


def _progress(name: str, cfg: dict, row: dict) -> str:
    """What :func:`grid` did with one run (trained, loaded) and its headline result."""
    what = ("stored" if row.get("stored") else "cached" if row["cached"] else "stopped" if row["status"] != "ok" else
            f"trained {cfg['steps']} steps in {row['wall_s']:.1f} s")
    result = ("DIVERGED" if row["status"] != "ok" else f"FID {row['fid']:.1f}" if "fid" in row else
              f"{row['modes']} modes, {row['high_quality']:.0%} high quality")
    return f"{cfg['kind']} {name} seed {cfg['seed']}: {what}, {result}"


def _provenance(rows) -> str:
    """One line: how many runs were trained now, loaded from the cache, or loaded from stored results
    (and where and when those were trained)."""
    stored = [r["stored"] for r in rows if r.get("stored")]
    cached = sum(bool(r["cached"]) for r in rows) - len(stored)
    line = f"{len(rows) - cached - len(stored)} runs trained now, {cached} loaded from the cache"
    if stored:
        where = sorted({f"{s['device']}, {s['budget']} budget, commit {s['commit']}, {s['date']}" for s in stored})
        line += f", {len(stored)} loaded from stored results ({os.path.relpath(store.folder())}; trained on {'; '.join(where)})"
    return line


_pools: dict = {}


def _pool(workers: int):
    """One pool of worker processes per size, kept for the session (TensorFlow starts once per worker)."""
    if workers not in _pools:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("spawn")  # a fresh TensorFlow in each worker
        _pools[workers] = ProcessPoolExecutor(workers, mp_context=context, initializer=runtime.quiet_worker, initargs=(1,))
    return _pools[workers]


def summarize(table, metrics=("fid",), by="condition", text: bool = False):
    """Mean and standard error (std / sqrt(runs)) of ``metrics`` per ``by`` group, in the order the
    groups first appear (pandas ``groupby(...).agg(["mean", "sem", "count"])``). ``text=True`` gives
    strings ``"mean ± se"`` for display."""
    stats = table.groupby(by, sort=False)[list(metrics)].agg(["mean", "sem", "count"])
    frame = stats.copy()
    if text:
        frame = stats.xs("mean", axis=1, level=1).copy()
        for m in metrics:
            frame[m] = [f"{a:.3g} ± {b:.2g}" for a, b in zip(stats[(m, "mean")], stats[(m, "sem")])]
    else:
        frame.columns = [f"{m}_{'se' if s == 'sem' else s}" for m, s in stats.columns]
        frame = frame[[c for c in frame.columns if not c.endswith("_count")]]
    frame["runs"] = stats[(metrics[0], "count")].values
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
