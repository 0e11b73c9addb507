"""Write and read datasets in the DIGITS layout (see ../shared/DIGITS_CONTRACT.md).

On disk::

    <dir>/dataset.json                  what is inside (see write_dataset)
    <dir>/<stage>/features              LMDB: 9-digit key -> serialized Datum
    <dir>/<stage>/labels                LMDB, only when labels are 3-D arrays (float Datum)
    <dir>/<stage>/mean.binaryproto      mean feature, BlobProto C,H,W (BGR for 3 channels)
    <dir>/skipped.txt                   entries the plugin could not encode (if any)

Unencoded uint8 features are stored C,H,W with 3-channel data in BGR order (Caffe's
convention); PNG-encoded features hold the PNG file (H,W,C, RGB) with `encoded` set;
float features go to `float_data` in C,H,W order with no channel reordering.

Datasets DIGITS wrote have no dataset.json: the reader derives it from the LMDBs
(`derive_meta`), for generic datasets (`<stage>/features`, `<stage>/labels`) and for
classification datasets (`<stage>/` is the LMDB, labels.txt names the classes).

No TensorFlow at module level: only `DatasetReader.tf_dataset` imports it.
"""
import collections
import ctypes
import errno
import io
import json
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import traceback

import lmdb
import numpy as np

from .digits_api import STAGES
from .errors import DataError, os_error_reason
from .files import check_out_folder, make_parent_dirs, move_into_place, recover_staged, staging_dir, usable_cores
from .proto import BlobProto, Datum

META_FILE = "dataset.json"
MEAN_FILE = "mean.binaryproto"
SKIPPED_FILE = "skipped.txt"
FEATURES_DB = "features"
LABELS_DB = "labels"
ENCODINGS = (None, "none", "png")
DEFAULT_MEMORY_BUDGET = 2 << 30  # bytes of decoded arrays `batches` may keep in memory
MAX_CHUNK = 64  # entries per worker task and LMDB transaction
PREFETCH_BATCHES = 2  # batches tf_dataset reads ahead


def make_key(index):
    """LMDB key of the index-th entry of a stage: 9-digit zero-padded ASCII bytes."""
    return b"%09d" % index


# ---------------------------------------------------------------- Datum conversion


def stored_chw(feature):
    """Contiguous C,H,W copy of a feature in the channel order DIGITS stores (data and
    mean): BGR for 3-channel uint8, unchanged otherwise."""
    if feature.dtype == np.uint8 and feature.shape[0] == 3:
        return np.ascontiguousarray(feature[::-1])
    return np.ascontiguousarray(feature)


def feature_to_datum(feature, encoding=None, stored=None):
    """Build the Datum of one feature.

    feature: C,H,W numpy array; uint8 (RGB when C == 3) goes to `data` (BGR when C == 3,
    or a PNG file with encoding='png'); any other dtype goes to `float_data` as float32.
    stored: stored_chw(feature), when the caller already has it.
    """
    channels, height, width = feature.shape
    datum = Datum(channels=channels, height=height, width=width)
    if feature.dtype != np.uint8:
        datum.float_data.extend(feature.astype(np.float32, copy=False).ravel().tolist())
    elif encoding == "png":
        from PIL import Image

        pixels = feature[0] if channels == 1 else feature.transpose(1, 2, 0)
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(pixels)).save(buffer, format="PNG", compress_level=1)
        datum.data = buffer.getvalue()
        datum.encoded = True
    else:
        datum.data = (stored_chw(feature) if stored is None else stored).tobytes()
    return datum


def datum_to_feature(datum):
    """Decode a feature Datum to H,W,C: uint8 RGB for image data, float32 for float_data."""
    shape = (datum.channels, datum.height, datum.width)
    if datum.encoded:
        from PIL import Image

        pixels = np.asarray(Image.open(io.BytesIO(datum.data)))
        return pixels[..., None] if pixels.ndim == 2 else pixels
    if datum.data:
        chw = np.frombuffer(datum.data, dtype=np.uint8).reshape(shape)
        hwc = chw.transpose(1, 2, 0)
        return hwc[..., ::-1] if shape[0] == 3 else hwc
    return np.asarray(datum.float_data, dtype=np.float32).reshape(shape).transpose(1, 2, 0)


def label_to_datum(label):
    """Float Datum of a 3-D array label (e.g. 1,1,40 attributes) for the labels LMDB."""
    channels, height, width = label.shape
    datum = Datum(channels=channels, height=height, width=width)
    datum.float_data.extend(np.asarray(label, dtype=np.float32).ravel().tolist())
    return datum


def _label_kind(label):
    """'none', 'scalar' or 'array' (3-D), per the DIGITS contract: DIGITS' writer takes
    a size-1 1-D array or a 3-D array. This writer also takes None and 0-d scalars,
    which DIGITS' rejects (tests/digits_host/writer.py holds plugins to DIGITS' rules)."""
    if label is None:
        return "none"
    label = np.asarray(label)
    if label.ndim == 3:
        return "array"
    if label.size == 1 and label.ndim <= 1:
        return "scalar"
    return "invalid"


# ---------------------------------------------------------------- parallel encoding


class _ChunkResult:
    """What one worker task hands back: serialized values plus what the mean needs."""

    __slots__ = ("features", "labels", "feature_sum", "feature_shape", "feature_dtype",
                 "label_kind", "label_shape", "skipped", "entry_count")

    def __init__(self, entry_count):
        self.features = []  # serialized feature Datums, in entry order
        self.labels = []  # serialized label Datums (array labels only)
        self.feature_sum = None  # C,H,W in stored channel order; uint64 for uint8 features
        self.feature_shape = None
        self.feature_dtype = None
        self.label_kind = None
        self.label_shape = None
        self.skipped = []  # str(entry) of entries that produced no pair
        self.entry_count = entry_count


