"""Every latent task's vectors: counts, order, endpoints, corners, seeds."""
import json

import numpy as np
import pytest

from digits_gan_plugin import jobdir
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.latent import TASKS, ModelFacts, format_vector, run_task

Z_DIM, CLASSES = 6, 4
COND = ModelFacts(Z_DIM, CLASSES, True, (8, 8, 1), "job")
UNCOND = ModelFacts(Z_DIM, None, False, (8, 8, 3), "job")


def z_text(seed):
    return format_vector(np.random.default_rng(seed).standard_normal(Z_DIM))


def parse(text):
    return np.asarray(json.loads(text), dtype=np.float32)


def test_registry_has_every_task():
    assert set(TASKS) == {"class-sweep", "style-sweep", "single", "animation", "analogy",
                          "attributes", "encode-list"}


def test_class_sweep_follows_digits_whole_vector_slerp_with_both_ends():
    batch = run_task("class-sweep", COND, seed=3, z=z_text(1), rows=5)
    assert batch.grid == (5, CLASSES) and batch.vectors.shape == (5 * CLASSES, Z_DIM + CLASSES)
    assert batch.vectors.dtype == np.float32
    cells = batch.vectors.reshape(5, CLASSES, -1)
    z = parse(z_text(1))
    np.testing.assert_array_equal(cells[0], COND.join(z, np.eye(CLASSES)))  # top row: [z, class c]
    np.testing.assert_array_equal(cells[-1], COND.join(z, np.roll(np.eye(CLASSES), -1, axis=0)))  # c + 1
    for column in range(CLASSES):  # DIGITS: slerp(linspace(0, 1, rows), [z, c], [z, c + 1])
        start, end = cells[0, column].astype(np.float64), cells[-1, column].astype(np.float64)
        omega = np.arccos(start @ end / np.linalg.norm(start) / np.linalg.norm(end))
        t = 0.25
        expected = (np.sin((1 - t) * omega) * start + np.sin(t * omega) * end) / np.sin(omega)
        np.testing.assert_allclose(cells[1, column], expected, rtol=1e-5)
    assert not np.allclose(cells[2, 0, :Z_DIM], z)  # the z part moves too, as in DIGITS
    assert batch.sweep_axis == 0 and batch.frames == 5


def test_class_sweep_label_variant_keeps_z_and_stops_before_next_class():
    batch = run_task("class-sweep", COND, seed=3, z=z_text(1), rows=5, interpolate="label")
    cells = batch.vectors.reshape(5, CLASSES, -1)
    assert np.all(cells[..., :Z_DIM] == parse(z_text(1)))
    np.testing.assert_array_equal(cells[0, :, Z_DIM:], np.eye(CLASSES))  # top row: pure classes
    y = cells[:, 1, Z_DIM:]  # column 1 moves from class 1 toward class 2
    assert np.all(np.diff(y[:, 1]) < 0) and np.all(np.diff(y[:, 2]) > 0) and y[-1, 2] < 1
    assert np.all(y[:, [0, 3]] == 0)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1, rtol=1e-6)
    with pytest.raises(DataError, match="interpolate"):
        run_task("class-sweep", COND, seed=3, interpolate="sideways")


@pytest.mark.parametrize("task, params, expected", [
    ("class-sweep", {"rows": 1001}, "rows is 1001, expected 1 to 1000"),
    ("style-sweep", {"steps": 0}, "steps is 0, expected 1 to 1000"),
    ("animation", {"count": 400, "transitions": 400}, "400 z's x 400 transitions make 160,000 images, more than "
                                                       "the 100,000 an inference dataset holds"),
    ("analogy", {"rows": 500, "cols": 300}, "500 rows x 300 columns make 150,000 images"),
])
def test_oversized_tasks_are_refused_before_any_vector_is_made(task, params, expected):
    with pytest.raises(DataError, match=expected):
        run_task(task, COND, seed=0, **params)


def test_class_sweep_needs_conditional_model():
    with pytest.raises(DataError, match="class-conditional"):
        run_task("class-sweep", UNCOND, seed=0)


def test_style_sweep_follows_digits_rows_are_steps_columns_are_classes():
    batch = run_task("style-sweep", COND, seed=0, z_start=z_text(1), z_end=z_text(2), steps=7)
    cells = batch.vectors.reshape(7, CLASSES, -1)
    assert batch.grid == (7, CLASSES) and batch.sweep_axis == 0 and batch.frames == 7
    for column in range(CLASSES):
        assert np.array_equal(cells[0, column, :Z_DIM], parse(z_text(1)))
        assert np.array_equal(cells[-1, column, :Z_DIM], parse(z_text(2)))
        assert np.all(cells[:, column, Z_DIM + column] == 1)
    assert np.array_equal(cells[:, 0, :Z_DIM], cells[:, -1, :Z_DIM])  # one z per row


