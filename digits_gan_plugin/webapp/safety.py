"""What the web UI refuses: requests for another host name (DNS rebinding) or from
another site, paths and files outside the allowed roots, oversized fields and images,
custom network code from anyone but the local user. Also where its secret key lives.

Every check runs before anything is written, so a refused request leaves no trace.
"""
import io
import ipaddress
import os
import secrets
import socket
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from ..errors import DataError, os_error_reason

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")
LOCAL_NAMES = ("127.0.0.1", "localhost", "::1")
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
# Sec-Fetch-Site values a browser sends for a request started by another site's page (a
# page on another port of this machine is "same-site"); "same-origin" and "none" (typed,
# bookmarked) are this server's own.
FOREIGN_FETCH_SITES = ("cross-site", "same-site")
MAX_PATH_BYTES = 4096  # PATH_MAX on Linux
MAX_NAME_BYTES = 255  # one path component (NAME_MAX)
MAX_UPLOAD_NAME_CHARS = 120
MAX_FIELD_CHARS = 64 * 1024  # any one form field (names, paths, z vectors: an animation holds several)
MAX_SOURCE_CHARS = 512 * 1024  # a pasted model file
SOURCE_FIELDS = ("custom_network",)


class HostGuard:
    """Accepts requests whose Host names this server, and state-changing requests whose
    Origin (or, without one, Referer) is this server too.

    A page on another site can resolve its own name to 127.0.0.1 (DNS rebinding) and
    then talk to the UI as same-origin: its requests still carry its own name in Host,
    which is refused here. `hosts`: the names (no port) the server answers to."""

    def __init__(self, hosts):
        self.hosts = {_bare_host(host) for host in hosts if host}

    def problem(self, method, host, origin=None, referer=None, fetch_site=None):
        """None when the request is acceptable, else why it is refused. fetch_site: the
        Sec-Fetch-Site header (browsers send it even where they leave Origin out)."""
        if _bare_host(host) not in self.hosts:
            return f"Host {host!r} is not an address this server answers to ({', '.join(sorted(self.hosts))})"
        if method not in STATE_CHANGING:
            return None
        if (fetch_site or "").strip().lower() in FOREIGN_FETCH_SITES:
            return f"a form sent from another site (Sec-Fetch-Site: {fetch_site}) is refused: only pages of this " \
                   f"server may change jobs"
        source = origin if origin not in (None, "") else referer
        if source in (None, ""):
            return None  # not a browser (browsers send Origin on every cross-site POST); the CSRF token decides
        parts = urlsplit(source)
        if source == "null" or parts.scheme not in ("http", "https") or _bare_host(parts.netloc) not in self.hosts \
                or (host and parts.netloc.lower() != host.lower()):
            return f"a form sent from {source!r} is refused: only pages of this server may change jobs"
        return None


def _bare_host(host):
    """'127.0.0.1:5000' -> '127.0.0.1', '[::1]:80' -> '::1', 'LocalHost' -> 'localhost'."""
    host = (host or "").strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def served_hosts(bind_host, extra=()):
    """The names a server bound to `bind_host` answers to: the address itself, the
    loopback names for a loopback address, also this machine's names for 0.0.0.0 / ::
    (every address), and `extra` (--allow-host)."""
    hosts = {bind_host, *extra}
    try:
        address = ipaddress.ip_address(bind_host)
    except ValueError:
        address = None
    if bind_host == "localhost" or (address is not None and (address.is_loopback or address.is_unspecified)):
        hosts.update(LOCAL_NAMES)
    if address is not None and address.is_unspecified:
        hosts.update({socket.gethostname(), socket.getfqdn()})
    return sorted(hosts)


def is_local_address(address):
    """Whether a request's remote address is this machine (loopback)."""
    try:
        return ipaddress.ip_address(address or "").is_loopback
    except ValueError:
        return False


def check_field_sizes(form):
    """DataError naming the first form field longer than its limit."""
    for name, value in form.items(multi=True):
        limit = MAX_SOURCE_CHARS if name in SOURCE_FIELDS else MAX_FIELD_CHARS
        if len(value) > limit:
            raise DataError(f"{name}: {len(value)} characters is more than the limit of {limit}; nothing was saved")


