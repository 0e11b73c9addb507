"""``digits-gan serve``: the local DIGITS-style web UI (Flask; no TensorFlow in the server)."""
import errno
import os

from ..errors import DataError, DigitsGanError, os_error_reason


def port_number(text):
    """--port: a TCP port 1-65535 (0 would let the system pick another one silently)."""
    try:
        port = int(text)
    except ValueError:
        raise DataError(f"--port {text}: expected a whole number from 1 to 65535") from None
    if not 1 <= port <= 65535:
        raise DataError(f"--port {port}: expected a port from 1 to 65535")
    return port


def register(subparsers):
    parser = subparsers.add_parser(
        "serve", help="run the local DIGITS-style web UI",
        description="Serve the web UI: build datasets with the data plugins, train model definitions, run "
                    "inference and view the results. Jobs run in the background and live in --jobs-dir; the "
                    "datasets and training jobs found under --jobs-dir and every --allow-root are listed too.")
    parser.add_argument("--jobs-dir", default="digits-gan-jobs", metavar="DIR",
                        help="where jobs are kept (default: ./digits-gan-jobs)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", default="5000", help="port, 1-65535 (default 5000)")
    parser.add_argument("--allow-root", action="append", default=[], metavar="DIR",
                        help="a folder whose files forms may name and whose datasets and jobs are listed "
                             "(repeatable; the jobs dir is always allowed)")
    parser.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                        help="another host name the UI answers to (repeatable; requests naming any other host "
                             "are refused, against DNS rebinding)")
    parser.add_argument("--max-upload-mb", type=int, default=16, help="largest request accepted (default 16 MB)")
    parser.set_defaults(func=run_serve)


def _check_can_listen(host, port):
    """DataError naming --host/--port when nothing can listen there (a port in use:
    Werkzeug would print its own two lines after ours and exit 1)."""
    import socket

    try:
        family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            probe.bind(address)
    except OSError as error:
        hint = "; another program uses that port: pick another with --port" if error.errno == errno.EADDRINUSE else ""
        raise DataError(f"--host {host} --port {port}: cannot listen there ({os_error_reason(error)}){hint}") from None


def run_serve(args):
    port = port_number(args.port)
    if args.max_upload_mb < 1:
        raise DataError(f"--max-upload-mb {args.max_upload_mb}: expected at least 1")
    try:
        from ..webapp.app import create_app
        from ..webapp.safety import served_hosts
    except ImportError as error:
        raise DigitsGanError(f"serve needs the web extra ({error.name} is missing): "
                             "pip install 'digits-gan[web]'") from None
    for root in args.allow_root:
        if not os.path.isdir(root):
            raise DataError(f"--allow-root {root}: no such folder")
    app = create_app(args.jobs_dir, allow_roots=args.allow_root, max_upload_mb=args.max_upload_mb,
                     hosts=served_hosts(args.host, args.allow_host))
    _check_can_listen(args.host, port)
    print(f"digits-gan web UI on http://{args.host}:{port}/ (jobs in {os.path.abspath(args.jobs_dir)})")
    try:
        app.run(host=args.host, port=port, threaded=True, use_reloader=False)
    except OSError as error:
        raise DataError(f"--host {args.host} --port {port}: cannot listen there ({os_error_reason(error)})") from None
    return 0
