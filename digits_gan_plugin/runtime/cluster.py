"""Devices and clusters: ``--devices`` resolution and multi-worker training.

Multi-worker design (in-graph replication, one synchronous session): the chief
(worker:0) builds ONE graph with a train tower per worker device
``/job:worker/task:K`` and runs every step itself, exactly like multi-device training
(gradients averaged per loss entry, applied once on the chief's variables). Each
process, chief included, reads its own shard of train_db (items i with i % W == K,
shuffled per worker) and feeds it into a FIFOQueue on its own device, shared by name
with the chief's graph; tower K dequeues from it, so images never cross the network.
The chief closes the queues when training ends, which stops the workers. A dead
worker fails the chief's step (gRPC Unavailable, or the session's operation timeout);
a dead chief is noticed by the workers when their queue stays full and a probe op on
the chief fails.
"""
import json
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass

import numpy as np

from ..errors import TrainingError
from .model_files import op_error_detail

QUEUE_CAPACITY = 4
OPERATION_TIMEOUT_MS = 60000  # chief: a step (or epoch-end call) waiting this long on a worker fails
FEED_TIMEOUT_MS = 5000
STARTUP_TIMEOUT_S = 300  # a full queue for this long makes a worker probe the chief
TRACE_ENV = "DIGITS_GAN_TRACE_ITEMS"  # directory: each process appends the item indices it feeds
MAX_LOGICAL_CPUS = 64  # --devices N without GPUs: logical CPU devices stand in for them (testing only)


def local_devices(spec):
    """Device names for `--devices`: an int N (the first N GPUs; on a machine without
    GPUs, N logical CPU devices, useful for testing only), a comma-separated string of
    names ('/device:GPU:0,/device:GPU:1') or a list of names. Logical CPU devices
    named in the spec are created; that must happen before TensorFlow initializes its
    devices (TrainingError otherwise)."""
    import tensorflow as tf

    if isinstance(spec, str):
        spec = int(spec) if spec.strip().isdigit() else [name.strip() for name in spec.split(",") if name.strip()]
    if isinstance(spec, int):  # >= 1: TrainOptions.check
        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            if spec > len(gpus):
                raise TrainingError(f"--devices {spec}: only {len(gpus)} GPU(s) visible")
            return [f"/device:GPU:{index}" for index in range(spec)]
        if spec > MAX_LOGICAL_CPUS:
            raise TrainingError(f"--devices {spec}: no GPU is visible, and at most {MAX_LOGICAL_CPUS} logical CPU "
                                f"devices can stand in for GPUs (for testing; one device trains fastest on CPUs)")
        names = [f"/device:CPU:{index}" for index in range(spec)]
    else:
        names = list(spec)
    if any("/job:" in name for name in names):
        raise TrainingError(f"--devices {','.join(names)}: cluster devices (recorded by a --cluster job); "
                            "resume with the same --cluster, or pass --devices")
    cpu_indices = [int(m.group(1)) for m in (re.fullmatch(r"/device:CPU:(\d+)", n, re.I) for n in names) if m]
    if cpu_indices and max(cpu_indices) > 0:
        _ensure_logical_cpus(max(cpu_indices) + 1)
    return names


def _ensure_logical_cpus(count):
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    existing = tf.config.get_logical_device_configuration(cpu)
    if existing and len(existing) >= count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise TrainingError(
            f"cannot create {count} logical CPU devices: TensorFlow already initialized its devices in this process"
        ) from None


@dataclass
class ClusterTask:
    """This process's place in a cluster of W workers; worker 0 is the chief."""

    workers: list  # "host:port" of worker 0..W-1
    index: int

    @property
    def count(self):
        return len(self.workers)

    @property
    def is_chief(self):
        return self.index == 0

    def device(self, index):
        return f"/job:worker/task:{index}"

    def describe(self, index):
        return f"worker:{index} ({self.workers[index]})"

    def spec(self):
        import tensorflow.compat.v1 as tf

        return tf.train.ClusterSpec({"worker": self.workers})