def _as_pairs(encoded, entry):
    if isinstance(encoded, tuple) and len(encoded) == 2:
        return [encoded]
    if isinstance(encoded, list):
        return encoded
    raise DataError(f"entry {entry!r}: encode_entry must return a (feature, label) pair or a list of pairs")


def _encode_chunk(plugin, encoding, chunk):
    """Encode entries with `plugin.encode_entry`; returns a _ChunkResult."""
    result = _ChunkResult(len(chunk))
    stored_features = []  # summed once at the end: one pass instead of one per entry
    for entry in chunk:
        pairs = _as_pairs(plugin.encode_entry(entry), entry)
        if not pairs:
            result.skipped.append(str(entry))
        for feature, label in pairs:
            feature = np.asarray(feature)
            if feature.ndim != 3:
                raise DataError(f"entry {entry!r}: feature must be a 3-D C,H,W array, got shape {feature.shape}")
            kind = _label_kind(label)
            if kind == "invalid":
                raise DataError(f"entry {entry!r}: label must be a size-1 1-D array or a 3-D array, "
                                f"got shape {np.shape(label)}")
            label_shape = None if kind == "none" else list(np.shape(label)) if kind == "array" else []
            if result.feature_shape is None:
                result.feature_shape, result.feature_dtype = feature.shape, feature.dtype.str
                result.label_kind, result.label_shape = kind, label_shape
            elif (feature.shape, feature.dtype.str, kind, label_shape) != (
                result.feature_shape, result.feature_dtype, result.label_kind, result.label_shape
            ):
                raise DataError(
                    f"entry {entry!r}: feature {feature.shape} {feature.dtype} with {kind} label {label_shape} "
                    f"differs from earlier entries ({result.feature_shape} {result.feature_dtype}, "
                    f"{result.label_kind} label {result.label_shape})"
                )
            stored = stored_chw(feature)
            stored_features.append(stored)
            datum = feature_to_datum(feature, encoding, stored)
            if kind == "scalar":
                value = np.asarray(label).item()
                if value != int(value):
                    raise DataError(f"entry {entry!r}: scalar label {value} is not an integer")
                datum.label = int(value)
            elif kind == "array":
                result.labels.append(label_to_datum(np.asarray(label)).SerializeToString())
            result.features.append(datum.SerializeToString())
    if stored_features:
        result.feature_sum = _feature_sum(stored_features)
    return result


def _feature_sum(stored_features):
    """Sum of same-shape C,H,W features: uint64 for uint8 (accumulated in uint16 while
    that cannot overflow, which is cheaper), float64 otherwise."""
    stack = np.stack(stored_features)
    if stack.dtype != np.uint8:
        return stack.sum(axis=0, dtype=np.float64)
    accumulator = np.uint16 if len(stack) <= np.iinfo(np.uint16).max // 255 else np.uint64
    return stack.sum(axis=0, dtype=accumulator).astype(np.uint64)


class _RemoteTraceback(Exception):
    """Where a worker's exception was raised (its formatted traceback), as the __cause__
    of that exception re-raised in the main process (shown with --debug)."""


def _init_worker(parent_pid):
    # Ctrl-C is handled by the main process, which kills the workers (a SIGTERM handler
    # inherited through fork, the command line's, would turn SIGTERM into Ctrl-C).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent_pid)
    _single_threaded_blas()


PR_SET_PDEATHSIG = 1  # Linux prctl option: a signal for this process when its parent dies


