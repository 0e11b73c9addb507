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

from flask import Flask, jsonify, render_template, request, send_from_directory
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

from ..errors import DataError, os_error_line
from . import common, datasets, manage, models, results
from .jobs import JobManager
from .safety import (HostGuard, PathGuard, check_field_sizes, check_request_text, check_writable_folder, secret_key,
                     served_hosts)

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
                                     request.headers.get("Referer"), request.headers.get("Sec-Fetch-Site"))
        if problem:
            return error_page("Request refused", problem, 403)
        if request.method in ("POST", "PUT", "PATCH"):
            try:
                check_field_sizes(request.form)
            except DataError as error:
                return error_page("Form refused", str(error), 413)
        try:
            check_request_text(request.path, request.args, request.form, request.files)
        except DataError as error:
            return error_page("Request refused", str(error), 400)
        return None

    CSRFProtect(app)  # after the Host check: a rebound page never gets to see a token
    _register_error_pages(app)

    @app.route("/favicon.ico")
    def favicon():
        return send_from_directory(app.static_folder, "favicon.svg", mimetype="image/svg+xml")

    return app


def wants_json():
    """Whether the request is for one of the JSON endpoints (status.json, metrics.json,
    fit.json), which the pages poll: their errors are JSON too (a job's own file named
    *.json is not one: its route is the files route)."""
    return request.url_rule is not None and request.url_rule.rule.endswith(".json")


def error_page(title, text, status):
    """The message page (or {error, status} for a JSON endpoint) answered with `status`."""
    if wants_json():
        return jsonify(error=f"{title}: {text}", status=status), status
    job_id = (request.view_args or {}).get("job_id") if status != 404 else None
    return render_template("message.html", title=title, message=text, job_id=job_id), status


def _register_error_pages(app):
    @app.errorhandler(CSRFError)
    def csrf_error(error):
        return error_page("Form refused", f"The form was sent without a valid security token ({error.description}). "
                                       "Reload the page and submit it again.", 400)

    @app.errorhandler(413)
    def too_large(error):
        limit = app.config["DIGITS_GAN_MAX_UPLOAD_MB"]
        return error_page("Upload refused", f"The upload is larger than the limit of {limit} MB; nothing was saved.", 413)

    @app.errorhandler(404)
    def not_found(error):
        return error_page("Not found", "No such page or job.", 404)

    @app.errorhandler(HTTPException)
    def http_error(error):  # 400 (a malformed form), 405 (a method a page does not take), ...
        if error.code is None or error.code < 400:
            return error
        response = error.get_response()
        answer, status = error_page(error.name, error.description, error.code)
        answer = app.make_response((answer, status))
        for header in ("Allow", "Retry-After"):
            if header in response.headers:
                answer.headers[header] = response.headers[header]
        return answer

    @app.errorhandler(DataError)
    def bad_input(error):
        return error_page("Cannot do that", str(error), 422)

    @app.errorhandler(OSError)
    def cannot_read_or_write(error):  # a full disk, a folder removed or made read-only meanwhile
        # a full disk: 507; a name too long for the file system came with the request: 400
        status = {errno.ENOSPC: 507, errno.EDQUOT: 507, errno.ENAMETOOLONG: 400}.get(error.errno, 500)
        return error_page("Cannot read or write a file", os_error_line(error), status)
