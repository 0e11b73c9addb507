"""The projector in the web UI: its form on a generator's page (uploads or a folder, the
encoders trained from the GAN as starts), refusals before a job exists, the commands a
run gets, the encode-list flow's "refine with the projector", and the run page showing
the projection's reconstructions, GIF and z file. Flask test client; no TensorFlow."""
import io
import json
import re

import numpy as np
import pytest
from PIL import Image

from digits_gan_plugin import jobdir
from digits_gan_plugin.webapp import create_app
from webapp_helpers import ENCODER, GENERATOR, csrf_token, fake_record, fake_training_job, job_folders, user_folders

__all__ = ["user_folders"]

GAN_ID, ENCODER_ID = "20260101-000000-gan", "20260101-000000-enc"


@pytest.fixture
def store(tmp_path):
    """(app, jobs dir): a conditional GAN and an encoder trained from it (--weights)."""
    jobs_dir = tmp_path / "jobs"
    gan = fake_record(jobs_dir, GAN_ID, "model", network="network-test")
    fake_training_job(gan / "model", GENERATOR, steps=(10, 20))
    encoder = fake_record(jobs_dir, ENCODER_ID, "model", network="network-test-encoder")
    fake_training_job(encoder / "model", ENCODER)
    config = json.loads((encoder / "model" / "config.json").read_text())
    (encoder / "model" / "config.json").write_text(json.dumps(dict(config, weights=str(gan / "model"))))
    (tmp_path / "shared").mkdir()
    return create_app(str(jobs_dir), allow_roots=[str(tmp_path / "shared")]), jobs_dir


def png(shape=(8, 8)):
    data = io.BytesIO()
    Image.fromarray(np.zeros(shape, np.uint8)).save(data, format="PNG")
    data.seek(0)
    return data


def post_projection(client, **fields):
    token = csrf_token(client, f"/jobs/{GAN_ID}")
    data = {"csrf_token": token, "checkpoint": "last", "project-steps": "40", "project-lr": "0.1",
            "project-perceptual_weight": "0", "project-perceptual": "judge", **fields}
    return client.post(f"/jobs/{GAN_ID}/project", content_type="multipart/form-data", data=data)


def started_run(app, response):
    jobs = app.extensions["digits_gan_jobs"]
    run = jobs.get(response.headers["Location"].rsplit("/", 1)[1])
    jobs.stop(run)  # the commands are what is tested, not TensorFlow
    return run


def test_the_generators_page_offers_the_projector_with_its_encoders(store):
    app, _ = store
    page = app.test_client().get(f"/jobs/{GAN_ID}").get_data(as_text=True)
    assert 'id="projector-form"' in page and 'name="project-steps"' in page and 'name="project-perceptual"' in page
    encoders = page.split('name="project_encoder"')[1].split("</select>")[0]
    assert re.findall(r'value="([^"]*)"', encoders) == ["", ENCODER_ID]
    assert 'name="project_label"' in page  # conditional: a class may be given
    assert 'id="projector-form"' not in app.test_client().get(f"/jobs/{ENCODER_ID}").get_data(as_text=True)


def test_a_projection_run_projects_the_uploads_then_infers_their_z(store):
    app, jobs_dir = store
    response = post_projection(app.test_client(), project_encoder=ENCODER_ID, project_label="2",
                               project_images=[(png(), "a.png"), (png(), "b.png")])
    assert response.status_code == 302
    run = started_run(app, response)
    project, infer = run.commands
    assert project[3:5] == ["latent", "project"] and project[project.index("--job") + 1] == str(jobs_dir / GAN_ID / "model")
    uploads = jobs_dir / run.id / "uploads"
    assert project[5] == str(uploads) and sorted(p.name for p in uploads.iterdir()) == ["0000-a.png", "0001-b.png"]
    assert project[project.index("--encoder") + 1] == str(jobs_dir / ENCODER_ID / "model")
    assert project[project.index("--steps") + 1] == "40" and project[project.index("--label") + 1] == "2"
    assert infer[infer.index("--z") + 1] == str(jobs_dir / run.id / "projection" / "z.npz")
    assert run.task == "project" and run.name.startswith("Projection of 2 image(s)")
    # "run again" fills the projector form in
    page = app.test_client().get(f"/jobs/{GAN_ID}?rerun={run.id}").get_data(as_text=True)
    assert re.search(r'name="project-steps"[^>]*value="40"', page)
    assert f'value="{ENCODER_ID}" selected' in page


def test_a_folder_on_the_server_is_projected_when_inside_the_allowed_roots(store, tmp_path):
    app, _ = store
    folder = tmp_path / "shared" / "digits"
    folder.mkdir()
    Image.new("L", (8, 8)).save(folder / "one.png")
    run = started_run(app, post_projection(app.test_client(), project_folder=str(folder)))
    assert run.commands[0][5] == str(folder) and "--encoder" not in run.commands[0]


