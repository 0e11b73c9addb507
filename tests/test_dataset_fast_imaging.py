"""load_square_image's fast path (simplejpeg decode + matrix resize) against Pillow,
its fallbacks, and dataset_io's per-chunk feature sum."""
import io

import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin import dataset_io, imaging
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.imaging import load_square_image


def photo_like(height, width, seed=0):
    """uint8 H,W,3: smooth gradients plus noise and a few hard edges (JPEG-friendly)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, (x + y) * 127 / (width + height)], axis=-1)
    pixels += rng.normal(0, 8, pixels.shape)
    pixels[height // 3:height // 2, width // 4:width // 2] = (250, 20, 60)
    return np.clip(pixels, 0, 255).astype(np.uint8)


def pillow_result(path, size, mode="RGB", crop=None):
    return imaging._load_square_pillow(path, size, mode, crop)


@pytest.mark.parametrize("seed", range(40))
def test_resize_matches_pillow_box_and_bilinear_within_one_level(seed):
    rng = np.random.default_rng(seed)
    height, width = rng.integers(6, 90, 2)
    channels = int(rng.choice([1, 3]))
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    side = int(rng.integers(1, min(height, width) + 1))
    size = int(rng.integers(1, 70))  # shrinking (BOX) and enlarging (BILINEAR)
    left, top = rng.uniform(0, width - side), rng.uniform(0, height - side)
    box = (left, top, left + side, top + side)
    filter_ = Image.Resampling.BOX if side >= size else Image.Resampling.BILINEAR
    expected = np.asarray(Image.fromarray(pixels[..., 0] if channels == 1 else pixels).resize((size, size), filter_, box=box))
    resized = imaging._resize(pixels, box, size)
    assert resized.shape == (size, size, channels) and resized.dtype == np.uint8
    assert np.abs(resized.astype(int) - expected.reshape(size, size, channels)).max() <= 1


def test_resize_of_a_constant_image_is_exact():
    pixels = np.full((218, 178, 3), (200, 30, 255), np.uint8)
    np.testing.assert_array_equal(imaging._resize(pixels, (35, 55, 143, 163), 64), np.broadcast_to(pixels[:64, :64], (64, 64, 3)))


def save_jpeg(path, pixels, mode="RGB", **options):
    Image.fromarray(pixels).convert(mode).save(path, format="JPEG", quality=90, **options)
    return path


@pytest.mark.parametrize("size, crop, mode", [(64, 108, "RGB"), (16, 108, "RGB"), (64, None, "RGB"),
                                              (64, 108, "L"), (200, 108, "RGB")])
def test_jpeg_fast_path_matches_pillow(tmp_path, monkeypatch, size, crop, mode):
    # (16, 108): 1/4 DCT reduction; (64, None): 1/2; (200, 108): enlarging, bilinear
    path = save_jpeg(tmp_path / "a.jpg", photo_like(218, 178))
    expected = pillow_result(path, size, mode, crop).astype(int)
    pytest.importorskip("simplejpeg")
    monkeypatch.setattr(imaging, "_load_square_pillow", None)  # fails if called
    square = load_square_image(path, size, mode=mode, crop=crop)
    assert square.shape == expected.shape and square.dtype == np.uint8
    assert np.abs(square.astype(int) - expected).max() <= 2


@pytest.mark.parametrize("kind", ["progressive", "grey"])
def test_progressive_and_grey_jpegs_take_the_fast_path(tmp_path, monkeypatch, kind):
    options = {"progressive": True} if kind == "progressive" else {}
    path = save_jpeg(tmp_path / "a.jpg", photo_like(120, 100, seed=1), mode="L" if kind == "grey" else "RGB", **options)
    expected = {mode: pillow_result(path, 32, mode, 90).astype(int) for mode in ("RGB", "L")}
    pytest.importorskip("simplejpeg")
    monkeypatch.setattr(imaging, "_load_square_pillow", None)  # fails if called
    for mode in ("RGB", "L"):
        square = load_square_image(path, 32, mode=mode, crop=90)
        assert np.abs(square.astype(int) - expected[mode]).max() <= 2


def test_cmyk_jpeg_png_and_missing_simplejpeg_use_pillow(tmp_path, monkeypatch):
    pixels = photo_like(60, 50, seed=2)
    cmyk = save_jpeg(tmp_path / "cmyk.jpg", pixels, mode="CMYK")
    png = tmp_path / "a.png"
    Image.fromarray(pixels).save(png)
    rgb = save_jpeg(tmp_path / "rgb.jpg", pixels)
    calls = []
    original = imaging._load_square_pillow
    monkeypatch.setattr(imaging, "_load_square_pillow", lambda *args: calls.append(args[0]) or original(*args))
    np.testing.assert_array_equal(load_square_image(cmyk, 20), original(cmyk, 20, "RGB", None))
    np.testing.assert_array_equal(load_square_image(png, 20), original(png, 20, "RGB", None))
    assert calls == [cmyk, png]
    monkeypatch.setattr(imaging, "_simplejpeg", lambda: None)
    np.testing.assert_array_equal(load_square_image(rgb, 20), original(rgb, 20, "RGB", None))
    assert calls[-1] == rgb


def test_broken_and_too_small_jpegs_raise_data_error(tmp_path):
    good = io.BytesIO()
    Image.fromarray(photo_like(60, 50)).save(good, format="JPEG")
    (tmp_path / "cut.jpg").write_bytes(good.getvalue()[:200])
    with pytest.raises(DataError, match="cut.jpg"):
        load_square_image(tmp_path / "cut.jpg", 16)
    (tmp_path / "small.jpg").write_bytes(good.getvalue())
    with pytest.raises(DataError, match="small.jpg.*crop"):
        load_square_image(tmp_path / "small.jpg", 16, crop=55)
    with pytest.raises(DataError, match="missing.jpg"):
        load_square_image(tmp_path / "missing.jpg", 16)


@pytest.mark.parametrize("count", [3, dataset_io.MAX_CHUNK, 300])
def test_feature_sum_is_exact_for_uint8_and_float(count):
    rng = np.random.default_rng(count)
    features = [rng.integers(200, 256, (3, 4, 5), dtype=np.uint8) for _ in range(count)]
    total = dataset_io._feature_sum(features)
    assert total.dtype == np.uint64
    np.testing.assert_array_equal(total, np.sum(np.stack(features).astype(np.uint64), axis=0))
    floats = [feature.astype(np.float32) / 7 for feature in features]
    np.testing.assert_allclose(dataset_io._feature_sum(floats), np.sum(np.stack(floats).astype(np.float64), axis=0))


def test_resize_output_is_channel_planar_for_the_datum():
    pixels = np.random.default_rng(3).integers(0, 256, (218, 178, 3), dtype=np.uint8)
    square = imaging._resize(pixels, (35, 55, 143, 163), 64)
    assert square.shape == (64, 64, 3) and square.transpose(2, 0, 1).flags.c_contiguous


def test_fast_decode_stays_within_a_grey_level_on_average(tmp_path):
    pytest.importorskip("simplejpeg")
    means = []
    for seed in range(4):
        path = save_jpeg(tmp_path / f"{seed}.jpg", photo_like(218, 178, seed=seed))
        accurate = load_square_image(path, 64, crop=108).astype(int)
        fast = load_square_image(path, 64, crop=108, fast_decode=True).astype(int)
        assert fast.shape == accurate.shape == (64, 64, 3)
        difference = np.abs(fast - accurate)
        means.append(difference.mean())
        # plain chroma upsampling moves saturated colour edges (the red block) by up to
        # half a source pixel: rare large differences there, small ones elsewhere
        assert np.percentile(difference, 99) <= 8
    assert 0 < max(means) < 1.5  # differs (so the fast decoder was used), but only slightly


def jpeg_bytes(pixels, mode="RGB", **options):
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="JPEG", **options)
    return buffer.getvalue()


def whole_file_decode(monkeypatch):
    """Make _load_square_jpeg decode every row (the reference for the row-cut decode)."""
    monkeypatch.setattr(imaging, "_without_rows_below", lambda data, height, rows: (data, height))


@pytest.mark.parametrize("seed", range(40))
def test_decoding_only_the_rows_above_the_crop_bottom_is_exact(monkeypatch, seed):
    pytest.importorskip("simplejpeg")
    rng = np.random.default_rng(seed)
    height, width = (int(n) for n in rng.integers(20, 240, 2))
    subsampling, quality = int(rng.choice([0, 1, 2])), int(rng.integers(50, 98))  # 4:4:4, 4:2:2, 4:2:0
    file_mode, mode = ("L", "L") if seed % 7 == 0 else ("RGB", "L" if seed % 5 == 0 else "RGB")
    data = jpeg_bytes(photo_like(height, width, seed), file_mode, quality=quality, subsampling=subsampling)
    side, size = int(rng.integers(1, min(height, width) + 1)), int(rng.integers(4, 100))
    fast = seed % 3 == 0
    cuts = []
    cut = imaging._without_rows_below
    monkeypatch.setattr(imaging, "_without_rows_below", lambda *args: cuts.append(cut(*args)[1] < args[1]) or cut(*args))
    square = imaging._load_square_jpeg(data, "a.jpg", size, mode, side, fast)
    whole_file_decode(monkeypatch)
    np.testing.assert_array_equal(square, imaging._load_square_jpeg(data, "a.jpg", size, mode, side, fast))
    assert cuts == [True] or side * 2 > height  # most crops end well above the bottom


def test_the_celeba_crop_decodes_fewer_rows():
    simplejpeg = pytest.importorskip("simplejpeg")
    data = jpeg_bytes(photo_like(218, 178), quality=90)
    cut_data, rows = imaging._without_rows_below(data, 218, 165)
    assert rows == 165 and len(cut_data) == len(data)
    top = imaging.decode_jpeg_rows(data, 165)
    assert top.shape == (165, 178, 3)
    np.testing.assert_array_equal(top[:164], simplejpeg.decode_jpeg(data)[:164])
    assert imaging._without_rows_below(data, 218, 218) == (data, 218)
    progressive = jpeg_bytes(photo_like(218, 178), quality=90, progressive=True)
    assert imaging._without_rows_below(progressive, 218, 165) == (progressive, 218)


def test_a_jpeg_cut_short_above_the_crop_bottom_is_still_an_error(tmp_path):
    data = jpeg_bytes(photo_like(218, 178), quality=90)
    (tmp_path / "cut.jpg").write_bytes(data[:len(data) // 3])  # ends in the crop's rows
    with pytest.raises(DataError, match=r"cut\.jpg: not a readable image"):
        load_square_image(tmp_path / "cut.jpg", 64, crop=108)
    corrupt = bytearray(data)
    corrupt[len(data) // 3:len(data) // 3 + 40] = b"\xff\xd9" * 20  # an end-of-image marker mid-scan
    # libjpeg's complaint about it is not mistaken for the expected one about the rows
    # left unread: the file goes to Pillow, as it does when every row is decoded
    assert imaging._load_square_jpeg(bytes(corrupt), "corrupt.jpg", 64, "RGB", 108) is None


@pytest.mark.parametrize("seed", range(20))
def test_two_tap_box_shrink_is_the_exact_mean_rounded_half_up(seed):
    rng = np.random.default_rng(seed)
    height, width = (int(n) for n in rng.integers(8, 120, 2))
    channels = int(rng.choice([1, 3]))
    pixels = rng.integers(0, 256, (height, width, channels), dtype=np.uint8)
    side = int(rng.integers(2, min(height, width) + 1))
    size = int(rng.integers(-(-side // 2), side + 1))  # 1..2 source pixels per output pixel
    left, top = float(np.float32(rng.uniform(0, width - side))), float(np.float32(rng.uniform(0, height - side)))
    assert imaging._two_taps(height, top, top + side, size) is not None
    rows = imaging._pillow_weights(height, top, top + side, size)
    cols = imaging._pillow_weights(width, left, left + side, size)
    exact = np.floor(np.einsum("ij,jkc,lk->ilc", rows, pixels.astype(np.float64), cols) + 0.5)
    resized = imaging._resize(pixels, (left, top, left + side, top + side), size)
    np.testing.assert_array_equal(resized, exact)
    assert resized.transpose(2, 0, 1).flags.c_contiguous