def _die_with_parent(parent_pid):
    """A worker whose build process is killed outright (kill -9, the OOM killer) dies with
    it instead of finishing its chunk. Linux only; elsewhere the workers end at their
    next read of the pipe, which then has no writer."""
    try:
        prctl = ctypes.CDLL(None).prctl
    except (OSError, AttributeError):
        return
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _single_threaded_blas():
    """The workers are the parallelism: BLAS threads inside them (numpy matrix products,
    e.g. in image resizing) would only fight each other for the same cores."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(1)


def _worker(connection, plugin, encoding, entries, parent_pid, inherited):
    """A worker process: reads (stage, start, stop) chunks from its pipe until None (or
    the pipe's end) and answers each with ('ok', _ChunkResult), ('error', exception,
    traceback text) or ('interrupted',)."""
    for other in inherited:  # the main process's ends of the earlier workers' pipes
        other.close()
    _init_worker(parent_pid)
    while True:
        try:
            task = connection.recv()
        except EOFError:
            return
        if task is None:
            return
        stage, start, stop = task
        try:
            answer = ("ok", _encode_chunk(plugin, encoding, entries[stage][start:stop]))
        except KeyboardInterrupt:  # raised by the plugin itself (workers ignore SIGINT): Ctrl-C in the main process
            answer = ("interrupted",)
        except Exception as error:
            answer = ("error", error, traceback.format_exc())
        try:
            connection.send(answer)
        except (TypeError, AttributeError, pickle.PicklingError):  # an exception that does not pickle
            connection.send(("error", RuntimeError(f"{type(answer[1]).__name__}: {answer[1]}"), answer[2]))


class _Encoder:
    """Maps the chunks of a stage's entries to _ChunkResults, in order, in `workers`
    forked processes (they share the plugin's loaded state and the entries; a chunk is
    sent as its stage and bounds) or in-process when workers <= 1.

    Each worker has a pipe of its own: chunk k goes to worker k % workers, at most
    LOOKAHEAD chunks per worker ahead of the result being read. No lock is shared
    between processes, so stopping at any moment (a full disk, Ctrl-C) is killing the
    workers; multiprocessing.Pool's terminate() hung for good when one of its workers
    was stopped while holding the lock of the results queue. A worker that dies is an
    error naming how, not a chunk waited for forever."""

    LOOKAHEAD = 2

    def __init__(self, plugin, encoding, workers, entries):
        self.plugin, self.encoding, self.workers, self.entries = plugin, encoding, workers, entries
        self.processes = []  # (Process, the main process's end of its pipe)

    def __enter__(self):
        if self.workers > 1:
            context = multiprocessing.get_context("fork")
            try:
                for _ in range(self.workers):
                    ours, theirs = context.Pipe()
                    process = context.Process(target=_worker, daemon=True, args=(
                        theirs, self.plugin, self.encoding, self.entries, os.getpid(),
                        [connection for _, connection in self.processes] + [ours]))
                    process.start()
                    theirs.close()
                    self.processes.append((process, ours))
            except BaseException:
                self.__exit__(*sys.exc_info())
                raise
        return self

    def __exit__(self, *exc_info):
        for process, connection in self.processes:
            if exc_info[0] is None:
                connection.send(None)
            else:
                process.kill()
        for process, connection in self.processes:
            process.join()
            connection.close()
        self.processes = []

    def map(self, stage):
        entries = self.entries[stage]
        chunks = iter(_chunk_bounds(len(entries), self.workers))
        if not self.processes:
            for start, stop in chunks:
                yield _encode_chunk(self.plugin, self.encoding, entries[start:stop])
            return
        in_flight = collections.deque()  # the worker of each chunk sent, in chunk order
        sent = 0

        def send_next():
            nonlocal sent
            bounds = next(chunks, None)
            if bounds is not None:
                worker = self.processes[sent % len(self.processes)]
                try:
                    worker[1].send((stage, *bounds))
                except (BrokenPipeError, ConnectionResetError):  # it died since its last answer
                    raise _dead_worker(worker[0], stage) from None
                in_flight.append(worker)
                sent += 1

        for _ in range(self.LOOKAHEAD * len(self.processes)):
            send_next()
        while in_flight:
            process, connection = in_flight.popleft()
            try:
                answer = connection.recv()
            except (EOFError, ConnectionResetError):
                raise _dead_worker(process, stage) from None
            if answer[0] == "interrupted":
                raise KeyboardInterrupt()
            if answer[0] == "error":
                raise answer[1] from _RemoteTraceback(answer[2])
            send_next()
            yield answer[1]


def _dead_worker(process, stage):
    """The DataError of a build worker that ended without answering (the OOM killer...)."""
    process.join(1)
    how = (f"killed by signal {-process.exitcode}" if process.exitcode and process.exitcode < 0
           else f"exit status {process.exitcode}")
    return DataError(f"stage {stage}: a dataset build worker ended unexpectedly ({how}; out of memory?)")


def _chunk_bounds(count, workers):
    """(start, stop) of each chunk of `count` entries: enough chunks to keep every worker
    busy to the end and the progress bar moving; one chunk is one LMDB transaction
    (putmulti: ~10 us/entry at 64..512 entries)."""
    size = max(8, min(MAX_CHUNK, count // (max(workers, 1) * 16)))
    return [(start, min(start + size, count)) for start in range(0, count, size)]


# ---------------------------------------------------------------- writing


FULL_DISK_MARGIN = 1 << 20  # bytes: less free space than this after a failed write means a full disk


def _is_disk_full(error, path):
    """Whether an LMDB write failed for want of space. LMDB reports a short write on a
    full disk as EIO, so the free space of the device decides as well."""
    if "No space left" in str(error):
        return True
    try:
        stats = os.statvfs(path)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < FULL_DISK_MARGIN


class _LmdbWriter:
    """One LMDB written with sequential keys; the map grows as needed.

    writemap=False: pages reach the file by write(), so a full disk is an error (ENOSPC)
    rather than a SIGBUS on a page of the memory map. lock=False for the same reason: the
    reader table (lock.mdb) is a memory-mapped file too, and a staging database has no
    other reader or writer to coordinate with."""

    def __init__(self, path, map_size=64 << 20):
        try:
            self.env = lmdb.open(path, map_size=map_size, subdir=True, sync=False, metasync=False, meminit=False,
                                 writemap=False, lock=False)
        except lmdb.Error as error:
            raise self._failure(error, path) from None

    def put_many(self, items):
        while True:
            try:
                with self.env.begin(write=True) as txn:
                    txn.cursor().putmulti(items, append=True)
                return
            except lmdb.MapFullError:
                self.env.set_mapsize(self.env.info()["map_size"] * 2)
            except lmdb.Error as error:
                raise self._failure(error, self.env.path()) from None

    @staticmethod
    def _failure(error, path):
        """The exception to raise for LMDB's `error` on the database at `path`."""
        if _is_disk_full(error, path):
            return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return DataError(f"{path}: LMDB write failed ({error})")

    def close(self):
        # No fsync: a crash before the rename leaves only the temporary directory, and a
        # dataset is rebuildable, so power-loss durability is not worth a full-disk flush.
        self.env.close()


def _mean_blob(mean_chw):
    """BlobProto of a C,H,W mean, already in stored channel order."""
    channels, height, width = mean_chw.shape
    blob = BlobProto(num=1, channels=channels, height=height, width=width)
    blob.data.extend(mean_chw.astype(np.float32).ravel().tolist())
    blob.shape.dim.extend([1, channels, height, width])
    return blob


