"""The GAN view plugin inside an emulated DIGITS (tests/digits_host): found through its
entry point, subclassing DIGITS' base, its config form rendered and submitted as DIGITS
does, then DIGITS' call sequence: constructor, per-item views, header, ng templates."""
import base64
import io
import re

import numpy as np
import pytest
from PIL import Image

import digits_host
from digits_host import VIEW_GROUP, browser_values, digits_installed, discover, make_app, render_form, run_view

Z_DIM = 100


@pytest.fixture
def digits():
    """(app, view class) inside an emulated DIGITS."""
    with digits_installed():
        views = discover(VIEW_GROUP)
        assert "gan-view" in views, sorted(views)
        yield make_app(), views["gan-view"]


def config_values(app, view, **changes):
    """What a browser submits from the rendered config form, with `changes`."""
    _, html = render_form(app, view.get_config_form, view.get_config_template)
    return browser_values(html, **changes)


def images_of(html, mime="image/png"):
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(data))))
            for data in re.findall(rf'src="data:{mime};base64,([^"]+)"', html or "")]


def generated(count, shape, low=0.0, high=255.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, (count,) + shape).astype(np.float32)


def test_the_view_subclasses_digits_base_and_answers_its_static_calls(digits):
    app, view = digits
    assert issubclass(view, digits_host.VisualizationInterface)
    assert view.get_title() == "GAN" and view.get_default_visibility() in (True, False)
    assert view.get_dirname()


def test_100_items_render_100_images_in_the_header(digits):
    app, view = digits
    items, header, ng = run_view(app, view, {"id": "dataset-job"}, config_values(app, view),
                                 {"ids": [str(i) for i in range(100)], "data": [None] * 100},
                                 {"output": generated(100, (28, 28, 1))})
    assert header is not None, "DIGITS shows nothing of the grid"
    assert len(images_of(header)) == 100
    assert len(items) == 100 and all(len(images_of(item)) == 1 for item in items)
    assert ng == (None, None)


def test_gif_task_puts_the_animation_in_the_header(digits):
    app, view = digits
    _, header, _ = run_view(app, view, None, config_values(app, view, task="gif"),
                            {"ids": [str(i) for i in range(16)], "data": [None] * 16},
                            {"output": generated(16, (8, 8, 3))})
    assert len(images_of(header, "image/gif")) == 1


def test_celeba_range_outputs_are_normalized_not_white(digits):
    """A -1..1 (tanh) face generator: normalize (on by default, as DIGITS) stretches it."""
    app, view = digits
    faces = np.tanh(generated(9, (64, 64, 3), -2, 2))
    _, header, _ = run_view(app, view, None, config_values(app, view),
                            {"ids": [str(i) for i in range(9)], "data": [None] * 9}, {"output": faces})
    pixels = np.concatenate([cell.ravel() for cell in images_of(header)])
    assert (pixels == 255).mean() < 0.05 and 60 < pixels.mean() < 200 and pixels.std() > 30
    # unticking normalize clips instead: -1..1 becomes (nearly) black, never white
    _, clipped, _ = run_view(app, view, None, config_values(app, view, normalize=None),
                             {"ids": ["0"], "data": [None]}, {"output": faces[:1]})
    assert images_of(clipped)[0].max() <= 1


def test_encoder_view_of_digits_flat_output(digits):
    """DIGITS' encoders: one 'output' per item, [z (100) | 64*64*3 pixels]."""
    app, view = digits
    rng = np.random.default_rng(3)
    inputs = generated(2, (64, 64, 3))
    z = rng.standard_normal((2, Z_DIM)).astype(np.float32)
    flat = np.concatenate([z, np.tanh(inputs.reshape(2, -1) / 128 - 1)], axis=1)
    items, header, _ = run_view(app, view, None, config_values(app, view, task="encoder"),
                                {"ids": ["a.png", "b.png"], "data": list(inputs)}, {"output": flat})
    assert header is None
    for item, vector in zip(items, z):
        assert len(images_of(item)) == 2 and "a.png" in items[0]
        text = re.search(r"<textarea[^>]*>([^<]+)</textarea>", item).group(1)
        np.testing.assert_allclose([float(v) for v in text.strip("[]").split(",")], vector)


def test_attributes_view_from_an_npz(digits, tmp_path):
    app, view = digits
    path = tmp_path / "attribute_vectors.npz"
    np.savez(path, names=np.asarray(["Smiling", "Male", "Young"]), vectors=np.eye(3, Z_DIM, dtype=np.float32))
    z = np.zeros(Z_DIM, np.float32)
    z[1] = 2.0
    image = generated(1, (8, 8, 3))[0]
    items, _, _ = run_view(app, view, None, config_values(app, view, task="attributes", attributes_file=str(path)),
                           {"ids": ["0"], "data": [image]}, {"output": np.concatenate([z, image.ravel()])[None]})
    assert re.findall(r"<tr><td>([^<]+)</td>", items[0])[0] == "Male"


def test_a_missing_attributes_file_is_a_form_error(digits, tmp_path):
    app, view = digits
    values = config_values(app, view, task="attributes", attributes_file=str(tmp_path / "missing.npz"))
    with pytest.raises(ValueError, match="attributes_file"):
        run_view(app, view, None, values, {"ids": [], "data": []}, {"output": np.zeros((0, 4))})
