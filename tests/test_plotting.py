import numpy as np
import pytest

from helpers import plotting


def test_tile_places_images_row_by_row():
    imgs = np.stack([np.full((2, 3), i, np.float32) for i in range(5)])
    t = plotting.tile(imgs, ncols=3, pad=1)
    assert t.shape == (2 * 3 - 1, 3 * 4 - 1)
    assert t[0, 0] == 0 and t[0, 4] == 1 and t[0, 8] == 2 and t[3, 0] == 3 and t[3, 4] == 4
    assert t[2, 0] == 0  # padding takes the background (minimum) value


def test_image_grid_and_gif(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    imgs = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1), dtype=np.uint8)
    ax = plotting.image_grid(imgs, title="x")
    assert ax.get_title() == "x" and ax.images[0].get_array().shape == (4 * 29 - 1, 4 * 29 - 1)
    path = tmp_path / "a.gif"
    plotting.animate_grids([imgs, imgs[::-1]], labels=["a", "b"], path=str(path))
    from PIL import Image

    with Image.open(path) as gif:
        assert gif.n_frames == 2
    with pytest.raises(ValueError, match="GIF"):
        plotting.animate_grids([imgs], path=str(tmp_path / "a.mp4"))
    with pytest.raises(ValueError, match=r"\(N, H, W\)"):
        plotting.tile(np.zeros((28, 28)))