class _NoProgressBar:
    def update(self, count):
        pass

    def close(self):
        pass


def _progress_bar(total, stage, progress):
    """A tqdm bar on a terminal; otherwise a no-op one, without importing tqdm (~0.2 s)."""
    if not progress or not sys.stderr.isatty():
        return _NoProgressBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=stage, unit="img")


def _why_skipped(plugin, entries):
    """' (the first: <its error>)' when a plugin that skips unreadable entries unless
    `strict` (CelebA) fails on the first one again with `strict` on, else ''."""
    if not entries or not isinstance(getattr(plugin, "strict", None), bool):
        return ""
    lenient = plugin.strict
    plugin.strict = True
    try:
        plugin.encode_entry(entries[0])
    except DataError as error:
        return f" (the first: {error})"
    finally:
        plugin.strict = lenient
    return ""


def _write_stage(encoder, entries, stage, stage_dir, progress):
    """Encode and write one stage; returns (stage meta dict, skipped entry strings)."""
    os.makedirs(stage_dir)
    features_db = _LmdbWriter(os.path.join(stage_dir, FEATURES_DB))
    labels_db = None
    first, total, count, skipped = None, None, 0, []
    bar = _progress_bar(len(entries), stage, progress)
    try:
        for result in encoder.map(stage):
            bar.update(result.entry_count)
            skipped.extend(result.skipped)
            if not result.features:
                continue
            signature = (result.feature_shape, result.feature_dtype, result.label_kind, result.label_shape)
            if first is None:
                first, total = signature, result.feature_sum
                if result.label_kind == "array":
                    labels_db = _LmdbWriter(os.path.join(stage_dir, LABELS_DB))
            elif signature != first:
                raise DataError(f"{stage}: entries differ in feature shape/dtype or label kind: {first} vs {signature}")
            else:
                total += result.feature_sum
            keys = [make_key(index) for index in range(count, count + len(result.features))]
            features_db.put_many(list(zip(keys, result.features)))
            if labels_db is not None:
                labels_db.put_many(list(zip(keys, result.labels)))
            count += len(result.features)
    finally:
        bar.close()
        features_db.close()
        if labels_db is not None:
            labels_db.close()
    if count == 0:
        raise DataError(f"{stage}: none of its {len(entries)} entries could be encoded"
                        f"{_why_skipped(encoder.plugin, entries)}")
    shape, dtype, label_kind, label_shape = first
    is_image = np.dtype(dtype) == np.uint8
    with open(os.path.join(stage_dir, MEAN_FILE), "wb") as handle:
        handle.write(_mean_blob(total / count).SerializeToString())
    meta = {
        "count": count,
        "feature_shape": list(shape),
        "feature_dtype": "uint8" if is_image else "float32",
        "label_shape": label_shape,
    }
    return meta, skipped


def _check_out_dir(out_dir, overwrite):
    check_out_folder(out_dir, overwrite, (META_FILE,) + tuple(STAGES), "dataset", empty_ok=True)


