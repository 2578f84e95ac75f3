"""The names of the book's options (image sets, toy mixtures, data corruptions, GAN losses, penalties and
augmentations) in plain Python, without TensorFlow, so that the command line checks them at once.
"""
IMAGE_DATA = ("mnist", "fashion")  # the image sets a run can train on (its ``data`` setting)
TOYS = ("ring", "grid")  # chapter 8's toy mixtures (helpers.data.toy)
CORRUPTIONS = ("noise", "blur", "occlude")  # chapter 7's corruptions (helpers.data.corrupt)
LOSSES = ("non_saturating", "saturating", "wasserstein", "hinge")  # chapter 8 (helpers.variants.gan_losses)
PENALTIES = ("wgan-gp", "r1")  # chapter 8 (helpers.variants.gradient_penalty)
AUGMENTATIONS = ("translation", "cutout")  # chapter 7 (helpers.variants.diff_augment)
_LEFT_OUT = "Flips and colour changes are left out on purpose: digits are not mirror-symmetric and are grey."


def parse_augment(augment) -> tuple[str, ...]:
    """``"translation,cutout"`` (or a list, or ``None`` / ``""`` for none) -> a validated tuple."""
    parts = augment.split(",") if isinstance(augment, str) else augment or ()
    names = [a.strip() for a in parts if a.strip()]
    for name in names:
        if name not in AUGMENTATIONS:
            hint = " " + _LEFT_OUT if name in ("flip", "color", "colour", "brightness") else ""
            raise ValueError(f"unknown augmentation {name!r}; choose from {', '.join(AUGMENTATIONS)}.{hint}")
    return tuple(dict.fromkeys(names))