@pytest.mark.parametrize("fields, message", [
    ({}, "upload images or name a folder of images to project"),
    ({"project-steps": "0"}, "--steps 0: expected an integer &gt;= 1"),
    ({"project-lr": "-1"}, "--lr -1.0: expected a number &gt; 0"),
    ({"project-perceptual": "vgg"}, "please correct the projector"),
    ({"project_encoder": "20260101-000000-xxx"}, "not an encoder trained from this model"),
    ({"project_label": "3"}, "class &#39;3&#39;: expected 0..2"),
    ({"project_folder": "/etc"}, "is outside the allowed folders"),
])
def test_bad_projector_requests_are_refused_before_a_job_exists(store, fields, message):
    app, jobs_dir = store
    if "project_folder" not in fields and fields != {}:
        fields = dict(fields, project_images=(png(), "a.png"))
    response = post_projection(app.test_client(), **fields)
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and 'id="projector-error"' in text and message in text
    assert job_folders(jobs_dir) == [ENCODER_ID, GAN_ID]


def test_encode_list_refined_with_the_projector_on_the_encoders_gan(store):
    app, jobs_dir = store
    client = app.test_client()
    page = client.get(f"/jobs/{ENCODER_ID}").get_data(as_text=True)
    assert 'name="refine"' in page
    token = csrf_token(client, f"/jobs/{ENCODER_ID}")
    form = {"csrf_token": token, "view_plugin": "gan-view", "task": "encode-list", "checkpoint": "last",
            "max_count": "10", "view-task": "encoder", "view-frame_ms": "120", "refine": "1"}
    response = client.post(f"/jobs/{ENCODER_ID}/infer", content_type="multipart/form-data",
                           data=dict(form, images=(png(), "a.png")))
    assert response.status_code == 302
    run = started_run(app, response)
    encode, infer, project = run.commands
    assert project[3:6] == ["latent", "project", str(jobs_dir / run.id / "uploads")]
    assert project[project.index("--job") + 1] == str(jobs_dir / GAN_ID / "model")
    assert project[project.index("--encoder") + 1] == str(jobs_dir / ENCODER_ID / "model")
    assert run.data["projection"] == str(jobs_dir / run.id / "projection")
    # an encoder whose GAN the store does not know cannot refine
    config_path = jobs_dir / ENCODER_ID / "model" / "config.json"
    config_path.write_text(json.dumps(dict(json.loads(config_path.read_text()), weights=None)))
    assert 'name="refine"' not in client.get(f"/jobs/{ENCODER_ID}").get_data(as_text=True)
    response = client.post(f"/jobs/{ENCODER_ID}/infer", content_type="multipart/form-data",
                           data=dict(form, images=(png(), "a.png")))
    assert response.status_code == 400 and "is not in the job store" in response.get_data(as_text=True)


def test_the_run_page_shows_the_projection(store):
    from digits_gan_plugin.runtime.projector import Projection, _write_projection

    app, jobs_dir = store
    run_id = "20260101-000001-run"
    folder = fake_record(jobs_dir, run_id, "inference", model=GAN_ID, task="project",
                         target=str(jobs_dir / GAN_ID / "model" / "inference" / run_id),
                         projection=str(jobs_dir / run_id / "projection"))
    targets = np.zeros((2, 8, 8, 1), np.uint8)
    projection = Projection(vectors=np.zeros((2, 7), np.float32), z=np.zeros((2, 4), np.float32),
                            labels=np.array([0, 2]), reconstructions=targets + 9, mse=np.array([0.01, 0.02]),
                            frames=[targets], seconds=0.5)
    _write_projection(folder / "projection", targets, projection, ["a.png", "b.png"],
                      dict(mse=[0.01, 0.02], mean_mse=0.015, seconds_per_image=0.25, start="encoder",
                           settings={"steps": 40}))
    jobdir.write_result(jobs_dir / GAN_ID / "model" / "inference" / run_id,
                        {"inputs": np.zeros((2, 1, 1, 7), np.float32), "images": targets + 9},
                        info={"task": "z-file", "latent": {}})
    client = app.test_client()
    page = client.get(f"/jobs/{run_id}").get_data(as_text=True)
    assert 'id="projection-mse">0.0150<' in page and "started from encoder, 40 Adam steps" in page
    for name in ("reconstruction.png", "optimisation.gif", "z.npz", "projection.json"):
        assert f"/jobs/{run_id}/projection/{name}" in page
        assert client.get(f"/jobs/{run_id}/projection/{name}").status_code == 200
    with Image.open(io.BytesIO(client.get(f"/jobs/{run_id}/projection/optimisation.gif").data)) as gif:
        assert gif.n_frames == 2
    assert client.get(f"/jobs/{run_id}/projection/job.json").status_code == 404  # only its own files
    assert client.get(f"/jobs/{GAN_ID}/projection/z.npz").status_code == 404
