"""Chapter 10's privacy tests, as functions of arrays and models: does a trained generator copy its
training images, give a planted canary back, or let an attacker tell its training images from new ones?
"""

from __future__ import annotations

import numpy as np

from . import data, metrics
from .training import GAN


def membership_scores(model, images, labels=None) -> np.ndarray:
    """White-box membership scores of uint8 ``images`` ``(N, 28, 28)``, higher meaning "more likely a
    training image": a GAN's discriminator logit (Hayes et al. 2019, LOGAN; a self-conditioned GAN, asked
    without labels, takes its highest logit over its clusters) or a VAE's ELBO (Hilprecht et al. 2019).
    A conditional model takes the images' ``labels``. Introduced in chapter 10."""
    x, out = data.scaled(images, model.scale), []
    for i in range(0, len(x), 500):
        batch = x[i : i + 500]
        y = None if labels is None else data.check_labels(np.asarray(labels)[i : i + 500], 10)
        if isinstance(model, GAN) and getattr(model, "num_classes", 0) and y is None:
            cluster = lambda c: model.discriminate(batch, np.full(len(batch), c))  # noqa: E731
            scores = np.max([cluster(c) for c in range(model.num_classes)], axis=0)
        elif isinstance(model, GAN):
            scores = model.discriminate(batch, *([] if y is None else [y]))
        else:
            scores = -np.asarray(model.neg_elbo_per_image(batch if y is None else (batch, y)))
        out.append(np.asarray(scores, np.float64).reshape(-1))
    return np.concatenate(out)


def membership(model, members, nonmembers, samples, member_labels=None, nonmember_labels=None) -> dict:
    """Membership inference: can ``members`` (training images) be told from ``nonmembers`` (held-out
    ones)? Two attacks, each an AUC with its standard error (0.5 is chance): ``white``, the model's own
    score (:func:`membership_scores`); ``black``, only generated ``samples``: an image is judged a
    member the closer its nearest sample is, in pixels (Chen et al. 2020, GAN-Leaks). Introduced in
    chapter 10."""
    white = [membership_scores(model, members, member_labels), membership_scores(model, nonmembers, nonmember_labels)]
    black = [-metrics.nearest_distances(x, samples, "pixels") for x in (members, nonmembers)]
    out = {"members": len(members), "nonmembers": len(nonmembers)}
    out["auc_white"], out["se_white"] = metrics.membership_auc(*white)
    out["auc_black"], out["se_black"] = metrics.membership_auc(*black)
    return out


def copying(samples, train, test, seed: int = 0, dataset: str = "mnist") -> dict:
    """Copying measures of uint8 ``samples`` against a model's ``train`` images and held-out ``test``
    ones: Meehan et al.'s Z_U in the classifier's features and in pixels; ``own / other``, the median
    pixel distance from a sample to the nearest of its training images over the same to as many held-out
    ones (below 1: nearer to its own); Gu et al.'s memorised share; the 8 samples nearest to a training
    image (``closest``), those training images (``partners``) and the ``distances``. Chapter 10."""
    out = {f"Z_U {space}": metrics.copy_test(*metrics.copy_distances(samples, train, test, space, dataset))
           for space in ("features", "pixels")}
    m, rng = min(len(train), len(test)), np.random.default_rng(seed)
    own, other = train[rng.permutation(len(train))[:m]], test[rng.permutation(len(test))[:m]]
    near = lambda x: np.median(metrics.nearest_distances(samples, x, "pixels"))  # noqa: E731
    out["own / other"] = float(near(own) / near(other))
    out["memorised"] = metrics.memorised(samples, train)[0]
    d = metrics.nearest_distances(samples, train, "pixels")
    closest = np.argsort(d)[:8]
    flat = train.reshape(len(train), -1).astype(np.float64) / 255.0
    partners = [int(np.argmin(((flat - samples[i].reshape(1, -1) / 255.0) ** 2).sum(1))) for i in closest]
    return {**out, "closest": samples[closest], "partners": train[partners], "distances": d[closest]}


def canary_test(samples, canary) -> dict:
    """Does a model give chapter 10's canary back? Of uint8 ``samples``: the share that carries the mark
    (:func:`helpers.data.mark_strength` above 0.5), the strongest mark, the pixel distance from the
    ``canary`` image to its nearest sample and the 4 samples nearest to it. Chapter 10."""
    strength = data.mark_strength(samples)
    d = metrics.nearest_distances(samples, canary[None], "pixels")
    return {"marked samples": float((strength > 0.5).mean()), "strongest mark": float(strength.max()),
            "closest to canary": float(d.min()), "4 closest": samples[np.argsort(d)[:4]]}