def read_cluster(cluster_file=None, task=None, environ=os.environ):
    """ClusterTask from `--cluster FILE --task worker:K`, or from the TF_CONFIG
    environment variable ({"cluster": {"worker": [...]}, "task": {"type": "worker",
    "index": K}}); None when neither is given. FILE holds {"worker": ["host:port", ...]}
    (or the TF_CONFIG form)."""
    if cluster_file is None and task is None and not environ.get("TF_CONFIG"):
        return None
    if cluster_file is not None:
        where = str(cluster_file)
        try:
            with open(cluster_file, encoding="utf-8") as stream:
                data = json.load(stream)
        except (OSError, ValueError) as error:
            raise TrainingError(f"--cluster {cluster_file}: cannot read JSON ({error})") from None
        data = data.get("cluster", data)
        if task is None:
            raise TrainingError("--cluster requires --task worker:K")
    else:
        where = "TF_CONFIG"
        try:
            config = json.loads(environ.get("TF_CONFIG", ""))
            data = config["cluster"]
            task = task or f"{config['task']['type']}:{config['task']['index']}"
        except (ValueError, KeyError, TypeError):
            raise TrainingError('TF_CONFIG: expected {"cluster": {"worker": [...]}, '
                                '"task": {"type": "worker", "index": K}}') from None
    workers = data.get("worker") if isinstance(data, dict) else None
    if set(data) != {"worker"} or not isinstance(workers, list) or not workers \
            or not all(isinstance(w, str) and ":" in w for w in workers):
        raise TrainingError(f'{where}: expected exactly one job, {{"worker": ["host:port", ...]}} '
                            "(worker 0 is the chief)")
    match = re.fullmatch(r"worker:(\d+)", str(task))
    if not match or int(match.group(1)) >= len(workers):
        raise TrainingError(f"--task {task}: expected worker:K with K in 0..{len(workers) - 1}")
    return ClusterTask(workers, int(match.group(1)))


def start_server(task, threads):
    import tensorflow.compat.v1 as tf

    config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
    return tf.train.Server(task.spec(), job_name="worker", task_index=task.index, config=config)


def input_queue(reader, task, index, tower_batch):
    """The FIFOQueue on worker `index` holding (x float32 B,H,W,C, y...) batches of its
    shard; the same shared resource in the worker's and the chief's graphs."""
    import tensorflow.compat.v1 as tf

    channels, height, width = reader.meta["stages"]["train_db"]["feature_shape"]
    dtypes, shapes = [tf.float32], [[tower_batch, height, width, channels]]
    label_shape = reader.label_shape("train_db")
    if label_shape is not None:
        dtypes.append(tf.int64 if label_shape == [] else tf.float32)
        shapes.append([tower_batch] + list(label_shape))
    with tf.device(task.device(index)):
        return tf.FIFOQueue(QUEUE_CAPACITY, dtypes, shapes=shapes, shared_name=f"digits_gan_input_{index}",
                            name=f"input_{index}")


@dataclass(frozen=True)
class ClusterInputs:
    """The chief's handles on the workers' input queues."""

    close: object        # op closing every queue (stops the workers' feeders)
    sizes: tuple         # one queue-size tensor per worker


def tower_inputs(reader, task, tower_batch, devices):
    """([(x, y)] per worker tower, ClusterInputs): tower K dequeues worker K's batches."""
    import tensorflow.compat.v1 as tf

    queues = [input_queue(reader, task, k, tower_batch) for k in range(task.count)]
    inputs = []
    for queue, device in zip(queues, devices):
        with tf.device(device):
            element = queue.dequeue()
        inputs.append(tuple(element) if isinstance(element, (list, tuple)) else (element, None))
    close = tf.group(*[queue.close(cancel_pending_enqueues=True) for queue in queues])
    return inputs, ClusterInputs(close, tuple(queue.size() for queue in queues))