def test_style_sweep_transposed_layout_is_one_row_per_class():
    batch = run_task("style-sweep", COND, seed=0, z_start=z_text(1), z_end=z_text(2), steps=7,
                     layout="transposed")
    cells = batch.vectors.reshape(CLASSES, 7, -1)
    assert batch.grid == (CLASSES, 7) and batch.sweep_axis == 1
    for row in range(CLASSES):
        assert np.array_equal(cells[row, 0, :Z_DIM], parse(z_text(1)))
        assert np.array_equal(cells[row, -1, :Z_DIM], parse(z_text(2)))
        assert np.all(cells[row, :, Z_DIM + row] == 1)


def test_style_sweep_unconditional_is_one_column_without_label():
    batch = run_task("style-sweep", UNCOND, seed=0, steps=5)
    assert batch.grid == (5, 1) and batch.vectors.shape == (5, Z_DIM)


def test_random_z_follows_the_declared_distribution_normal_by_default():
    uniform = ModelFacts(Z_DIM * 50, None, False, (8, 8, 1), z_distribution="uniform")
    z = run_task("single", uniform, seed=0).vectors[0]
    assert z.min() >= -1 and z.max() <= 1
    default = ModelFacts(Z_DIM * 50, None, False, (8, 8, 1))
    assert default.z_distribution == "normal"
    for task, params in [("single", {}), ("style-sweep", {"steps": 2}), ("animation", {"count": 2}),
                         ("analogy", {"rows": 2, "cols": 2})]:
        z = run_task(task, default, seed=1, **params).vectors[0]
        assert z.min() < -1 or z.max() > 1, task  # N(0, 1): some of 300 values leave [-1, 1]
        assert abs(z.mean()) < 0.2 and 0.8 < z.std() < 1.2, task


def test_single_image_given_z_and_class():
    batch = run_task("single", COND, seed=0, z=z_text(5), label=2)
    assert batch.vectors.shape == (1, Z_DIM + CLASSES)
    assert np.array_equal(batch.vectors[0, :Z_DIM], parse(z_text(5)))
    assert batch.vectors[0, Z_DIM:].tolist() == [0, 0, 1, 0]


def test_single_image_rejects_bad_class_and_bad_z():
    with pytest.raises(DataError, match=r"class is 4, expected 0\.\.3"):
        run_task("single", COND, seed=0, label=4)
    with pytest.raises(DataError, match=r"^z has 2 numbers, expected 6$"):
        run_task("single", COND, seed=0, z="1, 2")


def test_animation_loops_through_given_zs():
    keys = [z_text(s) for s in (1, 2, 3)]
    batch = run_task("animation", UNCOND, seed=0, zs="\n".join(keys), transitions=4)
    assert batch.vectors.shape == (12, Z_DIM) and batch.frames == 12 and batch.grid is None
    for index, key in enumerate(keys):
        assert np.array_equal(batch.vectors[index * 4], parse(key))
    # The last frame leads back toward the first key: the loop closes smoothly.
    last_step = np.linalg.norm(batch.vectors[-1] - batch.vectors[0])
    assert 0 < last_step < np.linalg.norm(batch.vectors[8] - batch.vectors[0])


def test_animation_accepts_a_pasted_2d_array_and_rejects_a_partial_z():
    keys = np.random.default_rng(4).standard_normal((3, Z_DIM)).astype(np.float32)
    batch = run_task("animation", UNCOND, seed=0, zs=np.array2string(keys, precision=9), transitions=2)
    np.testing.assert_allclose(batch.vectors[::2], keys, rtol=1e-6)
    with pytest.raises(DataError, match=r"^zs has 7 numbers, expected a multiple of 6 \(one z per 6\)$"):
        run_task("animation", UNCOND, seed=0, zs=z_text(1) + "\n7\n")


def test_analogy_corners_are_exactly_the_four_vectors():
    source, sink1, sink2 = z_text(1), z_text(2), z_text(3)
    batch = run_task("analogy", COND, seed=0, source=source, sink1=sink1, sink2=sink2, rows=4, cols=5, label=1)
    cells = batch.vectors.reshape(4, 5, -1)[..., :Z_DIM]
    assert np.array_equal(cells[0, 0], parse(source))
    assert np.array_equal(cells[0, -1], parse(sink1))
    assert np.array_equal(cells[-1, 0], parse(sink2))
    assert np.array_equal(cells[-1, -1], parse(sink1) + parse(sink2) - parse(source))
    assert batch.grid == (4, 5) and batch.frames == 2 * (4 + 5) - 4 and batch.sweep_axis == "ring"
    assert np.all(batch.vectors[:, Z_DIM + 1] == 1)


def test_attribute_edit_ramps_each_row_of_coefficients(tmp_path):
    smile, glasses = np.eye(Z_DIM)[0], np.eye(Z_DIM)[1]
    path = tmp_path / "attributes.npz"
    np.savez(path, names=np.array(["Smiling", "Eyeglasses"]), vectors=np.stack([smile, glasses]))
    batch = run_task("attributes", UNCOND, seed=0, attributes_file=str(path), z=z_text(1),
                     coefficients="Smiling=2\nSmiling=-1, Eyeglasses=0.5", steps=3)
    cells = batch.vectors.reshape(2, 3, Z_DIM)
    z = parse(z_text(1))
    assert np.array_equal(cells[0, 0], z) and np.array_equal(cells[1, 0], z)
    np.testing.assert_allclose(cells[0, 2], z + 2 * smile, rtol=1e-6)
    np.testing.assert_allclose(cells[1, 1], z + 0.5 * (-smile + 0.5 * glasses), rtol=1e-6)


