"""The web UI end to end in headless Chromium: build a dataset, train a model picked from
the model-definition list for 3 steps, run a class sweep and see its grid render.
Screenshots of every page go to test-artifacts/webui/; with DIGITS_GAN_README_SHOTS=DIR
set, the README's three are also written into DIR (docs/images when refreshing them)."""
import os
import threading

import pytest
from werkzeug.serving import make_server

from browser import ARTIFACTS, launch, require_chromium
from conftest import write_mnist_idx_dir
from digits_gan_plugin.webapp import create_app

SHOTS = os.path.join(ARTIFACTS, "webui")
README_IMAGES = os.environ.get("DIGITS_GAN_README_SHOTS")
JOB_TIMEOUT_MS = 60_000


@pytest.fixture
def server(tmp_path):
    """The app on a free 127.0.0.1 port, served from a thread; yields its base URL."""
    source = tmp_path / "digits"
    write_mnist_idx_dir(source, train_count=160, val_count=32)
    app = create_app(str(tmp_path / "jobs"), allow_roots=[str(tmp_path)])
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", str(source)
    httpd.shutdown()


def shot(page, name, readme=None):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)
    if readme and README_IMAGES:
        page.screenshot(path=os.path.join(README_IMAGES, readme), full_page=True)


def wait_done(page):
    """Wait for the job page (which reloads itself when the job ends) to say done."""
    page.wait_for_function("() => document.querySelector('#job-status [data-status]').textContent !== 'running'",
                           timeout=JOB_TIMEOUT_MS)
    status = page.text_content("#job-status [data-status]")
    assert status == "done", page.text_content("#job-log")


def test_dataset_model_and_class_sweep_in_chromium(server):
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, source = server
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 860})
            remote = []
            page.on("request", lambda request: None if request.url.startswith((base, "data:"))
                    else remote.append(request.url))
            page.goto(base + "/")
            shot(page, "home-empty")

            # New dataset: the MNIST plugin's own form
            page.click("text=New Dataset")
            page.click("text=MNIST digits")
            page.fill("#source", source)
            page.fill("#job_name", "tiny digits")
            shot(page, "new-dataset")
            page.click("#create-dataset")
            wait_done(page)
            assert "train_db" in page.text_content("table")
            page.wait_for_function("() => document.querySelector('#dataset-samples').naturalWidth > 0")
            shot(page, "dataset")

            # New model: network-mnist picked from the list, 3 steps of 16
            page.click("#use-dataset")
            page.check("#network-network-mnist")
            page.fill("#epochs", "1")
            page.fill("#batch_size", "16")
            page.fill("#max_steps", "3")
            page.fill("#job_name", "tiny cGAN")
            shot(page, "new-model", "webui-new-model.png")
            page.click("#create-model")
            wait_done(page)
            page.wait_for_selector("#loss-chart polyline", state="attached", timeout=10_000)
            page.wait_for_function("() => document.querySelector('#latest-sample').naturalWidth > 0")

            # Inference: a class sweep shown as a grid by the GAN view plugin
            page.select_option("#task", "class-sweep")
            page.fill("#rows", "3")
            page.fill("#seed", "1")
            shot(page, "model", "webui-model.png")
            page.click("#run-inference")
            wait_done(page)
            grid = page.wait_for_selector("#result .gan-view img")
            assert grid.evaluate("img => img.complete && img.naturalWidth > 0")
            assert "3 x 10" in page.text_content("#result")
            shot(page, "class-sweep")

            page.goto(base + "/")
            assert page.text_content("#models").count("done") == 1
            shot(page, "home", "webui-home.png")
        finally:
            browser.close()
    assert remote == [], "the web UI must not fetch anything from outside"