class ChiefSession:
    """The chief's session as a context manager: starts this task's server and its own
    feeder, waits for every worker's first batch; on exit closes the input queues.
    A worker that stops responding turns into one TrainingError naming it (the
    session is then left open: closing it would wait on the dead peer)."""

    def __init__(self, task, built, reader, options, threads):
        import tensorflow.compat.v1 as tf

        self.task, self.built = task, built
        server = start_server(task, threads)
        config = tf.ConfigProto(operation_timeout_in_ms=OPERATION_TIMEOUT_MS, allow_soft_placement=True)
        print(f"{task.describe(0)}: chief of {task.count} workers; waiting for all of them", file=sys.stderr)
        self.session = tf.Session(server.target, graph=built.graph, config=config)
        self.feeder = Feeder(reader, task, options.batch_size // task.count, options.seed, server.target, threads,
                             probe_chief=False)
        self.graph_context = built.graph.as_default()

    def __enter__(self):
        self.feeder.run_in_thread()
        wait_for_workers(self.session, self.built.cluster_inputs.sizes, self.task)
        self.graph_context.__enter__()
        return self.session

    def __exit__(self, kind, error, trace):
        self.graph_context.__exit__(kind, error, trace)
        if kind is None:
            self.session.run(self.built.cluster_inputs.close)
            self.session.close()
        return False

    @staticmethod
    def lost_worker_errors():
        """The TensorFlow errors a step raises when a worker is gone."""
        import tensorflow.compat.v1 as tf

        return (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                tf.errors.CancelledError, tf.errors.OutOfRangeError)

    def lost(self, error, step, last_checkpoint):
        """The one error to raise for a lost-worker `error` at `step`."""
        if self.feeder.error is not None:
            return self.feeder.error
        return TrainingError(f"{failed_worker(error, self.task, step)}; training stopped, last checkpoint kept: "
                             f"{last_checkpoint or 'none'} (restart all workers, the chief with --resume)")


def read_shard(reader, stage, index, count):
    """(items int64, x N,H,W,C, y or None): the items i % count == index of `stage`,
    decoded into memory once (an LMDB environment may be open only once per process,
    and the chief's main thread reads the same dataset)."""
    items = np.arange(index, reader.count(stage), count, dtype=np.int64)
    if len(items) == 0:
        raise TrainingError(f"{reader.dataset_dir}: {stage} has no items for worker {index} of {count}")
    x, y = reader.read_items(stage, items)
    return items, x, y


def shard_batches(shard, batch_size, seed):
    """Endless (indices int64 B, x, y) batches of a read_shard() result, reshuffled
    every pass by a generator seeded with `seed`; passes run into each other so a
    shard smaller than a batch still gives full batches."""
    items, x, y = shard
    rng = np.random.default_rng(seed)
    pending = np.empty(0, np.int64)
    while True:
        while len(pending) < batch_size:
            pending = np.concatenate([pending, rng.permutation(len(items))])
        batch, pending = pending[:batch_size], pending[batch_size:]
        yield items[batch], x[batch], (None if y is None else y[batch])


class Feeder:
    """Feeds one worker's shard into its input queue until the chief closes it.

    run() returns normally when the queue is closed (training over) and raises
    TrainingError when the chief stops responding (only when `probe` is given)."""

    def __init__(self, reader, task, tower_batch, seed, target, threads, probe_chief):
        import tensorflow.compat.v1 as tf

        self.task, self.tower_batch = task, tower_batch
        self.seed = None if seed is None else seed + task.index
        self.shard = read_shard(reader, "train_db", task.index, task.count)
        self.graph = tf.Graph()
        with self.graph.as_default():
            queue = input_queue(reader, task, task.index, tower_batch)
            dtypes, shapes = queue.dtypes, queue.shapes
            with tf.device(task.device(task.index)):
                self.inputs = [tf.placeholder(d, s) for d, s in zip(dtypes, shapes)]
                self.enqueue = queue.enqueue(self.inputs)
            self.probe = None
            if probe_chief:
                with tf.device(task.device(0)):
                    self.probe = tf.random.uniform([])  # stateful: runs on the chief, not folded away
        devices = [task.device(task.index)] + ([task.device(0)] if probe_chief else [])
        config = tf.ConfigProto(device_filters=devices, intra_op_parallelism_threads=threads,
                                inter_op_parallelism_threads=threads)
        self.session = tf.Session(target, graph=self.graph, config=config)
        self.fed = 0
        self.error = None

    def run(self):
        import tensorflow.compat.v1 as tf

        trace = _trace_file(self.task)
        options = tf.RunOptions(timeout_in_ms=FEED_TIMEOUT_MS)
        try:
            for indices, x, y in shard_batches(self.shard, self.tower_batch, self.seed):
                feed = dict(zip(self.inputs, [x.astype(np.float32)] + ([] if y is None else [y])))
                while True:
                    try:
                        self.session.run(self.enqueue, feed, options=options)
                        break
                    except tf.errors.DeadlineExceededError:
                        self._check_chief()
                if trace:
                    trace.write(" ".join(map(str, indices)) + "\n")
                    trace.flush()
                self.fed += 1
        except (tf.errors.CancelledError, tf.errors.AbortedError, tf.errors.OutOfRangeError):
            return self.fed  # the chief closed the queue: training is over
        except tf.errors.UnavailableError:
            raise self._chief_gone() from None
        finally:
            if trace:
                trace.close()

    def run_in_thread(self):
        """Run in a daemon thread (the chief's own shard); errors land in .error."""
        def target():
            try:
                self.run()
            except BaseException as error:  # reported by the chief's loop
                self.error = error

        thread = threading.Thread(target=target, name="digits-gan-feeder", daemon=True)
        thread.start()
        return thread

    def _check_chief(self):
        import tensorflow.compat.v1 as tf

        if self.probe is None:
            return
        try:
            self.session.run(self.probe, options=tf.RunOptions(timeout_in_ms=FEED_TIMEOUT_MS))
        except tf.errors.OpError:
            raise self._chief_gone() from None

    def _chief_gone(self):
        return TrainingError(f"{self.task.describe(self.task.index)}: the chief {self.task.describe(0)} "
                             "stopped responding; stopping")


