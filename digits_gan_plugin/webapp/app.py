"""The Flask app of ``digits-gan serve``: DIGITS' flow (home, new dataset, new model,
model page with inference) over the jobs of a jobs directory and what the job store
finds under the allowed roots.

This factory keeps only the set-up: configuration, the secret key, CSRF, the Host and
Origin checks, size limits and error handlers. The pages are blueprints by area:
manage.py (home and any job: status, files, stop, resume, rename, delete, download),
datasets.py, models.py (new model, model page, charts, evaluation, TensorBoard) and
results.py (inference runs). No TensorFlow here.
"""
import errno

from flask import Flask, render_template, request, send_from_directory
from flask_wtf.csrf import CSRFError, CSRFProtect

from ..errors import DataError, os_error_line
from . import common, datasets, manage, models, results
from .jobs import JobManager
from .safety import HostGuard, PathGuard, check_field_sizes, check_writable_folder, secret_key, served_hosts

MAX_UPLOAD_MB = 16
MAX_PIXELS = 4096 * 4096
MAX_FORM_PARTS = 200


def create_app(jobs_dir="digits-gan-jobs", allow_roots=(), max_upload_mb=MAX_UPLOAD_MB, max_pixels=MAX_PIXELS,
               hosts=None):
    """The web app over `jobs_dir` (created if missing; DataError when it cannot be
    written). Paths typed into forms must lie in `jobs_dir` or one of `allow_roots`,
    whose datasets and jobs the UI lists too. `hosts`: the names the server answers to
    (default: the loopback names)."""
    jobs_dir = check_writable_folder(jobs_dir)
    manager = JobManager(jobs_dir, roots=allow_roots)
    host_guard = HostGuard(hosts or served_hosts("127.0.0.1"))
    app = Flask(__name__)
    app.config.update(SECRET_KEY=secret_key(), MAX_CONTENT_LENGTH=max_upload_mb * 1024 * 1024,
                      MAX_FORM_MEMORY_SIZE=max_upload_mb * 1024 * 1024, MAX_FORM_PARTS=MAX_FORM_PARTS,
                      WTF_CSRF_TIME_LIMIT=None, DIGITS_GAN_MAX_PIXELS=max_pixels,
                      DIGITS_GAN_MAX_UPLOAD_MB=max_upload_mb)
    app.extensions["digits_gan_jobs"] = manager
    app.extensions["digits_gan_guard"] = PathGuard([manager.jobs_dir, *allow_roots])
    app.add_template_filter(common.when, "when")
    for blueprint in (manage.blueprint, datasets.blueprint, models.blueprint, results.blueprint):
        app.register_blueprint(blueprint)

    @app.before_request
    def check_request():
        problem = host_guard.problem(request.method, request.host, request.headers.get("Origin"),
                                     request.headers.get("Referer"))
        if problem:
            return render_template("message.html", title="Request refused", message=problem), 403
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                check_field_sizes(request.form)
            except DataError as error:
                return render_template("message.html", title="Form refused", message=str(error)), 413
        return None

    CSRFProtect(app)  # after the Host check: a rebound page never gets to see a token
    _register_error_pages(app)

    @app.route("/favicon.ico")
    def favicon():
        return send_from_directory(app.static_folder, "favicon.svg", mimetype="image/svg+xml")

    return app


def _register_error_pages(app):
    def message(title, text, status):
        return render_template("message.html", title=title, message=text), status

    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return message("Form refused", f"The form was sent without a valid security token ({error.description}). "
                                       "Reload the page and submit it again.", 400)

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config["DIGITS_GAN_MAX_UPLOAD_MB"]
        return message("Upload refused", f"The upload is larger than the limit of {limit} MB; nothing was saved.", 413)

    @app.errorhandler(404)
    def not_found(error):
        return message("Not found", "No such page or job.", 404)

    @app.errorhandler(DataError)
    def bad_input(error):
        return message("Cannot do that", str(error), 422)

    @app.errorhandler(OSError)
    def cannot_read_or_write(error):  # a full disk, a folder removed or made read-only meanwhile
        status = 507 if error.errno in (errno.ENOSPC, errno.EDQUOT) else 500
        return message("Cannot read or write a file", os_error_line(error), status)
