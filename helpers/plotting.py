"""Figures with matplotlib only: image grids, flow diagrams, toy-data scatters and animations of sample grids
over training. Introduced in chapter 1; the GAN and VAE chapters use them all.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib import animation


def tile(images, ncols: int | None = None, pad: int = 1) -> np.ndarray:
    """Tile ``(N, H, W)`` images into one 2-D array, row by row, with ``pad`` pixels between them."""
    x = np.asarray(images)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim != 3:
        raise ValueError(f"expected images of shape (N, H, W) or (N, H, W, 1), got {x.shape}")
    x = x.astype(np.float32)
    n, h, w = x.shape
    ncols = ncols or int(np.ceil(np.sqrt(n)))
    nrows = int(np.ceil(n / ncols))
    fill = float(x.min()) if n else 0.0
    out = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), fill, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, ncols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = x[i]
    return out


def image_grid(images, ncols: int | None = None, title: str | None = None, ax=None, size: float = 4.0):
    """Show images in a grid (uint8 or float, any range) and return the ``Axes``. Introduced in chapter 1."""
    if ax is None:
        _, ax = plt.subplots(figsize=(size, size))
    ax.imshow(tile(images, ncols), cmap="gray", interpolation="nearest")
    ax.set_axis_off()
    if title:
        ax.set_title(title, pad=14)
    return ax


def animate_grids(grids, labels=None, path: str | None = None, fps: int = 4, ncols: int | None = None):
    """Animate image batches as a ``FuncAnimation`` (a GIF at ``path`` if given). Introduced in chapter 3."""
    if path is not None and not str(path).endswith(".gif"):
        raise ValueError(f"animate_grids writes GIF files; got path {path!r}")
    frames = [tile(g, ncols) for g in grids]
    if not frames:
        raise ValueError("animate_grids needs at least one grid")
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.set_axis_off()
    im = ax.imshow(frames[0], cmap="gray", interpolation="nearest")
    title = ax.set_title(labels[0] if labels else "")

    def update(i):
        im.set_data(frames[i])
        im.set_clim(frames[i].min(), frames[i].max())
        title.set_text(labels[i] if labels else "")
        return im, title

    anim = animation.FuncAnimation(fig, update, frames=len(frames), interval=1000 / fps, blit=False)
    if path is not None:
        anim.save(path, writer=animation.PillowWriter(fps=fps))
    plt.close(fig)
    return anim


def _arrow(ax, boxes: dict, texts: dict, arrow):
    start, end, text, style = (*arrow, {}) if len(arrow) == 3 else arrow
    for name in (start, end):
        if name not in texts:
            raise ValueError(f"arrow {start!r} -> {end!r}: no box named {name!r}")
    style = dict(style)
    (x0, y0), (x1, y1) = boxes[start], boxes[end]
    label_at = style.pop("label_at", ((x0 + x1) / 2, (y0 + y1) / 2 + 0.07))
    ends = dict(patchA=texts[start].get_bbox_patch(), patchB=texts[end].get_bbox_patch())
    props = dict(arrowstyle="-|>", color="#333333", shrinkA=2, shrinkB=2, mutation_scale=14, **ends, **style)
    ax.annotate("", xy=boxes[end], xytext=boxes[start], arrowprops=props)
    ax.text(*label_at, text, ha="center", va="center", fontsize=8.5, color="#333333", style="italic")


def diagram(boxes: dict, arrows, ax=None, size=(11, 3.4), title: str | None = None):
    """Draw a flow diagram of ``boxes`` (label: centre in the unit square) and ``arrows`` ``(from, to, text[, style])``,
    ``style`` holding arrow properties and ``"label_at": (x, y)``; returns the ``Axes``. Introduced in chapter 1."""
    if ax is None:
        _, ax = plt.subplots(figsize=size)
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.axis("off")
    box = dict(boxstyle="round,pad=0.5", facecolor="#e8f0fa", edgecolor="#3a6ea5")
    texts = {label: ax.text(x, y, label, ha="center", va="center", fontsize=10, bbox=box)
             for label, (x, y) in boxes.items()}
    for arrow in arrows:
        _arrow(ax, boxes, texts, arrow)
    if title:
        ax.set_title(title, pad=14)
    return ax


def points(samples, centres=None, std=None, ax=None, title=None, lim=5.5):
    """Scatter 2-D samples over the mixture's ``centres``, each circled at 3 ``std`` (the radius of a high
    quality sample, :func:`helpers.metrics.mode_coverage`); returns the ``Axes``. Introduced in chapter 8."""
    samples = np.asarray(samples, dtype=float)
    if samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError(f"points() draws 2-D samples (n, 2), got shape {samples.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.2))
    ax.scatter(samples[:, 0], samples[:, 1], s=2, alpha=0.35, color="#3a6ea5", rasterized=True)
    if centres is not None:
        for cx, cy in np.asarray(centres):
            ax.add_patch(plt.Circle((cx, cy), 3 * std if std else 0.1, fill=False, color="#c0392b", lw=0.8))
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", xticks=[], yticks=[])
    if title:
        ax.set_title(title, fontsize=9)
    return ax
