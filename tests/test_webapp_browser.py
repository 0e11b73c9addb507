"""The web UI end to end in headless Chromium, as a user: new dataset -> the network
list checked against it -> train -> live chart while it trains -> stop -> resume ->
inference with a snapshot choice -> evaluate -> gallery -> delete.
Screenshots of every page go to test-artifacts/webui/; with DIGITS_GAN_README_SHOTS=DIR
set, the README's are also written into DIR (docs/images when refreshing them)."""
import os
import re
import threading

import pytest
from werkzeug.serving import make_server

from browser import ARTIFACTS, launch, require_chromium
from conftest import write_mnist_idx_dir
from digits_gan_plugin.webapp import create_app
from webapp_helpers import user_folders

__all__ = ["user_folders"]
SHOTS = os.path.join(ARTIFACTS, "webui")
README_IMAGES = os.environ.get("DIGITS_GAN_README_SHOTS")
JOB_TIMEOUT_MS = 120_000


@pytest.fixture
def server(tmp_path):
    """The app on a free 127.0.0.1 port, served from a thread; yields its base URL."""
    source = tmp_path / "digits"
    write_mnist_idx_dir(source, train_count=160, val_count=40)
    app = create_app(str(tmp_path / "jobs"), allow_roots=[str(tmp_path)])
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", str(source), tmp_path / "jobs"
    httpd.shutdown()


def shot(page, name, readme=None):
    page.screenshot(path=os.path.join(SHOTS, f"{name}.png"), full_page=True)
    if readme and README_IMAGES:
        page.screenshot(path=os.path.join(README_IMAGES, readme), full_page=True)


def wait_status(page, wanted="done"):
    """Wait for the job page (which reloads itself when the job ends) to leave 'running'.
    The label is server-rendered, so a new text means the reloaded page; while it reloads
    the label is briefly missing."""
    page.wait_for_function("() => { const label = document.querySelector('#job-status [data-status]');"
                           " return label !== null && label.textContent !== 'running'; }",
                           timeout=JOB_TIMEOUT_MS)
    page.wait_for_load_state("load")
    status = page.text_content("#job-status [data-status]")
    assert status == wanted, page.text_content("#job-log")


def wait_image(page, selector):
    page.wait_for_selector(selector)
    page.wait_for_function("selector => document.querySelector(selector)?.naturalWidth > 0", arg=selector)


def build_dataset(page, base, source):
    page.goto(base + "/")
    shot(page, "home-empty")
    page.click("text=New dataset")
    page.click("text=MNIST digits")
    page.fill("#source", source)
    page.fill("#job_name", "tiny digits")
    shot(page, "new-dataset")
    page.click("#create-dataset")
    wait_status(page)
    assert "train_db" in page.text_content("table")
    wait_image(page, "#dataset-samples")
    assert page.locator("#class-histogram .bar").count() == 20  # 10 classes x 2 stages
    shot(page, "dataset", "webui-dataset.png")


def create_model(page):
    page.click("#use-dataset")
    # the shipped definitions are checked against the dataset; the best fit is preselected
    page.wait_for_selector("#network-network-mnist:checked", timeout=JOB_TIMEOUT_MS)
    page.wait_for_selector("#network-list tr.misfit", timeout=JOB_TIMEOUT_MS)
    assert page.is_disabled("#network-list tr.misfit input[type=radio]")
    page.fill("#epochs", "3")
    page.fill("#batch_size", "16")
    page.click("text=Advanced options")
    page.fill("#summary_interval", "2")
    page.fill("#job_name", "tiny cGAN")
    shot(page, "new-model", "webui-new-model.png")
    page.click("#create-model")
    page.wait_for_selector("#stop-button")


def train_stop_resume(page):
    # live chart while the job trains, then Stop (a checkpoint is written) and Resume
    page.wait_for_selector("#chart-losses .uplot", timeout=JOB_TIMEOUT_MS)
    assert page.text_content("#job-status [data-status]") == "running"
    page.click("#stop-button")
    wait_status(page, "stopped")
    page.click("#resume-button")
    page.wait_for_selector("#stop-button")
    assert page.locator("#resume-button").count() == 0  # not offered while it runs
    wait_status(page)
    log = page.text_content("#job-log")
    assert "starting TensorFlow" in log and "cuInit" not in log and "E0000" not in log
    assert log.count("$ digits-gan train") == 2  # the first run's log is kept after Resume
    page.wait_for_selector("#chart-d_outputs .uplot")  # D outputs on their own panel
    assert page.locator("#chart-losses .uplot").count() == 1
    assert page.locator("#chart-d_outputs .uplot").count() == 1
    wait_image(page, "#latest-sample")


def run_inference(page):
    options = page.eval_on_selector_all("#checkpoint option", "nodes => nodes.map(n => n.value)")
    assert options[0] == "last" and len(options) >= 2
    page.select_option("#checkpoint", options[-1])  # an older snapshot
    assert page.input_value("#task") == "class-sweep"
    page.fill("#rows", "3")
    page.fill("#seed", "1")
    shot(page, "model-trained")
    page.click("#run-inference")
    wait_status(page)
    grid = page.wait_for_selector("#result .gan-view img, #result img")
    assert grid.evaluate("img => img.complete && img.naturalWidth > 0")
    assert page.text_content("#run-seed") == "1"
    assert re.search(r"Class sweep, seed 1", page.text_content("h1"))
    shot(page, "class-sweep", "webui-inference.png")
    page.click("#run-again")
    assert page.input_value("#seed") == "1" and page.input_value("#rows") == "3"


def evaluate_and_gallery(page):
    page.fill("#evaluation input[name=samples]", "100")
    page.click("#evaluate-button")
    page.wait_for_selector("#evaluation-figures", timeout=JOB_TIMEOUT_MS * 2)  # the page reloads when it ends
    assert "conditional accuracy" in page.text_content("#evaluation-figures")
    shot(page, "model-evaluated", "webui-model.png")
    page.click("#write-gallery")
    page.wait_for_selector("img")
    shot(page, "gallery")
    page.go_back()


def delete_model(page, base, jobs_dir, model_url):
    page.goto(base + "/")
    assert "tiny digits" in page.text_content("#models")  # models grouped by their dataset
    shot(page, "home", "webui-home.png")
    page.goto(model_url)
    before = len(list(jobs_dir.iterdir()))
    page.once("dialog", lambda dialog: dialog.accept("tiny cGAN"))
    page.click("#manage summary")
    page.click("#delete-job")
    page.wait_for_url(base + "/")
    assert "tiny cGAN" not in page.text_content("#models")
    assert len(list(jobs_dir.iterdir())) < before


def test_a_user_trains_tests_evaluates_and_deletes_a_model_in_chromium(server):
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, source, jobs_dir = server
    os.makedirs(SHOTS, exist_ok=True)
    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            remote, failures = [], []
            page.on("request", lambda request: None if request.url.startswith((base, "data:"))
                    else remote.append(request.url))
            page.on("pageerror", lambda error: failures.append(str(error)))
            page.on("response", lambda response: failures.append(f"{response.status} {response.url}")
                    if response.status >= 400 else None)
            build_dataset(page, base, source)
            create_model(page)
            train_stop_resume(page)
            model_url = page.url
            run_inference(page)
            page.goto(model_url)
            evaluate_and_gallery(page)
            delete_model(page, base, jobs_dir, model_url)
        finally:
            browser.close()
    assert remote == [], "the web UI must not fetch anything from outside"
    assert failures == [], failures
