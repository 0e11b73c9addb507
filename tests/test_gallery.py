"""`digits-gan gallery`: a static, offline page of a job's training grids, evaluation
and inference results, drawn with the view plugin's templates."""
import json
import os
import re
import sys

import numpy as np
import pytest
from PIL import Image
from conftest import FILL_THE_DISK, run_on_a_tiny_disk

from digits_gan_plugin import cli, pictures
from digits_gan_plugin.errors import DataError
from digits_gan_plugin.gallery import write_gallery
from digits_gan_plugin.imaging import make_grid, save_png
from digits_gan_plugin.jobdir import JobPaths, write_result as write_job_result
from digits_gan_plugin.latent import ModelFacts, run_task

SIZE = 12
EPOCHS = 6


def fake_images(count, channels, seed):
    """Smooth-ish random uint8 images count,SIZE,SIZE,channels (distinct per index)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (count, SIZE // 4, SIZE // 4, channels)).astype(np.uint8)
    images = base.repeat(4, axis=1).repeat(4, axis=2)
    images[:, 0, 0, :] = np.arange(count)[:, None] % 256
    return images


def write_result(job, name, task, space, images=None, **params):
    """An inference result as `digits-gan infer` writes it (through jobdir)."""
    latent = run_task(task, space, seed=1, **params).meta(task, space) if task else None
    arrays = {"images": images, "inputs": np.zeros((len(images), 8), np.float32)}
    if task is None:  # an encoder result: z, and the generator's image of each z
        arrays = {"images": images[::-1], "inputs": images.astype(np.float32),
                  "z": np.random.default_rng(0).standard_normal((len(images), 6)).astype(np.float32)}
    info = {"task": task or "encode-list", "grid": latent and latent["grid"], "dataset": "ds",
            "created": "2026-01-01T00:00:00", "checkpoint": "model.ckpt-100", "latent": latent}
    write_job_result(JobPaths(job).result(name), arrays, info)


@pytest.fixture
def job(tmp_path):
    job = str(tmp_path / "mnist-gan")
    mnist = ModelFacts(6, 10, True, (SIZE, SIZE, 1), job)
    faces = ModelFacts(6, None, False, (SIZE, SIZE, 3), job)
    write_result(job, "class-sweep", "class-sweep", mnist, fake_images(100, 1, 0), rows=10)
    write_result(job, "analogy", "analogy", faces, fake_images(20, 3, 1), rows=4, cols=5)
    write_result(job, "animation", "animation", faces, fake_images(12, 3, 2), count=3, transitions=4)
    write_result(job, "single", "single", mnist, fake_images(1, 1, 3))
    write_result(job, "encoded", None, faces, fake_images(3, 3, 4))
    paths = JobPaths(job)
    save_png(make_grid(fake_images(16, 1, 5)), paths.samples / "reals.png")
    for epoch in range(1, EPOCHS + 1):
        save_png(make_grid(fake_images(16, 1, 10 + epoch)), paths.fakes(epoch))
    return job


def referenced_files(html):
    return re.findall(r"""(?:src|href)=['"]([^'"#]+)['"]""", html)


def gallery_html(job):
    return open(write_gallery(job, progress=False), encoding="utf-8").read()


def test_gallery_references_only_files_that_exist(job):
    html = gallery_html(job)
    files = set(referenced_files(html))
    assert files, "the gallery shows no pictures"
    gallery = os.path.join(job, "gallery")
    for name in files:
        assert not re.match(r"^[a-z]+:|^/|\.\.", name), f"{name} is not a relative link inside the gallery"
        assert os.path.isfile(os.path.join(gallery, name)), name
    written = {os.path.relpath(os.path.join(root, n), gallery) for root, _, names in os.walk(gallery) for n in names}
    assert written == files | {"index.html"}
    for expected in ("class-sweep-grid.png", "class-sweep.gif", "analogy.gif", "animation.gif",
                     "encoded-recon-2.png", "training-epoch0006.png", "training-timelapse.gif"):
        assert expected in files
    assert "single.gif" not in files
    assert html.count("<textarea") == 3
    assert ".navbar" in html and ".gan-grid" in html, "the web UI's look and the result styles are inlined"


def test_sections_follow_the_pipeline_and_the_page_is_titled_by_the_job(job):
    with open(os.path.join(job, "eval.json"), "w") as handle:
        json.dump({"generated": {"conditional_accuracy": 0.91, "mnist_score": 8.5, "frechet_distance": 3.25},
                   "real": {"accuracy": 0.99, "mnist_score": 9.7, "frechet_distance_floor": 0.5},
                   "ratios": {"accuracy": 0.92, "mnist_score": 0.88}, "summary": "eval summary line",
                   "mode_collapse": {"per_class": [0.9] * 10}, "settings": {"samples": 100, "seed": 0}}, handle)
    html = gallery_html(job)
    assert "<title>mnist-gan - digits-gan gallery</title>" in html and "<h1>mnist-gan" in html
    order = [html.index(f'id="{name}"') for name in ("training", "evaluation", "result-analogy", "result-class-sweep")]
    assert order == sorted(order)
    assert "MNIST score" in html and "8.5" in html and "eval summary line" in html
    assert "diversity vs real, class 9" in html


def test_every_epoch_grid_is_shown_with_a_timelapse(job):
    html = gallery_html(job)
    for epoch in range(1, EPOCHS + 1):
        assert f'src="training-epoch{epoch:04d}.png"' in html and f"epoch {epoch}<" in html
    timelapse = Image.open(os.path.join(job, "gallery", "training-timelapse.gif"))
    assert timelapse.n_frames == EPOCHS


def test_result_grids_have_one_labelled_image_per_cell(job):
    html = gallery_html(job)
    section = html[html.index('id="result-class-sweep"'):html.index('id="result-encoded"')]
    assert len(re.findall(r'<img src="class-sweep/cell-\d+\.png"', section)) == 100
    for label in ["class 0", "class 9", "step 1", "step 10"]:
        assert f">{label}</th>" in section
    assert "gan-zoomed" in section  # click to zoom
    assert 'href="class-sweep-grid.png"' in section and 'href="class-sweep.gif"' in section


def test_gallery_gifs_ping_pong_at_the_grid_size(job):
    write_gallery(job, progress=False)
    gallery = os.path.join(job, "gallery")
    sweep = Image.open(os.path.join(gallery, "class-sweep.gif"))
    assert sweep.n_frames == 2 * 10 - 2
    cell = SIZE * pictures.display_scale(SIZE, 10 * SIZE)
    assert sweep.size[0] >= 10 * cell * 0.5, "a GIF frame is shown far smaller than the grid"
    assert sweep.size[1] > 2 * sweep.size[0] / 10, "a GIF frame is a one-row strip"
    assert Image.open(os.path.join(gallery, "analogy.gif")).n_frames == 2 * (2 * (4 + 5) - 4) - 2
    assert Image.open(os.path.join(gallery, "animation.gif")).n_frames == 2 * 12 - 2
    grid = Image.open(os.path.join(gallery, "class-sweep-grid.png"))
    assert grid.size == (10 * (SIZE + 2) + 2,) * 2


def test_gallery_is_replaced_whole_on_a_second_run(job):
    write_gallery(job, progress=False)
    stale = os.path.join(job, "gallery", "stale.png")
    open(stale, "wb").close()
    assert cli.main(["gallery", job, "--quiet"]) == 0
    assert not os.path.exists(stale)
    assert [n for n in os.listdir(job) if n.startswith(".gallery")] == []


def test_a_full_disk_is_one_line_and_keeps_the_previous_gallery(job, tmp_path):
    mount = tmp_path / "mnt"
    gallery = f"{sys.executable} -m digits_gan_plugin.cli gallery {mount}/job --quiet"
    done = run_on_a_tiny_disk(mount, f"cp -r {job} {mount}/job && {gallery} >/dev/null && cp {mount}/job/gallery/index.html "
                                     f"{tmp_path}/before.html && {FILL_THE_DISK.format(mount=mount)}; {gallery}; "
                                     f"echo rc=$?; cmp {mount}/job/gallery/index.html {tmp_path}/before.html && "
                                     f"echo kept; ls -A {mount}/job", size="4m")
    assert done.stdout.split()[:2] == ["rc=2", "kept"], (done.stdout, done.stderr)
    assert done.stderr.strip() == f"digits-gan: error: {mount}/job/gallery: cannot write the gallery (No space left " \
                                  f"on device); nothing was written"
    assert sorted(done.stdout.split()[2:]) == sorted(os.listdir(job) + ["gallery"])  # no staging folder left


def test_gallery_of_a_job_without_results_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no inference results"):
        write_gallery(str(tmp_path / "empty"))
    assert cli.main(["gallery", str(tmp_path / "missing")]) == 2
    assert "job directory not found" in capsys.readouterr().err


def test_gallery_title_option_and_web_ui_job_folders(job, tmp_path):
    assert "<h1>My run" in open(write_gallery(job, progress=False, title="My run"), encoding="utf-8").read()
    assert cli.main(["gallery", job, "--quiet", "--title", "Other name"]) == 0
    assert "<h1>Other name" in open(os.path.join(job, "gallery", "index.html"), encoding="utf-8").read()


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
            cell = page.query_selector("#result-class-sweep .gan-grid img")
            width = cell.bounding_box()["width"]
            page.click("#result-class-sweep .gan-grid")  # click to zoom, and again to go back
            zoomed = cell.bounding_box()["width"]
            page.click("#result-class-sweep .gan-grid")
            unzoomed = cell.bounding_box()["width"]
        finally:
            browser.close()
    assert len(images) == open(index, encoding="utf-8").read().count("<img ")
    assert [i["src"] for i in images if not i["ok"]] == []
    assert all(url.startswith("file://") for url in requests), "the gallery must not fetch anything remote"
    assert width >= 48 and zoomed > 2 * width and unzoomed == width


def test_gallery_uses_the_grid_of_a_result_without_latent_meta(tmp_path):
    folder = tmp_path / "job" / "inference" / "classes"
    folder.mkdir(parents=True)
    np.savez(folder / "result.npz", images=fake_images(12, 1, 0), inputs=np.zeros((12, 8), np.float32))
    (folder / "result.json").write_text(json.dumps({"task": "classes", "grid": [2, 6], "classes": [3, 7]}))
    html = open(write_gallery(str(tmp_path / "job"), progress=False), encoding="utf-8").read()
    grid = Image.open(tmp_path / "job" / "gallery" / "classes-grid.png")
    assert grid.size == (6 * (SIZE + 2) + 2, 2 * (SIZE + 2) + 2)
    assert ">class 3</th>" in html and ">class 7</th>" in html
