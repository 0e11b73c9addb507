"""The GAN view plugin: per-item views, the labelled grid and the GIF in the header,
encoder and attribute views, normalize vs clip. (DIGITS' own call sequence and base
class: tests/test_digits_view.py.)"""
import base64
import io
import json
import re

import jinja2
import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin.errors import DataError
from digits_gan_plugin.latent import ModelFacts, parse_vector, run_task
from view_plugins.gan import Visualization, latent_meta

SIZE = 8
PAD = 2  # imaging.make_grid's default


def distinct_images(count, channels=1):
    """uint8 count,SIZE,SIZE,channels; image i is filled with the value 2*i + 1."""
    values = (2 * np.arange(count) + 1).astype(np.uint8)
    return np.broadcast_to(values[:, None, None, None], (count, SIZE, SIZE, channels)).copy()


def class_sweep_meta(classes=10, rows=10):
    space = ModelFacts(4, classes, True, (SIZE, SIZE, 1), "job")
    return run_task("class-sweep", space, seed=0, rows=rows).meta("class-sweep", space)


def render(template_and_context):
    template, context = template_and_context
    return jinja2.Environment(autoescape=True).from_string(template).render(**context)


def decode_uris(html, mime):
    return [Image.open(io.BytesIO(base64.b64decode(data)))
            for data in re.findall(rf'src="data:{mime};base64,([^"]+)"', html)]


def run_view(view, images):
    """DIGITS' order: every item's view, then the header. Returns (items, header)."""
    items = [render(view.get_view_template(view.process_data(str(i), None, {"output": image})))
             for i, image in enumerate(images)]
    return items, render(view.get_header_template())


def test_grid_header_draws_every_item_in_the_task_grid_with_labels():
    view = Visualization({"latent": class_sweep_meta()}, task="grid", normalize=False)
    items, header = run_view(view, distinct_images(100))
    cells = decode_uris(header.split("<table")[1].split("</table>")[0], "image/png")
    assert len(cells) == 100
    for row, col in [(0, 0), (3, 7), (9, 9)]:
        assert np.all(np.asarray(cells[row * 10 + col]) == 2 * (row * 10 + col) + 1)
    assert ">class 0</th>" in header and ">class 9</th>" in header and ">step 10</th>" in header
    assert "10 x 10" in header and "class-sweep" in header
    assert all(len(decode_uris(item, "image/png")) == 1 for item in items)


def test_grid_shape_is_taken_from_the_meta_not_guessed():
    space = ModelFacts(4, None, False, (SIZE, SIZE, 1), "job")
    meta = run_task("style-sweep", space, seed=0, steps=25).meta("style-sweep", space)
    view = Visualization({"latent": {**meta, "grid": [4, 25]}}, task="grid")
    _, header = run_view(view, distinct_images(100))
    table = header.split("<table")[1]
    assert table.count("<tr>") == 4 and len(re.findall(r"<td>", table.split("</tr>")[0])) == 25


def test_without_meta_100_items_make_a_10x10_grid():
    view = Visualization(None, task="grid")
    _, header = run_view(view, distinct_images(100))
    assert len(decode_uris(header, "image/png")) == 100 and "10 x 10" in header