def write_dataset(plugin, out_dir, stages=None, encoding=None, workers=None, extra_meta=None,
                  progress=True, overwrite=False, notify=None):
    """Build a DIGITS-layout dataset from a data plugin; returns the dataset.json dict.

    plugin: a DataIngestionInterface instance. `itemize_entries(stage)` is called once per
    stage in this process; `encode_entry(entry)` runs in `workers` forked processes
    (default: all cores; <= 1, or TensorFlow already imported: in-process) and returns a (feature, label) pair, a
    list of pairs, or an empty list for an entry it skips (listed in skipped.txt).
    stages: default every stage of STAGES with entries. encoding: None or 'png'.
    The plugin may expose `label_names` (list of str), `num_classes` (int) and
    `has_labels` (False: its size-1 labels are DIGITS' np.array([0]) "no label")
    attributes after itemize_entries; they go into dataset.json.

    dataset.json holds plugin_id, userdata, stages {stage: {count, feature_shape [C,H,W],
    feature_dtype, label_shape ([] scalar, null none, else [a,b,c]), skipped}},
    label_names, num_classes, encoding, and `extra_meta`.
    The dataset is built in `.<name>.tmp-<pid>` next to out_dir and renamed into place
    only when complete; it is removed on any error or interrupt, and a full disk is a
    DataError. Leftovers of an interrupted earlier build are recovered first
    (files.recover_staged), each action passed to `notify` (default: printed to
    stderr). An existing non-empty out_dir is an error unless overwrite=True.
    """
    if encoding not in ENCODINGS:
        raise DataError(f"encoding {encoding!r}: expected one of none, png")
    encoding = None if encoding == "none" else encoding
    out_dir = os.path.abspath(os.fspath(out_dir))
    for line in recover_staged(out_dir):
        (notify or _notify)(line)
    _check_out_dir(out_dir, overwrite)
    workers = usable_cores() if workers is None else int(workers)
    if "tensorflow" in sys.modules:
        workers = 1  # forking a process whose TensorFlow runtime has started threads can deadlock
    entries = _itemize(plugin, stages)
    # no more processes than chunks of at least 8 entries (--workers 100000 forked them all)
    workers = max(1, min(workers, -(-max(map(len, entries.values()), default=0) // 8), 8 * usable_cores()))
    make_parent_dirs(os.path.dirname(out_dir))
    tmp_dir = staging_dir(out_dir, "tmp")
    shutil.rmtree(tmp_dir, ignore_errors=True)
    try:
        os.makedirs(tmp_dir)
        meta = _write_stages(plugin, entries, tmp_dir, encoding, workers, progress)
        meta.update(extra_meta or {})
        with open(os.path.join(tmp_dir, META_FILE), "w", encoding="utf-8") as handle:
            json.dump(meta, handle, indent=2, default=str)
        move_into_place(tmp_dir, out_dir)
    except OSError as error:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        if error.errno in (errno.ENOSPC, errno.EDQUOT):
            raise DataError(f"{out_dir}: no space left on the device while writing the dataset "
                            f"(nothing was written; free some space and run again)") from None
        raise DataError(f"{out_dir}: cannot write the dataset ({os_error_reason(error)})") from None
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    return json.loads(json.dumps(meta, default=str))


def _notify(line):
    print(f"digits-gan: {line}", file=sys.stderr)


def _itemize(plugin, stages):
    """{stage: entries} of the requested stages that have entries (main thread)."""
    requested = list(stages) if stages is not None else list(STAGES)
    for stage in requested:
        if stage not in STAGES:
            raise DataError(f"stage {stage!r}: expected one of {', '.join(STAGES)}")
    entries = {stage: list(plugin.itemize_entries(stage)) for stage in requested}
    entries = {stage: items for stage, items in entries.items() if items}
    if not entries:
        raise DataError(f"plugin {plugin.get_id()!r} found no entries for {', '.join(requested)}")
    return entries


def _write_stages(plugin, entries, tmp_dir, encoding, workers, progress):
    """Write every stage into tmp_dir; returns the dataset.json dict (without extra_meta)."""
    stage_meta, skipped = {}, []
    with _Encoder(plugin, encoding, workers, entries) as encoder:
        for stage, items in entries.items():
            stage_meta[stage], stage_skipped = _write_stage(
                encoder, items, stage, os.path.join(tmp_dir, stage), progress
            )
            stage_meta[stage]["skipped"] = len(stage_skipped)
            skipped.extend(stage_skipped)
    if skipped:
        with open(os.path.join(tmp_dir, SKIPPED_FILE), "w", encoding="utf-8") as handle:
            handle.writelines(line + "\n" for line in skipped)
    if not getattr(plugin, "has_labels", True):
        for meta in stage_meta.values():
            if meta["label_shape"] == []:
                meta["label_shape"] = None  # DIGITS' np.array([0]): no label
    label_names = getattr(plugin, "label_names", None)
    num_classes = getattr(plugin, "num_classes", None)
    scalar_labels = any(meta["label_shape"] == [] for meta in stage_meta.values())
    if num_classes is None and scalar_labels and label_names:
        num_classes = len(label_names)
    return {
        "plugin_id": plugin.get_id(),
        "userdata": plugin.get_user_data(),
        "stages": stage_meta,
        "label_names": list(label_names) if label_names is not None else None,
        "num_classes": num_classes,
        "encoding": encoding or "none",
    }


# ---------------------------------------------------------------- reading


def _parse_datum(value, where):
    if value is None:
        raise DataError(f"{where}: an LMDB has fewer entries than its dataset says")
    try:
        return Datum.FromString(bytes(value))
    except Exception as error:  # protobuf's DecodeError has no stable import path
        raise DataError(f"{where}: an LMDB entry is not a Caffe Datum ({error})") from None


def _read_meta(meta_path):
    """dataset.json, checked: DataError naming the file and the first missing or wrong field."""
    try:
        with open(meta_path, encoding="utf-8") as handle:
            meta = json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise DataError(f"{meta_path}: not valid JSON ({error})") from None
    except OSError as error:
        raise DataError(f"{meta_path}: cannot read ({error.strerror})") from None
    stages = meta.get("stages") if isinstance(meta, dict) else None
    if not isinstance(stages, dict) or not any(stage in stages for stage in STAGES):
        raise DataError(f"{meta_path}: expected a 'stages' object with at least one of {', '.join(STAGES)}")
    for stage in (stage for stage in STAGES if stage in stages):
        _check_stage_meta(meta_path, stage, stages[stage])
    names, classes = meta.get("label_names"), meta.get("num_classes")
    if not (names is None or (isinstance(names, list) and all(isinstance(name, str) for name in names))):
        raise DataError(f"{meta_path}: label_names: expected a list of strings, got {names!r}")
    if not (classes is None or (isinstance(classes, int) and not isinstance(classes, bool) and classes > 0)):
        raise DataError(f"{meta_path}: num_classes: expected a positive integer, got {classes!r}")
    return meta


def _check_stage_meta(meta_path, stage, stage_meta):
    where = f"{meta_path}: stages.{stage}"
    if not isinstance(stage_meta, dict):
        raise DataError(f"{where}: expected an object with count, feature_shape, feature_dtype, label_shape")
    count, shape = stage_meta.get("count"), stage_meta.get("feature_shape")
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise DataError(f"{where}.count: expected a non-negative integer, got {count!r}")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)):
        raise DataError(f"{where}.feature_shape: expected [C, H, W] of positive integers, got {shape!r}")
    if stage_meta.get("feature_dtype") not in ("uint8", "float32"):
        raise DataError(f"{where}.feature_dtype: expected 'uint8' or 'float32', got {stage_meta.get('feature_dtype')!r}")
    label_shape = stage_meta.get("label_shape", "missing")
    if not (label_shape is None or label_shape == [] or (
            isinstance(label_shape, list) and len(label_shape) == 3 and all(isinstance(n, int) for n in label_shape))):
        raise DataError(f"{where}.label_shape: expected null, [] or [a, b, c], got {label_shape!r}")


def _open_lmdb(path):
    """A read-only LMDB environment; DataError when `path` is missing or not an LMDB."""
    if not os.path.isdir(path):
        raise DataError(f"{path}: missing LMDB")
    try:
        env = lmdb.open(path, readonly=True, lock=False, subdir=True)
    except lmdb.Error as error:
        raise DataError(f"{path}: not a readable LMDB ({error})") from None
    # A truncated data.mdb opens fine (LMDB reads only its header) but reading a page past
    # the end of the file kills the process with SIGBUS: compare the size its header
    # promises with the file's.
    needed = (env.info()["last_pgno"] + 1) * env.stat()["psize"]
    data_file = os.path.join(path, "data.mdb")
    size = os.path.getsize(data_file)
    if size < needed:
        env.close()
        raise DataError(f"{data_file}: truncated LMDB ({size} bytes, its header says {needed}); "
                        f"copy or rebuild the dataset")
    return env


def _first_datum(env, path):
    with env.begin() as txn:
        value = next(txn.cursor().iternext(keys=False), None)
    if value is None:
        return None
    try:
        return Datum.FromString(value)
    except Exception as error:  # protobuf's DecodeError has no stable import path
        raise DataError(f"{path}: first entry is not a Caffe Datum ({error})") from None


def _labels_file(dataset_dir):
    """Class names of a DIGITS labels.txt beside the stages (one per line), or None."""
    path = os.path.join(dataset_dir, "labels.txt")
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as handle:
        return [line.strip() for line in handle if line.strip()]


def derive_meta(dataset_dir):
    """What dataset.json would say of a dataset DIGITS wrote (it writes none): every
    stage folder holding a `features` LMDB; count = LMDB entries; shape, dtype and
    encoding from the first Datum; labels from the `labels` LMDB (array labels), else
    each Datum's label: class ids, or none when every label is 0 (DIGITS' np.array([0]))
    and no labels.txt names classes. 3-channel float features and labels are BGR, as
    DIGITS' writer swaps them (channel_swap_float)."""
    stage_meta, encodings, class_ids = {}, set(), []
    for stage in STAGES:
        stage_dir = os.path.join(dataset_dir, stage)
        features = _features_lmdb(stage_dir)
        if features is None:
            continue
        stage_meta[stage], stage_ids, encoding = _derive_stage(stage_dir, features)
        if features == stage_dir:
            stage_meta[stage]["features_db"] = stage  # the stage folder is the LMDB
        encodings.add(encoding)
        class_ids += stage_ids
    if not stage_meta:
        raise DataError(f"{dataset_dir}: not a dataset (no {META_FILE}, and no "
                        f"{'/, '.join(STAGES)}/ folder holding a '{FEATURES_DB}' LMDB or being one)")
    names = _labels_file(dataset_dir)
    scalar = [meta for meta in stage_meta.values() if meta["label_shape"] == []]
    if scalar and names is None and not any(class_ids):
        for meta in scalar:
            meta["label_shape"] = None
    num_classes = len(names) if names else (max(class_ids) + 1 if scalar and any(class_ids) else None)
    return {"plugin_id": None, "userdata": {}, "stages": stage_meta, "label_names": names,
            "num_classes": num_classes, "encoding": "png" if "png" in encodings else "none",
            "written_by": "DIGITS (no dataset.json: derived from the LMDBs)", "channel_swap_float": True}


def _features_lmdb(stage_dir):
    """The features LMDB of a DIGITS stage folder: `<stage>/features` (generic
    datasets) or the folder itself (classification datasets: `<stage>/data.mdb`, the
    class in each Datum, names in labels.txt); None when it holds neither."""
    if os.path.isdir(os.path.join(stage_dir, FEATURES_DB)):
        return os.path.join(stage_dir, FEATURES_DB)
    return stage_dir if os.path.isfile(os.path.join(stage_dir, "data.mdb")) else None


def _derive_stage(stage_dir, features_path):
    """(stage meta, scalar class ids, encoding) of one DIGITS-written stage folder."""
    env = _open_lmdb(features_path)
    try:
        count = env.stat()["entries"]
        first = _first_datum(env, features_path)
        if first is None:
            raise DataError(f"{features_path}: the LMDB holds no entries")
        labels_path = os.path.join(stage_dir, LABELS_DB)
        class_ids = []
        if os.path.isdir(labels_path):
            labels_env = _open_lmdb(labels_path)
            try:
                label = _first_datum(labels_env, labels_path)
            finally:
                labels_env.close()
            label_shape = [label.channels, label.height, label.width]
        else:
            label_shape = []
            with env.begin(buffers=True) as txn:
                class_ids = [Datum.FromString(bytes(value)).label for value in txn.cursor().iternext(keys=False)]
    finally:
        env.close()
    if first.encoded:
        dtype, encoding = "uint8", "png"
    else:
        dtype, encoding = ("uint8" if first.data else "float32"), "none"
    meta = {"count": count, "feature_shape": [first.channels, first.height, first.width],
            "feature_dtype": dtype, "label_shape": label_shape, "skipped": 0}
    return meta, class_ids, encoding


def _index_batches(count, batch_size, shuffle, repeat, rng, drop_remainder):
    """Yield int64 index arrays of batch_size; epochs are concatenated when repeating,
    so a dataset smaller than a batch still gives full batches."""
    pending = np.empty(0, dtype=np.int64)
    while True:
        epoch = rng.permutation(count) if shuffle else np.arange(count)
        pending = np.concatenate([pending, epoch])
        while len(pending) >= batch_size:
            yield pending[:batch_size]
            pending = pending[batch_size:]
        if not repeat:
            if len(pending) and not drop_remainder:
                yield pending
            return


class DatasetReader:
    """Read a dataset written by write_dataset, or by DIGITS' generic-dataset writer
    (no dataset.json: what it would say is derived from the LMDBs, see derive_meta).

    Features come back N,H,W,C: uint8 RGB for image data, float32 for float data.
    Labels: int64 (N,) for scalar labels, float32 (N,)+label_shape for array labels
    (e.g. N,1,1,40), or None.
    """

    def __init__(self, dataset_dir, memory_budget=DEFAULT_MEMORY_BUDGET):
        self.dataset_dir = os.fspath(dataset_dir)
        if not os.path.exists(self.dataset_dir):
            for line in recover_staged(self.dataset_dir):
                _notify(line)
        if not os.path.isdir(self.dataset_dir):
            raise DataError(f"{self.dataset_dir}: not a dataset (no such folder)")
        meta_path = os.path.join(self.dataset_dir, META_FILE)
        self.meta = _read_meta(meta_path) if os.path.isfile(meta_path) else derive_meta(self.dataset_dir)
        self.memory_budget = memory_budget
        self._arrays = {}
        self._keys = {}

    @property
    def stages(self):
        return [stage for stage in STAGES if stage in self.meta["stages"]]

    def _stage(self, stage):
        if stage not in self.meta["stages"]:
            raise DataError(f"{self.dataset_dir}: has no stage {stage!r} (it has {', '.join(self.stages)})")
        return self.meta["stages"][stage]

    def count(self, stage):
        return self._stage(stage)["count"]

    @property
    def feature_shape(self):
        """C,H,W as stored (of the first stage)."""
        return tuple(self._stage(self.stages[0])["feature_shape"])

    def label_shape(self, stage):
        """[] for scalar labels, None for no labels, else the 3-D label shape."""
        return self._stage(stage)["label_shape"]

    @property
    def num_classes(self):
        return self.meta.get("num_classes")

    @property
    def label_names(self):
        return self.meta.get("label_names")

    def _open(self, stage, name):
        if name == FEATURES_DB and "features_db" in self._stage(stage):
            return _open_lmdb(os.path.join(self.dataset_dir, self._stage(stage)["features_db"]))
        return _open_lmdb(os.path.join(self.dataset_dir, stage, name))

    def _empty_arrays(self, stage, count):
        channels, height, width = self._stage(stage)["feature_shape"]
        dtype = np.uint8 if self._stage(stage)["feature_dtype"] == "uint8" else np.float32
        x = np.empty((count, height, width, channels), dtype=dtype)
        label_shape = self.label_shape(stage)
        if label_shape is None:
            return x, None
        y = np.empty(count, np.int64) if label_shape == [] else np.empty([count] + label_shape, np.float32)
        return x, y

    def _decode_into(self, x, y, position, feature_value, label_value):
        swap = bool(self.meta.get("channel_swap_float"))
        datum = _parse_datum(feature_value, self.dataset_dir)
        feature = datum_to_feature(datum)
        if feature.shape != x.shape[1:]:
            height, width, channels = x.shape[1:]
            raise DataError(f"{self.dataset_dir}: an LMDB entry is {feature.shape[2]}x{feature.shape[0]}x"
                            f"{feature.shape[1]} (C x H x W), its dataset says {channels}x{height}x{width}")
        x[position] = feature[..., ::-1] if swap and not datum.data and feature.shape[-1] == 3 else feature
        if y is None:
            return
        if label_value is None:
            y[position] = datum.label
        else:
            label = _parse_datum(label_value, self.dataset_dir)
            values = datum_to_feature(label)  # H,W,C; DIGITS swaps 3-channel float labels too
            if swap and not label.data and values.shape[-1] == 3:
                values = values[..., ::-1]
            if values.size != int(np.prod(y.shape[1:])):
                raise DataError(f"{self.dataset_dir}: an LMDB label holds {values.size} values, its dataset says "
                                f"label_shape {list(y.shape[1:])}")
            y[position] = values.transpose(2, 0, 1).reshape(y.shape[1:])

    def read_all(self, stage):
        """All entries of a stage in key order: (x N,H,W,C, y or None). Once `batches`
        has cached a stage, these are the cached arrays: copy before modifying them."""
        if stage in self._arrays:
            return self._arrays[stage]
        count = self.count(stage)
        x, y = self._empty_arrays(stage, count)
        array_labels = y is not None and y.ndim > 1
        features_env = self._open(stage, FEATURES_DB)
        labels_env = self._open(stage, LABELS_DB) if array_labels else None
        try:
            with features_env.begin(buffers=True) as txn:
                label_txn = labels_env.begin() if labels_env else None
                label_values = label_txn.cursor().iternext(keys=False) if label_txn else None
                read = 0
                for position, value in enumerate(txn.cursor().iternext(keys=False)):
                    if position >= count:
                        break
                    label_value = next(label_values) if label_values is not None else None
                    self._decode_into(x, y, position, value, label_value)
                    read += 1
                if label_txn:
                    label_txn.abort()
        except lmdb.Error as error:
            raise DataError(f"{self.dataset_dir}/{stage}: cannot read the LMDB ({error})") from None
        finally:
            features_env.close()
            if labels_env:
                labels_env.close()
        if read != count:
            raise DataError(f"{self.dataset_dir}/{stage}: dataset.json says {count} entries, LMDB has {read}")
        return x, y

    def read_items(self, stage, indices):
        """The entries at `indices` (item numbers, any order) of a stage, read straight
        from LMDB: (x N,H,W,C, y or None) as in read_all."""
        array_labels = self.label_shape(stage) not in (None, [])
        envs = (self._open(stage, FEATURES_DB), self._open(stage, LABELS_DB) if array_labels else None)
        try:
            return self._read_keys(stage, indices, envs)
        finally:
            for env in envs:
                if env is not None:
                    env.close()

    def _stage_keys(self, stage, txn):
        """None for stages keyed '%09d' by entry number (ours, DIGITS' generic ones),
        else the LMDB's keys in order (e.g. a DIGITS classification LMDB), read once."""
        if "features_db" not in self._stage(stage):
            return None
        if stage not in self._keys:
            self._keys[stage] = [bytes(key) for key in txn.cursor().iternext(values=False)]
        return self._keys[stage]

    def _read_keys(self, stage, indices, envs):
        """Decode the entries at `indices` straight from LMDB."""
        x, y = self._empty_arrays(stage, len(indices))
        features_env, labels_env = envs
        with features_env.begin(buffers=True) as txn:
            label_txn = labels_env.begin() if labels_env else None
            keys = self._stage_keys(stage, txn)
            for position, index in enumerate(indices):
                key = make_key(int(index)) if keys is None else keys[int(index)]
                self._decode_into(x, y, position, txn.get(key), label_txn.get(key) if label_txn else None)
            if label_txn:
                label_txn.abort()
        return x, y

    def _fits_in_memory(self, stage):
        x_item = np.prod(self._stage(stage)["feature_shape"]) * (1 if self._stage(stage)["feature_dtype"] == "uint8" else 4)
        y_item = 4 * np.prod(self.label_shape(stage) or [1])
        return self.count(stage) * (x_item + y_item) <= self.memory_budget

    def batches(self, stage, batch_size, shuffle=True, repeat=True, seed=None, drop_remainder=True):
        """Iterate (x, y) numpy batches (shapes/dtypes as read_all; y None without labels).

        Stages that fit `memory_budget` are decoded once and kept in memory; others are
        read by key. Shuffled afresh each epoch by a generator seeded with `seed`.
        """
        if batch_size < 1:
            raise DataError(f"batch_size {batch_size}: expected a positive integer")
        count = self.count(stage)
        rng = np.random.default_rng(seed)
        indices = _index_batches(count, batch_size, shuffle, repeat, rng, drop_remainder)
        if self._fits_in_memory(stage):
            self._arrays[stage] = x, y = self.read_all(stage)
            for batch in indices:
                yield x[batch], (None if y is None else y[batch])
            return
        array_labels = self.label_shape(stage) not in (None, [])
        envs = (self._open(stage, FEATURES_DB), self._open(stage, LABELS_DB) if array_labels else None)
        try:
            for batch in indices:
                yield self._read_keys(stage, batch, envs)
        finally:
            for env in envs:
                if env is not None:
                    env.close()

    def tf_dataset(self, stage, batch_size, shuffle=True, repeat=True, seed=None, drop_remainder=True):
        """A prefetched tf.data.Dataset of (x float32 N,H,W,C 0..255, y) batches; y as in
        `batches`. A stage without labels yields x alone."""
        import tensorflow as tf

        channels, height, width = self._stage(stage)["feature_shape"]
        batch_dim = batch_size if drop_remainder else None
        x_dtype = tf.uint8 if self._stage(stage)["feature_dtype"] == "uint8" else tf.float32
        x_spec = tf.TensorSpec((batch_dim, height, width, channels), x_dtype)
        label_shape = self.label_shape(stage)

        def generate():
            for x, y in self.batches(stage, batch_size, shuffle, repeat, seed, drop_remainder):
                yield x if y is None else (x, y)

        if label_shape is None:
            signature = x_spec
            to_float = lambda x: tf.cast(x, tf.float32)  # noqa: E731
        else:
            y_spec = (tf.TensorSpec((batch_dim,), tf.int64) if label_shape == []
                      else tf.TensorSpec([batch_dim] + label_shape, tf.float32))
            signature = (x_spec, y_spec)
            to_float = lambda x, y: (tf.cast(x, tf.float32), y)  # noqa: E731
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        # No autotuning: once an iterator has reached its end, re-initializing it waits
        # for the autotuner's thread to wake (its period doubles to 10 s), which stalled
        # each epoch's validation by 0-10 s. From a sequential generator, a fixed
        # buffer is all autotuning would choose.
        options = tf.data.Options()
        options.autotune.enabled = False
        return dataset.map(to_float).prefetch(PREFETCH_BATCHES).with_options(options)

    def has_mean(self, stage):
        return os.path.isfile(os.path.join(self.dataset_dir, stage, MEAN_FILE))

    def mean(self, stage):
        """Mean feature of a stage: float32 H,W,C (RGB for 3-channel image data)."""
        path = os.path.join(self.dataset_dir, stage, MEAN_FILE)
        self._stage(stage)
        if not self.has_mean(stage):
            raise DataError(f"{path}: not found (DIGITS writes no mean without force_same_shape)")
        try:
            with open(path, "rb") as handle:
                blob = BlobProto.FromString(handle.read())
        except Exception as error:  # OSError, or protobuf's DecodeError (no stable import path)
            raise DataError(f"{path}: not a readable BlobProto ({error})") from None
        shape = (blob.channels, blob.height, blob.width)
        if min(shape) < 1 or len(blob.data) != blob.channels * blob.height * blob.width:
            raise DataError(f"{path}: expected a C x H x W mean, got shape {'x'.join(map(str, shape))} "
                            f"holding {len(blob.data)} values")
        mean = np.asarray(blob.data, dtype=np.float32).reshape(shape)
        if blob.channels == 3 and self._stage(stage)["feature_dtype"] == "uint8":
            mean = mean[::-1]
        return np.ascontiguousarray(mean.transpose(1, 2, 0))
