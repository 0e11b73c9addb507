"""imaging.py: grids, PNG/GIF writing, uint8 conversion, square image loading."""
import os

import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin.errors import DataError
from digits_gan_plugin.imaging import load_square_image, make_grid, save_gif, save_png, to_uint8


def test_to_uint8_clips_and_rounds():
    np.testing.assert_array_equal(to_uint8([-3.0, 0.4, 0.6, 254.5, 300.0]), [0, 0, 1, 254, 255])
    assert to_uint8(np.zeros((2, 2))).dtype == np.uint8


def test_make_grid_places_images_row_major_with_padding():
    images = np.stack([np.full((2, 3, 1), value, np.uint8) for value in (10, 20, 30)])
    grid = make_grid(images, pad=1, pad_value=255)
    # 3 images -> 2x2 grid: each cell 2x3 plus 1px padding
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 1)
    assert (grid[1:3, 1:4] == 10).all() and (grid[1:3, 5:8] == 20).all() and (grid[4:6, 1:4] == 30).all()
    assert (grid[4:6, 5:8] == 255).all()  # empty cell
    assert (grid[0] == 255).all() and (grid[:, 4] == 255).all()


def test_make_grid_explicit_rows_and_rgb():
    images = np.zeros((6, 4, 4, 3), np.uint8)
    assert make_grid(images, rows=1, pad=0).shape == (4, 24, 3)
    assert make_grid(images, cols=2, pad=0).shape == (12, 8, 3)
    with pytest.raises(ValueError):
        make_grid(images, rows=1, cols=2)


def test_save_png_roundtrip_and_no_temp_left(tmp_path):
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    save_png(rgb, tmp_path / "a.png")
    save_png(rgb[..., :1], tmp_path / "b.png")
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "a.png")), rgb)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "b.png")), rgb[..., 0])
    assert sorted(os.listdir(tmp_path)) == ["a.png", "b.png"]


def test_save_gif_writes_all_frames(tmp_path):
    frames = [np.full((8, 8, 3), value, np.uint8) for value in (0, 128, 255)]
    save_gif(frames, tmp_path / "a.gif", duration_ms=50)
    with Image.open(tmp_path / "a.gif") as gif:
        assert gif.n_frames == 3
        gif.seek(2)
        assert np.asarray(gif.convert("RGB"))[0, 0].tolist() == [255, 255, 255]


def test_load_square_image_center_crops_then_resizes(tmp_path):
    # 40 wide x 20 high: red, then green over columns 6..33, then blue; the centered
    # 20x20 crop (columns 10..29) is green with a margin for the resize filter
    pixels = np.zeros((20, 40, 3), np.uint8)
    pixels[:, :6] = (255, 0, 0)
    pixels[:, 6:34] = (0, 255, 0)
    pixels[:, 34:] = (0, 0, 255)
    Image.fromarray(pixels).save(tmp_path / "a.png")
    square = load_square_image(tmp_path / "a.png", 10)
    assert square.shape == (10, 10, 3)
    assert (square == (0, 255, 0)).all()
    grey = load_square_image(tmp_path / "a.png", 4, mode="L")
    assert grey.shape == (4, 4, 1)


def test_load_square_image_jpeg_draft_keeps_colour(tmp_path):
    Image.new("RGB", (178, 218), (200, 30, 90)).save(tmp_path / "a.jpg", quality=95)
    for size in (64, 16):  # 16 allows a 1/4 draft reduction of the 108 crop
        square = load_square_image(tmp_path / "a.jpg", size, crop=108).astype(int)
        assert np.abs(square - (200, 30, 90)).max() <= 3


def test_load_square_image_rejects_non_images_and_small_images(tmp_path):
    (tmp_path / "fake.jpg").write_text("not an image")
    with pytest.raises(DataError, match="fake.jpg"):
        load_square_image(tmp_path / "fake.jpg", 8)
    Image.new("RGB", (50, 50)).save(tmp_path / "small.png")
    with pytest.raises(DataError, match="small.png.*crop"):
        load_square_image(tmp_path / "small.png", 8, crop=108)
