"""``digits-gan serve``: the local DIGITS-style web UI (Flask; no TensorFlow in the server)."""
import os

from ..errors import DigitsGanError


def register(subparsers):
    parser = subparsers.add_parser(
        "serve", help="run the local DIGITS-style web UI",
        description="Serve the web UI: build datasets with the data plugins, train model definitions, run "
                    "inference and view the results. Jobs run in the background and live in --jobs-dir.")
    parser.add_argument("--jobs-dir", default="digits-gan-jobs", metavar="DIR",
                        help="where jobs are kept (default: ./digits-gan-jobs)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="port (default 5000)")
    parser.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                        help="a folder whose files forms may name (repeatable; the jobs dir is always allowed)")
    parser.add_argument("--max-upload-mb", type=int, default=16, help="largest request accepted (default 16 MB)")
    parser.set_defaults(func=run_serve)


def run_serve(args):
    try:
        from ..webapp import create_app
    except ImportError as error:
        raise DigitsGanError(f"serve needs the web extra ({error.name} is missing): pip install 'digits-gan[web]'") from None
    for root in args.allow_root:
        if not os.path.isdir(root):
            raise DigitsGanError(f"--allow-root {root}: no such folder")
    app = create_app(args.jobs_dir, allow_roots=args.allow_root, max_upload_mb=args.max_upload_mb)
    print(f"digits-gan web UI on http://{args.host}:{args.port}/ (jobs in {os.path.abspath(args.jobs_dir)})")
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)
    return 0
