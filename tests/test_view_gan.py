"""The GAN view plugin: grid, GIF and encoder views rendered to HTML with data URIs."""
import base64
import io
import json
import re

import jinja2
import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin.errors import DataError
from digits_gan_plugin.latent import LatentSpace, parse_vector, run_task
from view_plugins.gan import Visualization, latent_meta

SIZE = 8
PAD = 2  # imaging.make_grid's default


def distinct_images(count, channels=1):
    """uint8 count,SIZE,SIZE,channels; image i is filled with the value 2*i + 1."""
    values = (2 * np.arange(count) + 1).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (count, SIZE, SIZE, channels)).copy()


def class_sweep_meta(classes=10, rows=10):
    space = LatentSpace(4, classes, True, (SIZE, SIZE, 1), "job")
    return run_task("class-sweep", space, seed=0, rows=rows).meta("class-sweep", space)


def render(template_and_context):
    template, context = template_and_context
    return jinja2.Template(template).render(**context)


def decode_uri(html, mime):
    match = re.search(rf'src="data:{mime};base64,([^"]+)"', html)
    assert match, f"no {mime} data URI in the view"
    return Image.open(io.BytesIO(base64.b64decode(match.group(1))))


def run_view(view, images):
    for index, image in enumerate(images):
        view.process_data(index, None, {"output": image})
    return render(view.get_summary_template())


def cell(mosaic, row, col):
    top, left = PAD + row * (SIZE + PAD), PAD + col * (SIZE + PAD)
    return np.asarray(mosaic)[top:top + SIZE, left:left + SIZE]


def test_grid_view_lays_out_a_10x10_grid_from_the_dataset_meta():
    view = Visualization({"latent": class_sweep_meta()}, task="grid")
    html = run_view(view, distinct_images(100))
    mosaic = decode_uri(html, "image/png")
    assert mosaic.size == (10 * (SIZE + PAD) + PAD,) * 2
    for row, col in [(0, 0), (3, 7), (9, 9)]:
        assert np.all(cell(mosaic, row, col) == 2 * (row * 10 + col) + 1)
    assert "10 x 10" in html and "class-sweep" in html


def test_grid_shape_is_taken_from_the_meta_not_guessed():
    space = LatentSpace(4, None, False, (SIZE, SIZE, 1), "job")
    meta = run_task("style-sweep", space, seed=0, steps=25).meta("style-sweep", space)
    view = Visualization({"latent": {**meta, "grid": [4, 25]}}, task="grid")
    mosaic = decode_uri(run_view(view, distinct_images(100)), "image/png")
    assert mosaic.size == (25 * (SIZE + PAD) + PAD, 4 * (SIZE + PAD) + PAD)


def test_gif_view_animates_every_cell_of_a_sweep_grid():
    view = Visualization({"latent": class_sweep_meta()}, task="gif", frame_ms=50)
    html = run_view(view, distinct_images(100))
    gif = decode_uri(html, "image/gif")
    assert gif.n_frames == 10 and "10 frames" in html
    assert gif.size == (10 * (SIZE + PAD) + PAD, SIZE + 2 * PAD)
    gif.seek(3)  # frame 3 = row 3 of the class sweep: every column's 4th step
    frame = np.asarray(gif.convert("L"))
    assert [int(cell(frame, 0, col)[0, 0]) for col in range(10)] == [2 * (30 + col) + 1 for col in range(10)]


def test_gif_view_walks_the_ring_of_an_analogy_grid():
    space = LatentSpace(4, None, False, (SIZE, SIZE, 1), "job")
    meta = run_task("analogy", space, seed=0, rows=4, cols=5).meta("analogy", space)
    view = Visualization({"latent": meta}, task="gif")
    gif = decode_uri(run_view(view, distinct_images(20)), "image/gif")
    assert gif.n_frames == 2 * (4 + 5) - 4
    ring = []
    for index in range(gif.n_frames):
        gif.seek(index)
        ring.append((int(np.asarray(gif.convert("L"))[0, 0]) - 1) // 2)
    assert ring == [0, 1, 2, 3, 4, 9, 14, 19, 18, 17, 16, 15, 10, 5]


def test_gif_view_of_an_animation_plays_images_in_input_order():
    space = LatentSpace(4, None, False, (SIZE, SIZE, 3), "job")
    meta = run_task("animation", space, seed=0, count=3, transitions=4).meta("animation", space)
    view = Visualization({"latent": meta}, task="gif")
    images = distinct_images(12, channels=3)
    for index in reversed(range(12)):  # DIGITS may report inputs in any order
        view.process_data(str(index), None, {"images": images[index][None]})
    assert decode_uri(render(view.get_summary_template()), "image/gif").n_frames == 12


def test_encoder_view_shows_input_reconstruction_and_copyable_z():
    view = Visualization(None, task="encoder")
    z = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    data = view.process_data(0, distinct_images(1)[0].astype(np.float32),
                             {"z": z[None], "reconstruction": distinct_images(2)[1]})
    html = render(view.get_view_template(data))
    assert len(re.findall(r'src="data:image/png;base64,', html)) == 2
    z_text = re.search(r"<textarea[^>]*>([^<]+)</textarea>", html).group(1)
    np.testing.assert_array_equal(parse_vector(z_text, 16), z)
    assert view.get_summary_template() == (None, None)


def test_latent_meta_from_an_inference_dataset_directory(tmp_path):
    meta = class_sweep_meta(classes=3, rows=2)
    (tmp_path / "dataset.json").write_text(json.dumps({"plugin_id": "gan-inference", "latent": meta}))
    assert latent_meta(str(tmp_path))["grid"] == [2, 3]
    view = Visualization(None, task="grid", inference_dataset=str(tmp_path))
    assert view.latent["grid"] == [2, 3]


def test_config_form_renders_the_explicit_task_choice():
    form = Visualization.get_config_form()
    html = render(Visualization.get_config_template(form))
    for task in ("grid", "gif", "encoder"):
        assert f'value="{task}"' in html


def test_view_rejects_outputs_that_are_not_images():
    view = Visualization(None, task="grid")
    with pytest.raises(DataError, match="H,W,C image"):
        view.process_data(0, None, {"output": np.zeros((4, 5, 6, 7, 2))})