def gif_cells(gif, frame, count):
    """Values of the `count` cells of a near-square GIF frame (first pixel of each)."""
    gif.seek(frame)
    pixels = np.asarray(gif.convert("L"))
    cols = int(np.ceil(np.sqrt(count)))
    scale = gif.size[0] // (cols * (SIZE + PAD) + PAD)
    step = (SIZE + PAD) * scale
    return [int(pixels[PAD * scale + (i // cols) * step, PAD * scale + (i % cols) * step]) for i in range(count)]


def test_gif_view_animates_every_cell_of_a_sweep_ping_pong():
    view = Visualization({"latent": class_sweep_meta()}, task="gif", frame_ms=50, normalize=False)
    _, header = run_view(view, distinct_images(100))
    gifs = decode_uris(header, "image/gif")
    assert len(gifs) == 1 and "18 frames" in header
    gif = gifs[0]
    assert gif.n_frames == 2 * 10 - 2
    assert gif.size[1] > 2 * (SIZE + PAD), "frames are a one-row strip"
    # frame 3 = row 3 of the class sweep: every column's 4th step; frame 10 = row 8 on the way back
    assert gif_cells(gif, 3, 10) == [2 * (30 + col) + 1 for col in range(10)]
    assert gif_cells(gif, 10, 10) == [2 * (80 + col) + 1 for col in range(10)]


def test_gif_view_walks_the_ring_of_an_analogy_grid():
    space = ModelFacts(4, None, False, (SIZE, SIZE, 1), "job")
    meta = run_task("analogy", space, seed=0, rows=4, cols=5).meta("analogy", space)
    view = Visualization({"latent": meta}, task="gif", normalize=False)
    gif = decode_uris(run_view(view, distinct_images(20))[1], "image/gif")[0]
    ring = []
    for index in range(gif.n_frames):
        gif.seek(index)
        ring.append((int(np.asarray(gif.convert("L"))[0, 0]) - 1) // 2)
    forward = [0, 1, 2, 3, 4, 9, 14, 19, 18, 17, 16, 15, 10, 5]
    assert ring == forward + forward[-2:0:-1]


def test_gif_view_of_an_animation_plays_images_in_input_order():
    space = ModelFacts(4, None, False, (SIZE, SIZE, 3), "job")
    meta = run_task("animation", space, seed=0, count=3, transitions=4).meta("animation", space)
    view = Visualization({"latent": meta}, task="gif")
    images = distinct_images(12, channels=3)
    for index in reversed(range(12)):  # DIGITS may report inputs in any order
        view.process_data(str(index), None, {"images": images[index][None]})
    assert decode_uris(render(view.get_header_template()), "image/gif")[0].n_frames == 2 * 12 - 2


def test_normalize_stretches_minus_one_to_one_outputs_and_clip_does_not():
    rng = np.random.default_rng(0)
    faces = np.tanh(rng.standard_normal((4, SIZE, SIZE, 3))).astype(np.float32) * 0.9  # -0.9..0.9
    stretched = Visualization(None, task="grid", normalize=True)
    items, header = run_view(stretched, faces)
    pixels = np.concatenate([np.asarray(im).ravel() for im in decode_uris(header, "image/png")])
    assert pixels.min() == 0 and pixels.max() == 255 and 60 < pixels.mean() < 200
    item = np.asarray(decode_uris(items[0], "image/png")[0])
    assert item.min() == 0 and item.max() == 255
    clipped = Visualization(None, task="grid", normalize=False)
    pixels = np.asarray(decode_uris(run_view(clipped, faces)[1], "image/png")[0])
    assert pixels.max() <= 1


def test_normalize_of_0_255_outputs_keeps_them():
    images = np.zeros((2, SIZE, SIZE, 1), np.float32)
    images[:, 0, 0] = 255
    header = run_view(Visualization(None, task="grid", normalize=True), images)[1]
    cell = np.asarray(decode_uris(header, "image/png")[0])
    assert cell[0, 0] == 255 and cell[1, 1] == 0


def test_encoder_view_of_this_projects_dict_outputs():
    view = Visualization(None, task="encoder")
    z = np.random.default_rng(0).standard_normal(16).astype(np.float32)
    data = view.process_data(0, distinct_images(1)[0].astype(np.float32),
                             {"z": z[None], "reconstruction": distinct_images(2)[1]})
    html = render(view.get_view_template(data))
    assert len(decode_uris(html, "image/png")) == 2
    z_text = re.search(r"<textarea[^>]*>([^<]+)</textarea>", html).group(1)
    np.testing.assert_array_equal(parse_vector(z_text, 16), z)
    assert view.get_header_template() == (None, None)


@pytest.mark.parametrize("shape", [(SIZE, SIZE), (SIZE, SIZE, 1), (SIZE, SIZE, 3)])
def test_encoder_view_splits_digits_flat_output_by_the_image_shape(shape):
    """DIGITS' encoders return one flat [z | pixels] tensor named 'output'."""
    rng = np.random.default_rng(1)
    z = rng.standard_normal(100).astype(np.float32)
    picture = rng.uniform(-1, 1, shape).astype(np.float32)
    view = Visualization(None, task="encoder")
    data = view.process_data("7", rng.uniform(0, 255, shape), {"output": np.concatenate([z, picture.ravel()])})
    html = render(view.get_view_template(data))
    z_text = re.search(r"<textarea[^>]*>([^<]+)</textarea>", html).group(1)
    np.testing.assert_array_equal(parse_vector(z_text, 100), z)
    reconstruction = np.asarray(decode_uris(html, "image/png")[1])
    expected = np.rint((picture - picture.min()) * 255 / (picture.max() - picture.min()))
    np.testing.assert_array_equal(reconstruction.reshape(expected.shape), expected)


def test_flat_output_without_an_input_uses_the_meta_image_shape():
    view = Visualization({"latent": {"input_shape": [SIZE, SIZE, 1]}}, task="encoder")
    data = view.process_data("0", None, {"output": np.arange(5 + SIZE * SIZE, dtype=np.float32)})
    assert "[0.0, 1.0, 2.0, 3.0, 4.0]" in render(view.get_view_template(data))
    with pytest.raises(DataError, match="z followed by"):
        view.process_data("1", None, {"output": np.zeros(SIZE * SIZE)})


def test_attributes_view_lists_the_top_attributes_of_an_encoded_image(tmp_path):
    names = ["Smiling", "Eyeglasses", "Male", "Young", "Bald", "Bangs"]
    vectors = np.eye(6, 100, dtype=np.float32) * np.arange(1, 7, dtype=np.float32)[:, None]
    path = tmp_path / "attribute_vectors.npz"
    np.savez(path, names=np.asarray(names), vectors=vectors)
    z = np.zeros(100, np.float32)
    z[:6] = [0.5, -1.0, 3.0, 2.0, 0.1, 0.0]
    view = Visualization(None, task="attributes", attributes_file=str(path), top=3)
    image = np.zeros((SIZE, SIZE, 3), np.float32)
    data = view.process_data("0", image, {"output": np.concatenate([z, image.ravel()])})
    html = render(view.get_view_template(data))
    found = re.findall(r"<tr><td>([^<]+)</td><td>([^<]+)</td></tr>", html)
    assert found == [("Male", "3.00"), ("Young", "2.00"), ("Smiling", "0.50")]
    with pytest.raises(DataError, match="attributes_file"):
        Visualization(None, task="attributes")


def test_latent_meta_from_an_inference_dataset_directory(tmp_path):
    meta = class_sweep_meta(classes=3, rows=2)
    (tmp_path / "dataset.json").write_text(json.dumps({"plugin_id": "gan-inference", "latent": meta}))
    assert latent_meta(str(tmp_path))["grid"] == [2, 3]
    view = Visualization(None, task="grid", inference_dataset=str(tmp_path))
    assert view.latent["grid"] == [2, 3]


def test_config_form_renders_the_task_choice_and_normalize():
    form = Visualization.get_config_form()
    html = render(Visualization.get_config_template(form))
    for task in ("grid", "gif", "encoder", "attributes"):
        assert f'value="{task}"' in html
    assert 'name="normalize"' in html and 'name="attributes_file"' in html


def test_view_rejects_outputs_that_are_not_images():
    view = Visualization(None, task="grid")
    with pytest.raises(DataError, match="H,W,C image"):
        view.process_data(0, None, {"output": np.zeros((4, 5, 6, 7, 2))})