def check_request_text(path, *fields):
    """DataError when the URL path or any key or value of the MultiDicts `fields` (query,
    form) or an upload's file name holds a NUL character: no file name, job id or number
    has one, and the operating system refuses them half way (ValueError)."""
    if "\x00" in path:
        raise DataError("the address holds a NUL character (%00)")
    for field in fields:
        for name, value in field.items(multi=True):
            text = getattr(value, "filename", value)
            if "\x00" in name or (isinstance(text, str) and "\x00" in text):
                raise DataError(f"{name.replace(chr(0), '?')}: NUL characters are not allowed; nothing was saved")


def _resolved(path):
    """Path.resolve(), None when the name cannot be a file here: too long, a NUL
    character, a symlink loop (RuntimeError on Python < 3.13), unreadable."""
    try:
        raw = os.fsencode(path)
        if len(raw) > MAX_PATH_BYTES or any(len(part) > MAX_NAME_BYTES for part in raw.split(b"/")):
            return None
        return Path(path).resolve()
    except (OSError, ValueError, RuntimeError):
        return None


def file_inside(folder, name):
    """The real path of file `name` inside `folder` (symlinks resolved); None when it
    is missing, resolves outside `folder` or cannot be a file name."""
    root = _resolved(folder)
    target = _resolved(Path(folder) / name) if root is not None else None
    try:
        if target is None or root not in target.parents or not target.is_file():
            return None
    except (OSError, ValueError):
        return None
    return target


def config_dir():
    """The user's digits-gan config folder ($XDG_CONFIG_HOME/digits-gan, ~/.config/digits-gan)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "digits-gan"


def secret_key():
    """The web UI's key for sessions and form tokens, kept in the user's config folder
    (never in a jobs folder, which may be shared or published)."""
    path = config_dir() / "web-secret-key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another server wrote it meanwhile
            return path.read_text().strip()
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def check_writable_folder(folder, what="--jobs-dir"):
    """Create `folder` if needed and prove it writable; DataError in one line if not."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(prefix=".write-test-", dir=folder)
        os.close(handle)
        os.remove(probe)
    except OSError as error:
        raise DataError(f"{what} {folder}: cannot write there ({os_error_reason(error)})") from None
    return folder.resolve()


class PathGuard:
    """Accepts paths inside one of `roots` (symlinks resolved, no '..' components)."""

    def __init__(self, roots):
        self.roots = [Path(root).resolve() for root in roots]

    def check(self, value, field="path"):
        """The resolved Path of `value`; DataError naming `field` when it escapes the roots."""
        if "\x00" in str(value):
            raise DataError(f"{field}: NUL characters are not allowed in paths")
        path = Path(os.path.expanduser(str(value)))
        if ".." in path.parts:
            raise DataError(f"{field}: {_shortened(value)}: '..' is not allowed in paths")
        resolved = _resolved(path)
        if resolved is None:
            raise DataError(f"{field}: {_shortened(value)}: not a usable path (longer than {MAX_PATH_BYTES} bytes "
                            f"or a name longer than {MAX_NAME_BYTES}, or a symlink loop)")
        if not any(resolved == root or root in resolved.parents for root in self.roots):
            allowed = ", ".join(map(str, self.roots))
            raise DataError(f"{field}: {_shortened(value)} is outside the allowed folders ({allowed}); "
                            f"start the server with --allow-root DIR to allow another folder")
        return resolved


def _shortened(text, limit=200):
    text = str(text)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


def upload_name(filename):
    """A safe file name for an upload's `filename` as the browser sent it: its last
    component (either slash), control characters dropped, at most
    MAX_UPLOAD_NAME_CHARS characters (its suffix kept); '' when nothing is left."""
    name = str(filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip()
    if len(name) > MAX_UPLOAD_NAME_CHARS:
        stem, suffix = os.path.splitext(name)
        suffix = suffix if len(suffix) <= 10 else ""
        name = stem[:MAX_UPLOAD_NAME_CHARS - len(suffix)] + suffix
    return name


def check_image_upload(storage, max_pixels):
    """The bytes of an uploaded image (werkzeug FileStorage); DataError when it is not
    an image or has more than `max_pixels` pixels (read from the header, not decoded)."""
    from PIL import Image, UnidentifiedImageError

    name = upload_name(storage.filename)
    if not name.lower().endswith(IMAGE_SUFFIXES):
        raise DataError(f"upload {name or '(unnamed)'}: expected an image file ({', '.join(IMAGE_SUFFIXES)})")
    data = storage.read()
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise DataError(f"upload {name}: not a readable image") from None
    if width * height > max_pixels:
        raise DataError(f"upload {name}: {width} x {height} pixels is more than the limit of {max_pixels} pixels")
    return data