def _trace_file(task):
    folder = os.environ.get(TRACE_ENV)
    if not folder:
        return None
    os.makedirs(folder, exist_ok=True)
    return open(os.path.join(folder, f"items-worker-{task.index}.txt"), "a", encoding="utf-8")


def tower_batch_size(batch_size, towers, what="devices"):
    """Images per tower; TrainingError when `batch_size` does not divide evenly."""
    if batch_size % towers:
        raise TrainingError(f"--batch-size {batch_size} does not divide evenly across {towers} {what}")
    return batch_size // towers


def run_worker(task, dataset, batch_size, seed=None, threads=None):
    """Serve as worker `task.index` (> 0): start this task's gRPC server, feed this
    worker's shard of `dataset` until the chief closes the queue. Writes nothing but
    messages on stderr. Returns the number of batches fed."""
    from ..dataset_io import DatasetReader
    from ..files import usable_cores
    from .trainer import keep_arena_heaps

    keep_arena_heaps()  # the towers placed on this worker run in this process
    reader = DatasetReader(dataset)
    tower_batch = tower_batch_size(batch_size, task.count, "workers")
    threads = threads or usable_cores()
    server = start_server(task, threads)
    print(f"{task.describe(task.index)}: serving; feeding shard {task.index} of {task.count} "
          f"({tower_batch} images per step) once the chief {task.describe(0)} is up", file=sys.stderr)
    feeder = Feeder(reader, task, tower_batch, seed, server.target, threads, probe_chief=True)
    fed = feeder.run()
    print(f"{task.describe(task.index)}: the chief finished training; fed {fed} batches", file=sys.stderr)
    return fed


def wait_for_workers(session, queue_sizes, task, timeout_s=STARTUP_TIMEOUT_S):
    """Block until every worker has fed its first batch. A worker's feeding session
    only starts once it reached the chief, so after this every worker <-> chief gRPC
    channel is up (a step sent earlier can fail on a channel still backing off)."""
    import time

    import tensorflow.compat.v1 as tf

    deadline = time.monotonic() + timeout_s
    while True:
        try:
            sizes = session.run(queue_sizes)
            if min(sizes) > 0:
                return
            waiting = [task.describe(k) for k, size in enumerate(sizes) if size == 0]
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError) as error:
            waiting = [str(error).split("\n")[0]]
        if time.monotonic() > deadline:
            raise TrainingError(f"{task.describe(0)}: no first batch after {timeout_s} s from {', '.join(waiting)}")
        time.sleep(0.5)


def failed_worker(error, task, step):
    """A one-line message naming the worker a lost-worker TF error came from: the other
    workers that no longer accept connections (killed), else the first other worker the
    error names (it often names this task's own ops first, cancelled by the loss)."""
    others = [index for index in range(task.count) if index != task.index]
    gone = [index for index in others if not _accepts_connections(task.workers[index])]
    if not gone:
        named = [int(index) for index in re.findall(r"/job:worker/replica:\d+/task:(\d+)", str(error))]
        gone = [index for index in named if index in others][:1]
    who = ", ".join(task.describe(index) for index in gone) or "a worker"
    detail = op_error_detail(error, 300)
    return f"{who} stopped responding at step {step} ({type(error).__name__}: {detail})"


def _accepts_connections(address, timeout_s=1.0):
    host, _, port = address.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except (OSError, ValueError):
        return False
    return True