def test_attribute_edit_rejects_unknown_attribute_and_pickles(tmp_path):
    path = tmp_path / "attributes.npz"
    np.savez(path, Smiling=np.ones(Z_DIM))
    with pytest.raises(DataError, match="unknown attribute 'Bald'"):
        run_task("attributes", UNCOND, seed=0, attributes_file=str(path), coefficients="Bald=1")
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, Smiling=np.array([{"a": 1}], dtype=object))
    with pytest.raises(DataError, match="pickled.npz"):
        run_task("attributes", UNCOND, seed=0, attributes_file=str(pickled), coefficients="Smiling=1")


def test_encode_list_from_folder_and_celeba_list(tmp_path):
    for name in ("b.png", "a.jpg", "notes.txt", "c.png"):
        (tmp_path / name).write_bytes(b"x")
    batch = run_task("encode-list", COND, seed=0, folder=str(tmp_path), max_count=2)
    assert [p.rsplit("/", 1)[1] for p in batch.image_paths] == ["a.jpg", "b.png"] and batch.vectors is None
    listing = tmp_path / "list_attr_celeba.txt"
    listing.write_text("3\nSmiling Male\nc.png 1 -1\nb.png -1 1\na.jpg 1 1\n")
    batch = run_task("encode-list", COND, seed=0, celeba_list=str(listing), max_count=10)
    assert [p.rsplit("/", 1)[1] for p in batch.image_paths] == ["c.png", "b.png", "a.jpg"]
    listing.write_text("c.png 1\nmissing.png 1\n")
    with pytest.raises(DataError, match="missing.png: image not found"):
        run_task("encode-list", COND, seed=0, celeba_list=str(listing))


def test_encode_list_class_sub_folders_and_given_label(tmp_path):
    for name in ("1/b.png", "1/a.png", "3/c.png", "top.png", "notes.txt"):  # folders named by class ids
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    batch = run_task("encode-list", COND, seed=0, folder=str(tmp_path))
    assert [p.split(str(tmp_path))[1] for p in batch.image_paths] == ["/top.png", "/1/a.png", "/1/b.png", "/3/c.png"]
    assert batch.image_labels == [-1, 1, 1, 3]  # -1: the encoder infers the class
    assert run_task("encode-list", COND, seed=0, folder=str(tmp_path), label=2).image_labels == [2] * 4
    assert run_task("encode-list", UNCOND, seed=0, folder=str(tmp_path)).image_labels is None
    with pytest.raises(DataError, match="class is 7"):
        run_task("encode-list", COND, seed=0, folder=str(tmp_path), label=7)
    with pytest.raises(DataError, match="not conditional"):
        run_task("encode-list", UNCOND, seed=0, folder=str(tmp_path), label=1)
    (tmp_path / "9").mkdir()
    (tmp_path / "9" / "d.png").write_bytes(b"x")
    with pytest.raises(DataError, match="class sub-folder 9, expected 0..3"):
        run_task("encode-list", COND, seed=0, folder=str(tmp_path))


def test_seed_is_recorded_and_reproduces_random_zs():
    first = run_task("style-sweep", COND, steps=3)
    seed = first.params["seed"]
    assert isinstance(seed, int)
    again = run_task("style-sweep", COND, seed=seed, steps=3)
    assert np.array_equal(first.vectors, again.vectors)
    assert not np.array_equal(first.vectors, run_task("style-sweep", COND, seed=seed + 1, steps=3).vectors)
    json.dumps(first.meta("style-sweep", COND))


def test_model_facts_from_job_config(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model": {"z_dim": 100, "num_classes": 10, "conditional": True, "input_shape": [28, 28, 1]}}))
    facts = jobdir.read_model_facts(str(tmp_path))
    assert (facts.z_dim, facts.num_classes, facts.y_dim, facts.input_shape) == (100, 10, 10, (28, 28, 1))
    random_z = run_task("single", facts, seed=0).vectors[0, :100]
    assert random_z.min() < -1 or random_z.max() > 1  # nothing declared: N(0, 1), as DIGITS
    (tmp_path / "config.json").write_text(json.dumps(
        {"model": {"z_dim": 100, "num_classes": 10, "conditional": True, "input_shape": [28, 28, 1],
                   "z_distribution": "uniform"}}))
    random_z = run_task("single", jobdir.read_model_facts(str(tmp_path)), seed=0).vectors[0, :100]
    assert random_z.min() >= -1 and random_z.max() <= 1
    (tmp_path / "config.json").write_text(json.dumps({"model": {"z_dim": 100}}))
    with pytest.raises(DataError, match="config.json"):
        jobdir.read_model_facts(str(tmp_path))