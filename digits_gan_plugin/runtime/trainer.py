"""The training loop: dataset + model file -> job directory (see ``jobdir``).

One step = one batch = one session call running the step op of the active loss
entries (see ``graph.UpdateOps``). With several devices (``--devices``) or workers
(``cluster``) the batch is split into one train tower per device / worker, whose
gradients are averaged per entry; summaries, UPDATE_OPS (batch-norm statistics) and
sample grids come from tower 0. Per epoch: validation means, a fixed-seed sample
grid, a metrics.csv row, the loss curve, TensorBoard scalars and images. Checkpoints
every ``snapshot_interval`` epochs, at the end, and on Ctrl-C.
"""
import collections
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone

import numpy as np

from ..dataset_io import DatasetReader
from ..files import usable_cores, write_json_atomic, write_text_atomic
from ..errors import TrainingError
from ..imaging import make_grid, save_png, to_uint8
from .. import jobdir
from .charts import line_chart
from . import cluster as clusters
from .graph import UpdateOps, build_train_towers, build_tower, loss_entries, mean_entries, model_facts, reuse_scope
from .model_files import load_model_class, resolve_network
from .schedules import LearningRatePolicy, check_solver
from .vectors import sample_grid_vectors


@dataclass
class TrainOptions:
    """Resolved training options (saved in config.json). Steps count batches."""

    dataset: str
    network: str
    epochs: int = 10
    batch_size: int = 64
    solver: str = "adam"
    lr: float = 2e-4
    lr_policy: str = "fixed"
    gamma: float | None = None
    power: float | None = None
    step_size: int | None = None
    step_values: list = field(default_factory=list)
    keep: int = 5
    best_metric: str | None = None
    best_mode: str = "min"
    snapshot_interval: float = 1.0
    seed: int | None = None
    devices: int | str | list = 1
    max_steps: int | None = None
    threads: int | None = None
    summary_interval: int = 50
    weights: str | None = None

    def check(self):
        """Raise TrainingError naming the first invalid option."""
        for name in ("epochs", "batch_size", "keep", "summary_interval"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise TrainingError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {value!r}")
        for name in ("max_steps", "threads"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise TrainingError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {value!r}")
        if not self.snapshot_interval > 0:
            raise TrainingError(f"--snapshot-interval: expected a number of epochs > 0, got {self.snapshot_interval}")
        if self.best_mode not in ("min", "max"):
            raise TrainingError(f"--best-mode: expected 'min' or 'max', got {self.best_mode!r}")
        if not isinstance(self.devices, (int, str, list)) or self.devices in ("", []) or (
                isinstance(self.devices, int) and self.devices < 1):
            raise TrainingError(f"--devices: expected an integer >= 1 or device names, got {self.devices!r}")
        check_solver(self.solver)

    def lr_policy_for(self, total_steps):
        """The LearningRatePolicy; poly decays to 0 at max_steps or the last step."""
        return LearningRatePolicy(
            self.lr_policy, self.lr, gamma=self.gamma, power=self.power, step_size=self.step_size,
            step_values=self.step_values, max_steps=self.max_steps or total_steps,
        )


@dataclass
class TrainResult:
    job_dir: str
    step: int
    epoch: int
    checkpoint: str | None
    interrupted: bool = False
    config: dict = None


def options_from_config(config, **overrides):
    """TrainOptions from a job's config.json, with non-None `overrides` applied."""
    known = {f.name for f in fields(TrainOptions)}
    values = {key: value for key, value in config.items() if key in known}
    values.update({key: value for key, value in overrides.items() if value is not None})
    return TrainOptions(**values)


class _Graph:
    """The training graph: data iterators, train/val/inference towers, update ops."""

    def __init__(self, options, reader, model_class, facts, seed, data_seed, devices=(None,), cluster=None):
        import tensorflow.compat.v1 as tf

        self.graph = tf.Graph()
        self.close_inputs = None
        with self.graph.as_default():
            tf.set_random_seed(seed)
            self.global_step = tf.train.get_or_create_global_step()
            self.lr_scale = tf.placeholder_with_default(tf.constant(1.0), [], name="lr_scale")
            inputs = self._train_inputs(options, reader, devices, cluster, data_seed)
            with reuse_scope():
                before = set(tf.global_variables())
                updates_before = set(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
                models, tower_entries = build_train_towers(model_class, facts, inputs, devices, facts.network,
                                                           options.solver, options.lr)
                self.train_model = models[0]
                # only tower 0's UPDATE_OPS (e.g. batch-norm moving averages) run each step
                update_ops = [op for op in tf.get_collection(tf.GraphKeys.UPDATE_OPS)
                              if op not in updates_before and op.name.startswith("train/")]
                self.entries = mean_entries(tower_entries)
                self.val_losses = None
                if "val_db" in reader.stages and reader.count("val_db") > 0:
                    val_batch = min(options.batch_size, reader.count("val_db"))
                    val_x, val_y, self.val_init = _iterator(reader, "val_db", val_batch, False, data_seed)
                    val_model = build_tower(model_class, facts, val_x, val_y, "val", ["loss"])
                    val_entries = loss_entries(val_model.loss, facts.network, options.solver, options.lr)
                    if len(val_entries) != len(self.entries):
                        raise TrainingError(f"{facts.network}: the val tower returned a different number of loss entries")
                    self.val_losses = [entry.loss for entry in val_entries]
                self.sample_input = self.samples = None
                if facts.inference_input == "z":
                    self.sample_input = tf.placeholder(tf.float32, [None, 1, 1, facts.vector_width], name="z")
                    inference = build_tower(model_class, facts, self.sample_input, None, "inf", ["inference"]).inference
                    self.samples = inference.get("images") if isinstance(inference, dict) else inference
                self.model_variables = [v for v in tf.global_variables() if v not in before]
            self.weights_saver = self._weights_saver(options.weights) if options.weights else None
            self.updates = UpdateOps(tower_entries, models, facts.network, self.lr_scale,
                                     self.global_step, update_ops, devices)
            self.summary = tf.summary.merge(self.train_model.summaries) if self.train_model.summaries else None
            self.init = tf.global_variables_initializer()
            # relative paths in the state files: a job directory can be moved or copied
            self.saver = tf.train.Saver(max_to_keep=options.keep, save_relative_paths=True)
            self.best_saver = tf.train.Saver(max_to_keep=1, save_relative_paths=True)
        self.graph.finalize()

    def _train_inputs(self, options, reader, devices, cluster, data_seed):
        """[(x, y)] per train tower: slices of one batch (local devices) or a batch
        dequeued from each worker's input queue (cluster; see ``cluster``)."""
        import tensorflow.compat.v1 as tf

        tower_batch = clusters.tower_batch_size(options.batch_size, len(devices), "workers" if cluster else "devices")
        if cluster:
            queues = [clusters.input_queue(reader, cluster, k, tower_batch) for k in range(cluster.count)]
            self.train_init = tf.no_op()
            self.close_inputs = tf.group(*[queue.close(cancel_pending_enqueues=True) for queue in queues])
            self.queue_sizes = [queue.size() for queue in queues]
            inputs = []
            for queue, device in zip(queues, devices):
                with tf.device(device):
                    element = queue.dequeue()
                inputs.append(tuple(element) if isinstance(element, (list, tuple)) else (element, None))
            return inputs
        train_x, train_y, self.train_init = _iterator(reader, "train_db", options.batch_size, True, data_seed)
        if len(devices) == 1:
            return [(train_x, train_y)]
        xs = tf.split(train_x, len(devices))
        ys = tf.split(train_y, len(devices)) if train_y is not None else [None] * len(devices)
        return list(zip(xs, ys))

    def _weights_saver(self, source):
        """A Saver restoring every model variable whose name and shape match a variable
        of the checkpoint `source` (job dir, checkpoint dir or prefix); reports counts."""
        import tensorflow.compat.v1 as tf

        self.weights_checkpoint = prefix = jobdir.find_checkpoint(source)
        available = dict(tf.train.list_variables(prefix))
        matched = {v.op.name: v for v in self.model_variables
                   if list(available.get(v.op.name, [None])) == v.shape.as_list()}
        if not matched:
            raise TrainingError(f"--weights {source}: no variable of the model matches {prefix} by name and shape")
        missing = collections.Counter(v.op.name.split("/")[0] for v in self.model_variables if v.op.name not in matched)
        unmatched = ", ".join(f"{count} under {scope}/" for scope, count in sorted(missing.items()))
        print(f"--weights: initializing {len(matched)} of {len(self.model_variables)} model variables "
              f"from {prefix}" + (f"; not matched (they start fresh): {unmatched}" if missing else ""), file=sys.stderr)
        return tf.train.Saver(var_list=matched)


def _iterator(reader, stage, batch_size, train, seed):
    """(x float32 N,H,W,C 0..255, y or None, initializer op) of an initializable
    iterator over `stage`: shuffled and repeating when `train`, one ordered pass else."""
    import tensorflow.compat.v1 as tf

    dataset = reader.tf_dataset(stage, batch_size, shuffle=train, repeat=train, seed=seed, drop_remainder=True)
    iterator = tf.data.make_initializable_iterator(dataset)
    element = iterator.get_next()
    x, y = element if isinstance(element, tuple) else (element, None)
    return x, y, iterator.initializer


def train(options, out, resume=False, dry_run=False, progress=True, step_callback=None, cluster=None):
    """Train `options.network` on `options.dataset` into job directory `out`.

    resume: continue from the last checkpoint of `out` (its config.json wins except for
    the options passed explicitly by the caller). step_callback(step) is called after
    every step with the number of batches trained. cluster: a ``cluster.ClusterTask``
    of the chief (worker 0): the towers run on the workers, which must run
    ``cluster.run_worker``; a worker that stops responding raises TrainingError (after
    which the session is left open: closing it would wait on the dead peer). Returns a TrainResult; a Ctrl-C
    writes a checkpoint and returns with interrupted=True. Raises TrainingError (bad
    options, NaN/Inf loss), ModelDefinitionError, DataError.
    """
    options.check()
    paths = jobdir.JobPaths(out)
    if not resume and (paths.config.exists() or paths.checkpoints.exists()) and not dry_run:
        raise TrainingError(f"{out}: already holds a training job (use --resume, or another --out)")
    if options.seed is None:
        options.seed = int(np.random.SeedSequence().entropy % (2**31))
    reader = DatasetReader(options.dataset)
    if "train_db" not in reader.stages or reader.count("train_db") == 0:
        raise TrainingError(f"{options.dataset}: the dataset has no train_db entries")
    network = resolve_network(options.network)
    options.network = str(network)
    steps_per_epoch = max(1, reader.count("train_db") // options.batch_size)
    total_steps = options.epochs * steps_per_epoch
    if options.max_steps:
        total_steps = min(total_steps, options.max_steps)
    policy = options.lr_policy_for(total_steps)
    model_class = load_model_class(network)
    facts = model_facts(model_class, network, reader.meta)
    config = dict(asdict(options), model=facts.to_dict(), steps_per_epoch=steps_per_epoch,
                  total_steps=total_steps, dataset=os.path.abspath(options.dataset))
    start_checkpoint = jobdir.find_checkpoint(paths.checkpoints) if resume else None
    start_step = _checkpoint_step(start_checkpoint)
    if cluster:
        devices = [cluster.device(k) for k in range(cluster.count)]
        config["cluster"] = {"worker": cluster.workers}
    else:
        devices = clusters.local_devices(options.devices)
    config["devices"] = devices
    placement = devices if len(devices) > 1 else (None,)  # one device: TensorFlow's default placement
    built = _Graph(options, reader, model_class, facts, options.seed, options.seed + start_step, placement, cluster)
    config["loss_entries"] = [entry.name for entry in built.entries]
    if dry_run:
        import json

        print(json.dumps(config, indent=2, sort_keys=True))
        return TrainResult(str(out), start_step, start_step // steps_per_epoch, start_checkpoint, config=config)
    config["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    write_json_atomic(paths.config, config)
    write_text_atomic(paths.network, network.read_text(encoding="utf-8"))
    loop = _Loop(options, config, paths, reader, built, facts, policy, progress, step_callback)
    return loop.run(start_checkpoint, cluster)


def _checkpoint_step(prefix):
    """Global step encoded in a 'model.ckpt-STEP' prefix (0 for None)."""
    return int(str(prefix).rsplit("-", 1)[1]) if prefix else 0


class _Loop:
    """Runs the session: steps, epoch-end work, checkpoints."""

    def __init__(self, options, config, paths, reader, built, facts, policy, progress, step_callback):
        self.options, self.config, self.paths, self.reader = options, config, paths, reader
        self.built, self.facts, self.policy = built, facts, policy
        self.progress, self.step_callback = progress, step_callback
        self.steps_per_epoch = config["steps_per_epoch"]
        self.total_steps = config["total_steps"]
        self.snapshot_steps = max(1, round(options.snapshot_interval * self.steps_per_epoch))
        self.summary_interval = min(options.summary_interval, self.steps_per_epoch)
        self.names = [entry.name for entry in built.entries]
        self.rows = jobdir.read_metrics(paths.metrics)
        self.last_checkpoint = None
        self.current_step = 0
        self.best_value = self._read_best()
        if facts.inference_input == "z":
            self.grid_vectors, self.grid_shape = sample_grid_vectors(facts, options.seed)

    # ------------------------------------------------------------------ session
    def run(self, start_checkpoint, cluster=None):
        import tensorflow.compat.v1 as tf

        threads = self.options.threads or usable_cores()
        if cluster is None:
            session_config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads,
                                            allow_soft_placement=True)  # CPU-only ops inside a GPU tower
            with tf.Session(graph=self.built.graph, config=session_config) as self.session:
                return self._run_session(start_checkpoint)
        server = clusters.start_server(cluster, threads)
        session_config = tf.ConfigProto(operation_timeout_in_ms=clusters.OPERATION_TIMEOUT_MS,
                                        allow_soft_placement=True)
        print(f"{cluster.describe(0)}: chief of {cluster.count} workers; waiting for all of them", file=sys.stderr)
        self.session = tf.Session(server.target, graph=self.built.graph, config=session_config)
        feeder = clusters.Feeder(self.reader, cluster, self.options.batch_size // cluster.count, self.options.seed,
                                 server.target, threads, probe_chief=False)
        feeder.run_in_thread()
        clusters.wait_for_workers(self.session, self.built.queue_sizes, cluster)
        try:
            with self.built.graph.as_default():
                result = self._run_session(start_checkpoint)
        except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
                tf.errors.CancelledError, tf.errors.OutOfRangeError) as error:
            if feeder.error is not None:
                raise feeder.error
            raise TrainingError(f"{clusters.failed_worker(error, cluster, self.current_step)}; training stopped, "
                                f"last checkpoint kept: {self.last_checkpoint or 'none'} (restart all workers, "
                                f"the chief with --resume)") from None
        self.session.run(self.built.close_inputs)
        self.session.close()
        return result

    def _run_session(self, start_checkpoint):
        import tensorflow.compat.v1 as tf

        self.session.run(self.built.init)
        if start_checkpoint:
            self.built.saver.restore(self.session, start_checkpoint)
            self.last_checkpoint = start_checkpoint
            # so that --keep also prunes the checkpoints of earlier runs
            state = tf.train.get_checkpoint_state(str(self.paths.checkpoints))
            self.built.saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
        elif self.built.weights_saver:
            self.built.weights_saver.restore(self.session, self.built.weights_checkpoint)
        self.session.run(self.built.train_init)
        self.writer = tf.summary.FileWriter(str(self.paths.events), self.built.graph if not start_checkpoint else None)
        try:
            return self._train(int(self.session.run(self.built.global_step)))
        finally:
            self.writer.close()

    # ------------------------------------------------------------------ loop
    def _train(self, step):
        from tqdm import tqdm

        self._write_reals_once()
        bar = tqdm(total=self.total_steps, initial=step, unit="step", dynamic_ncols=True,
                   disable=not self.progress or not sys.stderr.isatty())
        try:
            while step < self.total_steps:
                epoch = step // self.steps_per_epoch
                epoch_end = min((epoch + 1) * self.steps_per_epoch, self.total_steps)
                step = self._run_epoch(step, epoch_end, epoch, bar)
            if self.last_checkpoint is None or _checkpoint_step(self.last_checkpoint) != step:
                self._save(step)
        except KeyboardInterrupt:
            step = int(self.session.run(self.built.global_step))
            self._save(step)
            bar.close()
            print(f"interrupted at step {step} (epoch {step // self.steps_per_epoch + 1}); checkpoint "
                  f"{self.last_checkpoint} written; continue with --resume", file=sys.stderr)
            return self._result(step, interrupted=True)
        finally:
            bar.close()
        return self._result(step)

    def _result(self, step, interrupted=False):
        return TrainResult(str(self.paths.root), step, step // self.steps_per_epoch, self.last_checkpoint,
                           interrupted, self.config)

    def _run_epoch(self, step, epoch_end, epoch, bar):
        built, entries = self.built, self.built.entries
        sums, counts = [0.0] * len(entries), [0] * len(entries)
        scalars = {}
        feed_lr = self.policy.policy != "fixed"
        started, first_step = time.perf_counter(), step
        while step < epoch_end:
            self.current_step = step
            active, op = built.updates.op_at(step)
            fetches = [op, [entries[i].loss for i in active]]
            summarize = (step + 1) % self.summary_interval == 0
            if summarize and built.summary is not None:
                fetches.append(built.summary)
            feed = {built.lr_scale: self.policy.factor(step)} if feed_lr else None
            values = self.session.run(fetches, feed_dict=feed)
            for index, value in zip(active, values[1]):
                if not math.isfinite(value):
                    raise TrainingError(
                        f"loss entry {entries[index].name!r} is {value} at step {step} (epoch {epoch + 1}); "
                        f"training stopped, last good checkpoint kept: {self.last_checkpoint or 'none'}"
                    )
                sums[index] += value
                counts[index] += 1
            if summarize:
                self._write_step_summaries(step + 1, active, values[1], values[2] if len(values) > 2 else None, scalars)
            step += 1
            if step % self.snapshot_steps == 0:
                self._save(step)
            if self.step_callback:
                self.step_callback(step)
            bar.update(1)
            if step % 10 == 0 or step == epoch_end:
                rate = (step - first_step) * self.options.batch_size / max(time.perf_counter() - started, 1e-9)
                bar.set_postfix({"epoch": epoch + 1, **{entries[i].name: f"{v:.3f}" for i, v in zip(active, values[1])},
                                 "img/s": f"{rate:.0f}"}, refresh=False)
        elapsed = time.perf_counter() - started
        images_per_sec = (step - first_step) * self.options.batch_size / max(elapsed, 1e-9)
        bar.set_postfix_str(f"epoch {epoch + 1} {images_per_sec:.0f} img/s", refresh=False)
        train_means = {name: (s / c if c else None) for name, s, c in zip(self.names, sums, counts)}
        self._end_epoch(epoch + 1, step, train_means, {k: float(np.mean(v)) for k, v in scalars.items()}, images_per_sec)
        return step

    def _write_step_summaries(self, step, active, losses, summary, scalars):
        """TensorBoard: the model's summaries, each active loss entry and the lr;
        collects the model's scalar values into `scalars` for metrics.csv."""
        import tensorflow.compat.v1 as tf

        values = [tf.Summary.Value(tag=f"loss/{self.names[i]}", simple_value=v) for i, v in zip(active, losses)]
        values.append(tf.Summary.Value(tag="lr", simple_value=self.policy(step - 1)))
        self.writer.add_summary(tf.Summary(value=values), step)
        if summary is not None:
            self.writer.add_summary(summary, step)
            for value in tf.Summary.FromString(summary).value:
                if value.WhichOneof("value") == "simple_value":
                    tag = value.tag[len("train/"):] if value.tag.startswith("train/") else value.tag
                    scalars.setdefault(tag, []).append(value.simple_value)

    # ------------------------------------------------------------------ epoch end
    def _end_epoch(self, epoch, step, train_means, scalars, images_per_sec):
        val_means = self._validate()
        row = {"epoch": epoch, "step": step}
        row.update({name: _cell(value) for name, value in train_means.items()})
        row.update({f"val_{name}": _cell(value) for name, value in val_means.items()})
        row.update({name: _cell(value) for name, value in scalars.items() if name not in row})
        row["images_per_sec"] = f"{images_per_sec:.1f}"
        row["lr"] = f"{self.policy(step - 1):.6g}"
        self.rows = [r for r in self.rows if int(r["epoch"]) != epoch] + [row]
        jobdir.write_metrics(self.paths.metrics, self.rows)
        self._write_loss_curve()
        self._write_epoch_summaries(step, val_means, images_per_sec)
        self._write_samples(epoch, step)
        self._track_best(row, step)
        self.writer.flush()

    def _validate(self):
        """Mean of each loss entry over one pass of val_db ({} without val_db)."""
        import tensorflow.compat.v1 as tf

        if self.built.val_losses is None:
            return {}
        self.session.run(self.built.val_init)
        batches = []
        while True:
            try:
                batches.append(self.session.run(self.built.val_losses))
            except tf.errors.OutOfRangeError:
                break
        means = np.mean(batches, axis=0) if batches else [None] * len(self.names)
        return dict(zip(self.names, (None if m is None else float(m) for m in means)))

    def _write_epoch_summaries(self, step, val_means, images_per_sec):
        import tensorflow.compat.v1 as tf

        values = [tf.Summary.Value(tag=f"val_loss/{name}", simple_value=value)
                  for name, value in val_means.items() if value is not None]
        values.append(tf.Summary.Value(tag="images_per_sec", simple_value=images_per_sec))
        self.writer.add_summary(tf.Summary(value=values), step)

    def _write_loss_curve(self):
        series = {}
        for column in self.rows[-1]:
            if column in self.names or column[len("val_"):] in self.names:
                xs = [int(row["epoch"]) for row in self.rows]
                ys = [float(row[column]) if row.get(column) not in (None, "") else None for row in self.rows]
                series[column] = (xs, ys)
        save_png(line_chart(series, xlabel="epoch", title="loss per epoch (train mean, val mean)"),
                 self.paths.loss_curve)

    def _write_samples(self, epoch, step):
        """samples/fakes_epochNNNN.png from the fixed vectors, and a TensorBoard image."""
        if self.built.samples is None:
            return
        vectors = self.grid_vectors.reshape(len(self.grid_vectors), 1, 1, -1)
        images = to_uint8(self.session.run(self.built.samples, {self.built.sample_input: vectors}))
        grid = make_grid(images, rows=self.grid_shape[0], cols=self.grid_shape[1])
        save_png(grid, self.paths.fakes(epoch))
        self._add_image("fakes", grid, step)

    def _write_reals_once(self):
        path = self.paths.samples / "reals.png"
        if path.exists():
            return
        x, _ = next(self.reader.batches("train_db", 64, shuffle=False, repeat=False, drop_remainder=False))
        grid = make_grid(to_uint8(x))
        save_png(grid, path)
        self._add_image("reals", grid, 0)

    def _add_image(self, tag, grid, step):
        import io

        import tensorflow.compat.v1 as tf
        from PIL import Image

        buffer = io.BytesIO()
        Image.fromarray(grid[..., 0] if grid.shape[-1] == 1 else grid).save(buffer, format="PNG")
        image = tf.Summary.Image(height=grid.shape[0], width=grid.shape[1], colorspace=grid.shape[2],
                                 encoded_image_string=buffer.getvalue())
        self.writer.add_summary(tf.Summary(value=[tf.Summary.Value(tag=tag, image=image)]), step)

    # ------------------------------------------------------------------ checkpoints
    def _save(self, step):
        prefix = str(self.paths.checkpoints / jobdir.CHECKPOINT_PREFIX)
        self.paths.checkpoints.mkdir(parents=True, exist_ok=True)
        self.last_checkpoint = self.built.saver.save(self.session, prefix, global_step=step)

    def _read_best(self):
        if self.paths.best_json.is_file():
            import json

            return json.loads(self.paths.best_json.read_text(encoding="utf-8"))["value"]
        return None

    def _track_best(self, row, step):
        """Save checkpoints/best/ when the --best-metric column of `row` improved."""
        metric = self.options.best_metric
        if not metric:
            return
        if metric not in row:
            raise TrainingError(f"--best-metric {metric!r}: not a metrics.csv column ({', '.join(row)})")
        if row[metric] == "":
            return
        value = float(row[metric])
        better = self.best_value is None or (value < self.best_value if self.options.best_mode == "min"
                                             else value > self.best_value)
        if better:
            self.paths.best.mkdir(parents=True, exist_ok=True)
            prefix = self.built.best_saver.save(self.session, str(self.paths.best / jobdir.CHECKPOINT_PREFIX),
                                                global_step=step, latest_filename="checkpoint")
            self.best_value = value
            write_json_atomic(self.paths.best_json, {"metric": metric, "mode": self.options.best_mode,
                                                            "value": value, "epoch": row["epoch"],
                                                            "step": step, "checkpoint": prefix})


def _cell(value):
    return "" if value is None else f"{value:.6g}"
