"""What a first-time user of the web UI runs into: a phone-sized screen, abbreviated
labels, error pages with no way back to the job, a chart point that was not drawn, a
Delete button that did nothing when the name was mistyped. Flask test client, plus one
short browser test (no TensorFlow)."""
import re
import threading

import pytest
from werkzeug.serving import make_server

from browser import launch, require_chromium
from digits_gan_plugin.webapp import charts, create_app
from digits_gan_plugin.webapp import models as webapp_models
from webapp_helpers import GENERATOR, csrf_token, fake_dataset, fake_record, fake_training_job, user_folders

__all__ = ["user_folders"]  # the autouse fixture: secret key and caches in tmp folders
MODEL_ID = "20260101-000000-gan"


@pytest.fixture
def jobs_dir(tmp_path):
    return tmp_path / "jobs"


@pytest.fixture
def client(jobs_dir):
    return create_app(str(jobs_dir)).test_client()


def model_record(jobs_dir, with_config=True):
    record = fake_record(jobs_dir, MODEL_ID, "model", network="network-test", target=str(jobs_dir / MODEL_ID / "model"))
    if with_config:
        fake_training_job(record / "model", GENERATOR, steps=(10, 20))
    return record


def test_pages_declare_a_viewport_so_phones_do_not_shrink_them(client):
    html = client.get("/").get_data(as_text=True)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html


def test_new_model_labels_spell_out_abbreviations(client):
    html = client.get("/models/new").get_data(as_text=True)
    labels = dict(re.findall(r'<label class="control-label" for="([^"]+)">([^<]+)</label>', html))
    assert labels["lr"] == "Learning rate"
    assert labels["lr_policy"] == "Learning-rate policy"
    assert labels["keep"] == "Checkpoints to keep"
    assert labels["xla"] == "XLA" and labels["ema_decay"] == "EMA decay"


def test_new_model_fields_carry_their_help_not_only_the_hover_icon(client):
    # the "?" icon is a span with a title: no keyboard focus, no screen reader; the input itself says it
    html = client.get("/models/new").get_data(as_text=True)
    field = re.search(r'<input[^>]*id="lr"[^>]*>', html).group(0)
    assert 'title="base learning rate"' in field
    assert '="None"' not in html  # no step="None" / title="None" on fields without a step or a help


def test_an_error_page_of_a_job_action_links_back_to_the_job(client, jobs_dir):
    model_record(jobs_dir)
    token = csrf_token(client, f"/jobs/{MODEL_ID}")
    response = client.post(f"/jobs/{MODEL_ID}/rename", data={"csrf_token": token, "name": " "})
    html = response.get_data(as_text=True)
    assert response.status_code == 422
    assert f'id="back-to-job" href="/jobs/{MODEL_ID}"' in html
    assert 'id="back-to-job"' not in client.get("/jobs/20990101-000000-none").get_data(as_text=True)  # 404: no job


def test_the_evaluation_samples_field_is_a_bounded_number(client, jobs_dir, monkeypatch):
    model_record(jobs_dir)
    monkeypatch.setattr(webapp_models, "evaluable", lambda facts, config: True)
    html = client.get(f"/jobs/{MODEL_ID}").get_data(as_text=True)
    field = re.search(r'<input[^>]*name="samples"[^>]*>', html).group(0)
    assert 'type="number"' in field and 'min="20"' in field and 'max="100000"' in field and "required" in field


def test_a_refused_run_opens_at_its_form_not_at_the_top_of_a_long_page(client, jobs_dir):
    # the error shows in the form's panel, some 2000 px down the model page
    model_record(jobs_dir)
    html = client.get(f"/jobs/{MODEL_ID}").get_data(as_text=True)
    assert f'action="/jobs/{MODEL_ID}/infer#inference"' in html
    assert f'action="/jobs/{MODEL_ID}/project#projector"' in html
    assert '<label class="control-label" for="project-lr">Learning rate</label>' in html


def test_the_checkpoint_note_shows_no_question_mark_before_the_config_exists(client, jobs_dir):
    model_record(jobs_dir, with_config=False)
    html = client.get(f"/jobs/{MODEL_ID}").get_data(as_text=True)
    assert "the last ? are kept" not in html and "the newest are kept" in html


def test_a_series_with_a_single_point_is_drawn_as_a_dot():
    epoch_rows = [{"epoch": "1", "step": "40", "images_per_sec": "154.4", "d_loss": "1.4"}]
    step_rows = [{"step": "5", "d_loss": "1.5"}, {"step": "10", "d_loss": "1.3"}]
    by_id = {panel["id"]: panel for panel in charts.panels(epoch_rows, step_rows)}
    assert by_id["speed"]["series"][0]["points"] is True  # one epoch: one point, no line
    assert by_id["losses"]["series"][0]["points"] is False


@pytest.fixture
def server(jobs_dir, tmp_path):
    record = fake_record(jobs_dir, "20260101-000000-data", "dataset", target=str(tmp_path / "jobs" /
                                                                                  "20260101-000000-data" / "dataset"))
    fake_dataset(record / "dataset")
    httpd = make_server("127.0.0.1", 0, create_app(str(jobs_dir)), threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", record
    httpd.shutdown()


def test_delete_with_a_mistyped_name_says_why_and_a_phone_screen_fits(server):
    require_chromium()
    from playwright.sync_api import sync_playwright

    base, record = server
    dialogs = []

    def answer(dialog):
        dialogs.append((dialog.type, dialog.message))
        dialog.accept("wrong name") if dialog.type == "prompt" else dialog.accept()

    with sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            page.on("dialog", answer)
            page.goto(f"{base}/jobs/{record.name}")
            page.click("#manage summary")
            page.click("#delete-job")
            page.wait_for_timeout(300)
            # a phone: the open Manage menu and the home page's tables stay on the screen
            page.set_viewport_size({"width": 390, "height": 844})
            page.goto(f"{base}/jobs/{record.name}")
            page.click("#manage summary")
            menu_right = page.eval_on_selector(".manage-body", "node => node.getBoundingClientRect().right")
            page.goto(base + "/")
            home_width = page.evaluate("document.documentElement.scrollWidth")
            # choosing a dataset reloads New model for it: what was typed stays
            page.goto(base + "/models/new")
            page.fill("[name=job_name]", "my digits")
            page.fill("[name=epochs]", "7")
            with page.expect_navigation():
                page.eval_on_selector("[name=dataset]", "node => node.dispatchEvent(new Event('change'))")
            kept = (page.input_value("[name=job_name]"), page.input_value("[name=epochs]"))
        finally:
            browser.close()
    assert [kind for kind, _ in dialogs] == ["prompt", "alert"]
    assert "Not deleted" in dialogs[1][1] and "wrong name" in dialogs[1][1]
    assert record.is_dir()
    assert menu_right <= 390 and home_width <= 390
    assert kept == ("my digits", "7")


def test_values_typed_before_the_dataset_menu_reloads_new_model_are_kept(client):
    html = client.get("/models/new?dataset=none&typed=1&job_name=my+digits&epochs=7&lr=0.01").get_data(as_text=True)
    assert 'value="my digits"' in html and 'value="7"' in html and 'value="0.01"' in html
    assert 'value="my digits"' not in client.get("/models/new?dataset=none").get_data(as_text=True)
