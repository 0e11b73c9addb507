"""`digits-gan gallery`: a static, offline HTML page of every inference result of a job."""
import json
import os
import re

import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin import cli
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.gallery import animation_frames, ring_order, write_gallery
from digits_gan_plugin.imaging import save_png
from digits_gan_plugin.latent import LatentSpace, run_task

SIZE = 12


def fake_images(count, channels, seed):
    """Smooth-ish random uint8 images count,SIZE,SIZE,channels (distinct per index)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (count, SIZE // 4, SIZE // 4, channels)).astype(np.uint8)
    images = base.repeat(4, axis=1).repeat(4, axis=2)
    images[:, 0, 0, :] = np.arange(count)[:, None] % 256
    return images


def write_result(job, name, task, space, images=None, **params):
    """Write JOBDIR/inference/<name>/result.{npz,json} as `digits-gan infer` does."""
    folder = os.path.join(job, "inference", name)
    os.makedirs(folder)
    latent = run_task(task, space, seed=1, **params).meta(task, space) if task else None
    arrays = {"images": images}
    if task is None:  # an encoder result
        count = len(images)
        arrays = {"images": images, "inputs": images.astype(np.float32), "reconstructions": images[::-1],
                  "z": np.random.default_rng(0).standard_normal((count, 6)).astype(np.float32)}
    np.savez(os.path.join(folder, "result.npz"), **arrays)
    meta = {"task": task or "encode-list", "grid": latent and latent["grid"], "dataset": "ds",
            "created": "2026-01-01T00:00:00", "checkpoint": "model.ckpt-100", "latent": latent}
    with open(os.path.join(folder, "result.json"), "w") as handle:
        json.dump(meta, handle)


@pytest.fixture
def job(tmp_path):
    job = str(tmp_path / "job")
    mnist = LatentSpace(6, 10, True, (SIZE, SIZE, 1), job)
    faces = LatentSpace(6, None, False, (SIZE, SIZE, 3), job)
    write_result(job, "class-sweep", "class-sweep", mnist, fake_images(100, 1, 0), rows=10)
    write_result(job, "analogy", "analogy", faces, fake_images(20, 3, 1), rows=4, cols=5)
    write_result(job, "animation", "animation", faces, fake_images(12, 3, 2), count=3, transitions=4)
    write_result(job, "single", "single", mnist, fake_images(1, 1, 3))
    write_result(job, "encoded", None, faces, fake_images(3, 3, 4))
    save_png(fake_images(1, 3, 5)[0], os.path.join(job, "samples", "fakes000100.png"))
    return job


def referenced_files(html):
    return re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)


def test_gallery_references_only_files_that_exist(job):
    index = write_gallery(job, progress=False)
    assert index == os.path.join(job, "gallery", "index.html")
    html = open(index, encoding="utf-8").read()
    files = referenced_files(html)
    assert files, "the gallery shows no pictures"
    for name in files:
        assert not re.match(r"^[a-z]+:|^/|\.\.", name), f"{name} is not a relative link inside the gallery"
        assert os.path.isfile(os.path.join(job, "gallery", name)), name
    assert set(os.listdir(os.path.join(job, "gallery"))) == set(files) | {"index.html"}
    for expected in ("class-sweep-grid.png", "class-sweep.gif", "analogy.gif", "animation.gif",
                     "encoded-recon-2.png", "job-fakes000100.png"):
        assert expected in files
    assert "single.gif" not in files
    assert html.count("<textarea") == 3


def test_gallery_gifs_have_the_sweep_frame_counts(job):
    write_gallery(job, progress=False)
    gallery = os.path.join(job, "gallery")
    assert Image.open(os.path.join(gallery, "class-sweep.gif")).n_frames == 10
    assert Image.open(os.path.join(gallery, "analogy.gif")).n_frames == 2 * (4 + 5) - 4
    assert Image.open(os.path.join(gallery, "animation.gif")).n_frames == 12
    grid = Image.open(os.path.join(gallery, "class-sweep-grid.png"))
    assert grid.size == (10 * (SIZE + 2) + 2,) * 2


def test_gallery_is_replaced_whole_on_a_second_run(job):
    write_gallery(job, progress=False)
    stale = os.path.join(job, "gallery", "stale.png")
    open(stale, "wb").close()
    assert cli.main(["gallery", job, "--quiet"]) == 0
    assert not os.path.exists(stale)
    assert [n for n in os.listdir(job) if n.startswith(".gallery")] == []


def test_gallery_of_a_job_without_results_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no inference results"):
        write_gallery(str(tmp_path / "empty"))
    assert cli.main(["gallery", str(tmp_path / "missing")]) == 2
    assert "job directory not found" in capsys.readouterr().err


def test_ring_order_walks_the_border_clockwise():
    assert ring_order(3, 3) == [0, 1, 2, 5, 8, 7, 6, 3]
    assert ring_order(2, 4) == [0, 1, 2, 3, 7, 6, 5, 4]


def test_animation_frames_of_a_style_sweep_follow_the_rows():
    space = LatentSpace(6, 3, True, (SIZE, SIZE, 1), "job")
    meta = run_task("style-sweep", space, seed=0, steps=5).meta("style-sweep", space)
    images = fake_images(15, 1, 0)
    frames = animation_frames(images, meta)
    assert len(frames) == 5
    # frame k holds each row's k-th image side by side
    np.testing.assert_array_equal(frames[2][2:2 + SIZE, 2 + (SIZE + 2):2 + (SIZE + 2) + SIZE], images[1 * 5 + 2])
    assert animation_frames(fake_images(1, 1, 0), {"grid": [1, 1], "frames": None, "sweep_axis": None}) is None


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
ARTIFACTS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "test-artifacts")


def test_gallery_opens_offline_in_headless_chromium(job):
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing (apt-get install -y chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    index = write_gallery(job, progress=False)
    os.makedirs(ARTIFACTS, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            requests = []
            page.on("request", lambda request: requests.append(request.url))
            page.goto("file://" + index)
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "imgs => imgs.map(i => ({src: i.getAttribute('src'), ok: i.complete && i.naturalWidth > 0}))")
            page.screenshot(path=os.path.join(ARTIFACTS, "gallery.png"), full_page=True)
        finally:
            browser.close()
    assert len(images) == len(referenced_files(open(index, encoding="utf-8").read()))
    assert [i["src"] for i in images if not i["ok"]] == []
    assert all(url.startswith("file://") for url in requests), "the gallery must not fetch anything remote"


def test_gallery_uses_the_grid_of_a_result_without_latent_meta(tmp_path):
    folder = tmp_path / "job" / "inference" / "classes"
    folder.mkdir(parents=True)
    np.savez(folder / "result.npz", images=fake_images(12, 1, 0), inputs=np.zeros((12, 8), np.float32))
    (folder / "result.json").write_text(json.dumps({"task": "classes", "grid": [2, 6]}))
    write_gallery(str(tmp_path / "job"), progress=False)
    grid = Image.open(tmp_path / "job" / "gallery" / "classes-grid.png")
    assert grid.size == (6 * (SIZE + 2) + 2, 2 * (SIZE + 2) + 2)
