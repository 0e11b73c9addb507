"""The training loop: dataset + model file -> job directory (see ``jobdir``).

``train`` checks the options, builds the graph once into a frozen ``TrainGraph``, takes
the job folder's lock (``joblock``), writes config.json and runs the loop. One step =
one batch = one session call running the step op of the active loss entries (see
``graph.UpdateOps``); the loop fetches a dict. With several devices (``--devices``) or
workers (``cluster``) the batch is split into one train tower per device / worker, whose
gradients are averaged per entry; summaries, UPDATE_OPS (batch-norm statistics) and
sample grids come from tower 0. Epoch ends go to ``report.Reporter`` (validation,
metrics.csv row, loss curve, TensorBoard, grids, best checkpoint). Checkpoints every
``snapshot_interval`` epochs (after the epoch's report), at the end, and on Ctrl-C.
"""
import collections
import math
import os
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Optional

import numpy as np

from ..dataset_io import DatasetReader
from ..errors import ModelDefinitionError, TrainingError, os_error_reason
from ..files import usable_cores, write_json_atomic, write_text_atomic
from .. import jobdir
from . import cluster as clusters
from . import ema
from .graph import (UpdateOps, build_train_towers, build_tower, check_entries_run, facts_from_instance,
                    inference_outputs, loss_entries, mean_entries, model_facts, reuse_scope)
from .joblock import JobLock
from .model_files import load_model_class, model_run_errors, one_line, op_error_detail, resolve_network, run_error
from .report import EpochReport, Reporter, checkpoint_bytes, maybe_interrupt
from .train_options import TrainOptions, options_from_config  # noqa: F401 - the public names live here too

@dataclass(frozen=True)
class TrainResult:
    job_dir: str
    step: int
    epoch: int
    checkpoint: Optional[str]
    interrupted: bool = False
    config: Optional[dict] = None


@dataclass(frozen=True)
class Plan:
    """Step arithmetic of one run (steps count batches)."""

    steps_per_epoch: int
    total_steps: int
    snapshot_steps: int
    summary_interval: int


@dataclass(frozen=True)
class ValTower:
    init: Any          # re-initializes the one-pass val_db iterator
    losses: tuple      # one scalar per loss entry


@dataclass(frozen=True)
class Sampler:
    input: Any         # float32 N,1,1,D placeholder
    output: Any        # the inference op's images


@dataclass(frozen=True)
class WeightsInit:
    saver: Any
    checkpoint: str


@dataclass(frozen=True)
class TrainGraph:
    """Everything the loop runs, built once; `graph` is finalized."""

    graph: Any
    facts: Any                     # latent.ModelFacts (z_dim read from the built model too)
    global_step: Any
    lr_scale: Any
    train_init: Any
    entries: tuple                 # graph.LossEntry, losses averaged over the towers
    updates: Any                   # graph.UpdateOps
    summary: Any                   # merged summaries of tower 0, or None
    init: Any
    saver: Any
    best_saver: Any
    model_variables: tuple
    val: Optional[ValTower]
    sampler: Optional[Sampler]
    weights: Optional[WeightsInit]
    cluster_inputs: Optional[clusters.ClusterInputs]
    global_steps_per_batch: int = 1   # DIGITS semantics: one global step per loss entry
    ema: Any = None                   # ema.Shadows of the generator's weights, or None


def train(options, out, resume=False, dry_run=False, progress=True, step_callback=None, cluster=None):
    """Train `options.network` on `options.dataset` into job directory `out`.

    resume: continue from the newest good checkpoint of `out` (from step 0 when the job
    stopped before its first one). step_callback(step) is called after every step with
    the number of batches trained. cluster: a ``cluster.ClusterTask`` of the chief
    (worker 0): the towers run on the workers, which must run ``cluster.run_worker``.
    `options` is not changed. Returns a TrainResult; a Ctrl-C writes a checkpoint and
    returns with interrupted=True. Raises TrainingError (bad options, NaN/Inf loss, the
    job folder busy), ModelDefinitionError, DataError.
    """
    options.check()
    keep_arena_heaps()  # before the graph is built: called later, ~1,000 page faults a step remain
    maybe_interrupt("start")
    paths = jobdir.JobPaths(out)
    options = replace(options, network=str(resolve_network(options.network)),
                      seed=int(np.random.SeedSequence().entropy % (2**31)) if options.seed is None else options.seed)
    reader = DatasetReader(options.dataset)
    if "train_db" not in reader.stages or reader.count("train_db") == 0:
        raise TrainingError(f"{options.dataset}: the dataset has no train_db entries")
    _check_batch_fits(options.batch_size, reader.feature_shape)
    plan = _plan(options, reader.count("train_db"))
    model_class = load_model_class(options.network)
    options = replace(options, ema_decay=ema.job_decay(options.ema_decay, model_class, options.network))
    facts = model_facts(model_class, options.network, reader.meta)
    start_checkpoint = _resume_checkpoint(paths) if resume else None
    start_step = jobdir.checkpoint_step(start_checkpoint) or 0
    devices = [cluster.device(k) for k in range(cluster.count)] if cluster else clusters.local_devices(
        options.device_spec())
    placement = devices if len(devices) > 1 else (None,)  # one device: TensorFlow's default placement
    built = build_graph(options, reader, model_class, facts, options.seed + start_step, placement, cluster,
                        total_steps=None if dry_run else plan.total_steps)  # a dry run checks the graph only
    config = _config(options, built, plan, devices, cluster)
    if dry_run:
        import json

        print(json.dumps(config, indent=2, sort_keys=True))
        return TrainResult(str(out), start_step, start_step // plan.steps_per_epoch, start_checkpoint, config=config)
    with JobLock(paths.root):
        if not resume and (paths.config.exists() or jobdir.has_checkpoint(paths.root)):
            raise TrainingError(f"{out}: already holds a training job (use --resume, or another --out)")
        if paths.config.is_file():  # keep the first start time across resumes
            config["created"] = jobdir.read_config(out).get("created", config["created"])
        write_json_atomic(paths.config, config)
        write_text_atomic(paths.network, resolve_network(options.network).read_text(encoding="utf-8"))
        return _run(options, config, paths, reader, built, plan, start_checkpoint, progress, step_callback, cluster)


def _check_batch_fits(batch_size, feature_shape):
    """TrainingError when one batch of float32 inputs alone would not fit in the machine's
    memory (TensorFlow would abort or crash on the allocation, not fail in one line)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return
    batch_bytes = batch_size * int(np.prod(feature_shape)) * 4
    if batch_bytes > memory:
        raise TrainingError(f"--batch-size {batch_size}: one batch of {'x'.join(map(str, feature_shape))} inputs is "
                            f"{batch_bytes / 2**30:,.0f} GiB as float32, more than this machine's "
                            f"{memory / 2**30:,.0f} GiB of memory")


def _plan(options, train_count):
    steps_per_epoch = max(1, train_count // options.batch_size)
    total_steps = options.epochs * steps_per_epoch
    if options.max_steps:
        total_steps = min(total_steps, options.max_steps)
    return Plan(steps_per_epoch, total_steps, max(1, round(options.snapshot_interval * steps_per_epoch)),
                min(options.summary_interval, steps_per_epoch))


def _resume_checkpoint(paths):
    """The newest good checkpoint of the job, or None when it stopped before its first."""
    if not jobdir.checkpoint_candidates(paths.checkpoints):
        return None
    return jobdir.find_checkpoint(paths.root if paths.config.is_file() else paths.checkpoints)


def _config(options, built, plan, devices, cluster):
    config = dict(options.to_config(), model=built.facts.to_dict(), steps_per_epoch=plan.steps_per_epoch,
                  total_steps=plan.total_steps, dataset=os.path.abspath(options.dataset), devices=devices,
                  loss_entries=[entry.name for entry in built.entries],
                  created=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if cluster:
        config["cluster"] = {"worker": cluster.workers}
    return config


# ------------------------------------------------------------------------- the graph

def build_graph(options, reader, model_class, facts, data_seed, devices=(None,), cluster=None, total_steps=None):
    """The TrainGraph: data inputs, train towers (one per device), the val tower, the
    sample tower (on the EMA shadows with options.ema_decay), per-entry update ops,
    savers; finalized. total_steps: a loss entry that would never run in them is a
    TrainingError, raised as soon as the entries are built."""
    import tensorflow.compat.v1 as tf

    graph = tf.Graph()
    digits = options.digits_semantics
    with graph.as_default():
        tf.set_random_seed(options.seed)
        global_step = tf.train.get_or_create_global_step()
        lr_scale = tf.placeholder_with_default(tf.constant(1.0), [], name="lr_scale")
        inputs, train_init, cluster_inputs = _train_inputs(options, reader, devices, cluster, data_seed)
        with reuse_scope():
            before = set(tf.global_variables())
            updates_before = set(tf.get_collection(tf.GraphKeys.UPDATE_OPS))
            models, tower_entries = build_train_towers(model_class, facts, inputs, devices, facts.network,
                                                       options.solver, options.lr, digits=digits)
            if total_steps is not None:
                check_entries_run(tower_entries[0], total_steps, facts.network)
            facts = facts_from_instance(facts, models[0])
            # only tower 0's UPDATE_OPS (e.g. batch-norm moving averages) run each step
            update_ops = [op for op in tf.get_collection(tf.GraphKeys.UPDATE_OPS)
                          if op not in updates_before and op.name.startswith("train/")]
            entries = mean_entries(tower_entries)
            val = _val_tower(options, reader, model_class, facts, entries, data_seed)
            shadows = ema.Shadows(options.ema_decay) if options.ema_decay else None
            sampler = _sampler(model_class, facts, digits, shadows)
            if shadows is not None:
                train_init = _statistics_refresh(shadows, options, reader, model_class, facts, data_seed, train_init)
            model_variables = tuple(v for v in tf.global_variables() if v not in before)
        if shadows is not None and not shadows.pairs:
            raise TrainingError(f"--ema-decay {options.ema_decay}: {facts.network} has no generator tower (z input) "
                                f"reading trainable variables, so there are no weights to average")
        if options.weights:
            trained = {v.op.name for entry in tower_entries[0] for v in entry.variables}
            weights = _weights_init(options.weights, [v for v in model_variables if not ema.is_shadow(v.op.name)],
                                    trained)
        else:
            weights = None
        updates = UpdateOps(tower_entries, models, facts.network, lr_scale, global_step, update_ops, devices,
                            shared_optimizer=(options.solver, options.lr) if digits else None, ema=shadows)
        if shadows is not None:
            shadows.finish()
        summary = tf.summary.merge(models[0].summaries) if models[0].summaries else None
        built = TrainGraph(
            graph=graph, facts=facts, global_step=global_step, lr_scale=lr_scale, train_init=train_init,
            entries=tuple(entries), updates=updates, summary=summary, init=tf.global_variables_initializer(),
            # relative paths in the state files: a job directory can be moved or copied
            saver=tf.train.Saver(max_to_keep=options.keep, save_relative_paths=True),
            best_saver=tf.train.Saver(max_to_keep=1, save_relative_paths=True),
            model_variables=model_variables, val=val, sampler=sampler, weights=weights,
            cluster_inputs=cluster_inputs, global_steps_per_batch=len(entries) if digits else 1, ema=shadows,
        )
    graph.finalize()
    return built


def _train_inputs(options, reader, devices, cluster, data_seed):
    """([(x, y)] per train tower, iterator initializer, ClusterInputs or None): slices of
    one batch (local devices) or a batch dequeued from each worker's input queue."""
    import tensorflow.compat.v1 as tf

    tower_batch = clusters.tower_batch_size(options.batch_size, len(devices), "workers" if cluster else "devices")
    if cluster:
        inputs, cluster_inputs = clusters.tower_inputs(reader, cluster, tower_batch, devices)
        return inputs, tf.no_op(), cluster_inputs
    train_x, train_y, train_init = _iterator(reader, "train_db", options.batch_size, True, data_seed)
    if len(devices) == 1:
        return [(train_x, train_y)], train_init, None
    xs = tf.split(train_x, len(devices))
    ys = tf.split(train_y, len(devices)) if train_y is not None else [None] * len(devices)
    return list(zip(xs, ys)), train_init, None


def _val_tower(options, reader, model_class, facts, entries, data_seed):
    if "val_db" not in reader.stages or reader.count("val_db") == 0:
        return None
    val_batch = min(options.batch_size, reader.count("val_db"))
    val_x, val_y, val_init = _iterator(reader, "val_db", val_batch, False, data_seed)
    model = build_tower(model_class, facts, val_x, val_y, "val", ["loss"], digits=options.digits_semantics)
    val_entries = loss_entries(model.loss, facts.network, options.solver, options.lr)
    if len(val_entries) != len(entries):
        raise TrainingError(f"{facts.network}: the val tower returned a different number of loss entries")
    return ValTower(val_init, tuple(entry.loss for entry in val_entries))


def _sampler(model_class, facts, digits, shadows=None):
    """The sample tower of a generator (None for other models), built on the EMA
    `shadows` of its trainable variables when given (creating them)."""
    import contextlib

    import tensorflow.compat.v1 as tf

    if facts.inference_input != "z":
        return None
    vectors = tf.placeholder(tf.float32, [None, 1, 1, facts.vector_width], name="z")
    with shadows.scope() if shadows is not None else contextlib.nullcontext():
        inference = build_tower(model_class, facts, vectors, None, "inf", ["inference"], digits=digits).inference
    output = inference_outputs(inference, facts).get("images")
    if output is None:
        raise ModelDefinitionError(f"{facts.network}: UserModel.inference of a generator (z_dim set) returned no "
                                   f"'images' output")
    return Sampler(vectors, output)


def _statistics_refresh(shadows, options, reader, model_class, facts, data_seed, train_init):
    """Build the EMA's statistics refresh (ema.Shadows.build_refresh) on its own shuffled
    pass over train_db; returns train_init grouped with that pass's initializer."""
    import tensorflow.compat.v1 as tf

    x, y, init = _iterator(reader, "train_db", options.batch_size, True, data_seed + 1)
    shadows.build_refresh(lambda: build_tower(model_class, facts, x, y, "train_ema_statistics", ["loss"],
                                              digits=options.digits_semantics))
    return tf.group(train_init, init) if shadows.statistics else train_init


def _iterator(reader, stage, batch_size, train, seed):
    """(x float32 N,H,W,C 0..255, y or None, initializer op) of an initializable
    iterator over `stage`: shuffled and repeating when `train`, one ordered pass else."""
    import tensorflow.compat.v1 as tf

    dataset = reader.tf_dataset(stage, batch_size, shuffle=train, repeat=train, seed=seed, drop_remainder=True)
    iterator = tf.data.make_initializable_iterator(dataset)
    element = iterator.get_next()
    x, y = element if isinstance(element, tuple) else (element, None)
    return x, y, iterator.initializer


def _weights_init(source, model_variables, trained):
    """A Saver restoring every model variable whose name and shape match a variable of
    the checkpoint `source` (job dir, checkpoint dir or prefix); reports counts. A
    variable no loss entry trains (`trained`: the names of those that are) is restored
    from the source's EMA shadow when it has one: a frozen copy of a generator (an
    encoder's G) is the generator as that job infers."""
    import tensorflow.compat.v1 as tf

    prefix = jobdir.find_checkpoint(source)
    available = dict(tf.train.list_variables(prefix))
    matched, averaged = {}, 0
    for variable in model_variables:
        name, shape = variable.op.name, variable.shape.as_list()
        if name not in trained and list(available.get(ema.shadow_name(name), [None])) == shape:
            matched[ema.shadow_name(name)] = variable
            averaged += 1
        elif list(available.get(name, [None])) == shape:
            matched[name] = variable
    if not matched:
        raise TrainingError(f"--weights {source}: no variable of the model matches {prefix} by name and shape")
    restored = frozenset(variable.op.name for variable in matched.values())
    missing = collections.Counter(v.op.name.split("/")[0] for v in model_variables if v.op.name not in restored)
    unmatched = ", ".join(f"{count} under {scope}/" for scope, count in sorted(missing.items()))
    print(f"--weights: initializing {len(matched)} of {len(model_variables)} model variables from {prefix}"
          + (f" ({averaged} frozen ones from its EMA weights)" if averaged else "")
          + (f"; not matched (they start fresh): {unmatched}" if missing else ""), file=sys.stderr)
    return WeightsInit(tf.train.Saver(var_list=matched), prefix)


# ------------------------------------------------------------------------- the run

def _run(options, config, paths, reader, built, plan, start_checkpoint, progress, step_callback, cluster):
    """Open the session (local or the cluster chief's), restore, loop."""
    import tensorflow.compat.v1 as tf

    threads = options.threads or usable_cores()
    opener = clusters.ChiefSession(cluster, built, reader, options, threads) if cluster else _local_session(
        built.graph, threads, xla_wanted(options.xla))
    with opener as session:
        _restore(session, built, paths, start_checkpoint)
        writer = tf.summary.FileWriter(str(paths.events), built.graph if not start_checkpoint else None)
        lost_worker = opener.lost_worker_errors() if cluster else ()
        try:
            reporter = Reporter(session, built, options, paths, plan, reader, writer)
            loop = _Loop(session, built, options, paths, plan, reporter, start_checkpoint, progress, step_callback)
            result = loop.run()
        except lost_worker as error:
            raise opener.lost(error, loop.step, loop.last_checkpoint) from None
        finally:
            writer.close()
    return replace(result, config=config)


M_TOP_PAD, M_MMAP_THRESHOLD = -2, -3  # glibc's mallopt parameters (malloc.h)


def keep_arena_heaps():
    """Make glibc malloc keep a thread's arena heaps once they empty; True when it did.

    TensorFlow's pool threads allocate and free each step's large temporaries in their own
    malloc arenas, whose 64 MiB heaps glibc unmaps as soon as they are empty and maps again
    on the next step: a page fault per 4 KiB touched (network-celebA, 1 thread: ~42,000 per
    step, 90 ms of system time; network-mnist ~1,800). A top pad of one whole heap keeps
    them; it also freezes glibc's dynamic mmap threshold, so that is pinned at the 32 MiB
    glibc's own adjustment stops at. Memory freed stays with the process (its peak RSS).
    Without glibc (macOS, musl) nothing changes."""
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_TOP_PAD, 64 << 20)) and bool(mallopt(M_MMAP_THRESHOLD, 32 << 20))


def xla_wanted(setting):
    """Whether --xla SETTING ('on', 'off', 'auto') turns XLA auto-clustering on. auto: on
    with a GPU, off on CPUs, where clustering our graphs measured 2-3x slower steps than
    TensorFlow's oneDNN kernels (BENCHMARKS.md, training throughput)."""
    if setting != "auto":
        return setting == "on"
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


def _local_session(graph, threads, xla=False):
    """A plain tf.Session over `threads` cores (a context manager making `graph` the
    default); xla: XLA auto-clustering of the graph (on CPU too: runtime/__init__.py
    lets it cluster CPU ops)."""
    import tensorflow.compat.v1 as tf

    config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads,
                            allow_soft_placement=True)  # CPU-only ops inside a GPU tower
    if xla:
        config.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
    return tf.Session(graph=graph, config=config)


def _restore(session, built, paths, start_checkpoint):
    import tensorflow.compat.v1 as tf

    session.run(built.init)
    restored = ()
    if start_checkpoint:
        saver = built.saver
        if built.ema is not None:
            restored = ema.checkpoint_names(start_checkpoint)
            # EMA switched on for a job that ran without it, or a checkpoint from before
            # the statistics shadows: restore what it has, start the rest
            saver = built.ema.restore_saver(restored) or saver
        saver.restore(session, start_checkpoint)
        # so that --keep also prunes the checkpoints of earlier runs
        state = tf.train.get_checkpoint_state(str(paths.checkpoints))
        if state is not None:
            built.saver.recover_last_checkpoints(list(state.all_model_checkpoint_paths))
    elif built.weights:
        built.weights.saver.restore(session, built.weights.checkpoint)
    if built.ema is not None:
        built.ema.start(session, restored)
    session.run(built.train_init)


class _Loop:
    """Steps and checkpoints; epoch ends go to the Reporter."""

    def __init__(self, session, built, options, paths, plan, reporter, start_checkpoint, progress, step_callback):
        from tqdm import tqdm

        self.session, self.built, self.options, self.paths, self.plan = session, built, options, paths, plan
        self.reporter, self.step_callback = reporter, step_callback
        self.last_checkpoint = start_checkpoint
        self.statistics_step = None
        self.step = int(session.run(built.global_step)) // built.global_steps_per_batch
        self.feed_lr = options.lr_policy != "fixed"
        self.policy = options.lr_policy_for(plan.total_steps)
        self.bar = tqdm(total=plan.total_steps, initial=self.step, unit="step", dynamic_ncols=True,
                        disable=not progress or not sys.stderr.isatty())

    def run(self):
        try:
            self.reporter.write_reals_once()
            self.reporter.complete_interrupted_epoch(self.step)
            while self.step < self.plan.total_steps:
                self._epoch()
            if self.last_checkpoint is None or jobdir.checkpoint_step(self.last_checkpoint) != self.step:
                self._save()
        except KeyboardInterrupt:
            self.step = int(self.session.run(self.built.global_step)) // self.built.global_steps_per_batch
            self._save()
            self.bar.close()
            print(f"interrupted at step {self.step} (epoch {self.step // self.plan.steps_per_epoch + 1}); "
                  f"checkpoint {self.last_checkpoint} written; continue with --resume", file=sys.stderr)
            return self._result(interrupted=True)
        finally:
            self.bar.close()
        return self._result()

    def _result(self, interrupted=False):
        return TrainResult(str(self.paths.root), self.step, self.step // self.plan.steps_per_epoch,
                           self.last_checkpoint, interrupted)

    def _epoch(self):
        epoch = self.step // self.plan.steps_per_epoch
        epoch_end = min((epoch + 1) * self.plan.steps_per_epoch, self.plan.total_steps)
        sums = collections.defaultdict(float)
        counts = collections.Counter()
        scalars = collections.defaultdict(list)
        started, first_step = time.perf_counter(), self.step
        while self.step < epoch_end:
            losses = self._step(epoch, scalars)
            for name, value in losses.items():
                sums[name] += value
                counts[name] += 1
            if self.step % self.plan.snapshot_steps == 0 and self.step != epoch_end:
                self._save()
            rate = (self.step - first_step) * self.options.batch_size / max(time.perf_counter() - started, 1e-9)
            if self.step % 10 == 0 or self.step == epoch_end:
                self.bar.set_postfix({"epoch": epoch + 1, **{k: f"{v:.3f}" for k, v in losses.items()},
                                      "img/s": f"{rate:.0f}"}, refresh=False)
        self._refresh_statistics()
        self.reporter.end_epoch(EpochReport(
            epoch=epoch + 1, step=self.step, train_means={e.name: (sums[e.name] / counts[e.name]
                                                                   if counts[e.name] else None)
                                                          for e in self.built.entries},
            scalars={name: float(np.mean(values)) for name, values in scalars.items()},
            images_per_sec=rate, lr=self.policy(self.step - 1)))
        if self.step % self.plan.snapshot_steps == 0 or self.step == self.plan.total_steps:
            self._save()

    def _step(self, epoch, scalars):
        """Run one batch; returns {entry name: loss} of the active entries."""
        built, step = self.built, self.step
        active, op = built.updates.op_at(step)
        fetches = {"step": op, "losses": {built.entries[i].name: built.entries[i].loss for i in active}}
        summarize = (step + 1) % self.plan.summary_interval == 0
        if summarize and built.summary is not None:
            fetches["summary"] = built.summary
        feed = {built.lr_scale: self.policy.factor(step)} if self.feed_lr else None
        try:
            values = self.session.run(fetches, feed_dict=feed)
        except model_run_errors() as error:
            raise run_error(error, self.built.facts.network, f"running step {step} (epoch {epoch + 1})",
                            self.built.graph) from None
        for name, value in values["losses"].items():
            if not math.isfinite(value):
                raise TrainingError(f"loss entry {name!r} is {value} at step {step} (epoch {epoch + 1}); "
                                    f"training stopped, last good checkpoint kept: {self.last_checkpoint or 'none'}")
        if summarize:
            self.reporter.step_summaries(step + 1, values["losses"], values.get("summary"), scalars)
        self.step += 1
        maybe_interrupt(self.step)
        if self.step_callback:
            self.step_callback(self.step)
        self.bar.update(1)
        return values["losses"]

    def _refresh_statistics(self):
        """Re-estimate the EMA generator's batch-norm statistics (ema.Shadows.refresh),
        once per step reached, before the grids and checkpoints that use them."""
        if self.built.ema is None or self.statistics_step == self.step:
            return
        try:
            self.built.ema.refresh(self.session)
        except model_run_errors() as error:
            raise run_error(error, self.built.facts.network, f"re-estimating the EMA generator's statistics at "
                            f"step {self.step}", self.built.graph) from None
        self.statistics_step = self.step

    def _save(self):
        """Checkpoint the current step; a failed write (full disk) is one TrainingError
        and leaves the previous checkpoint the newest."""
        import tensorflow.compat.v1 as tf

        self._refresh_statistics()
        try:
            self.paths.checkpoints.mkdir(parents=True, exist_ok=True)
            self.last_checkpoint = self.built.saver.save(self.session, str(self.paths.checkpoint_prefix),
                                                         global_step=self.step)
        except (OSError, tf.errors.OpError) as error:
            for partial in self.paths.checkpoints.glob(f"{self.paths.checkpoint_prefix.name}-{self.step}.*"):
                partial.unlink(missing_ok=True)  # the files this save got written before it failed
            detail = op_error_detail(error, 200) if isinstance(error, tf.errors.OpError) else os_error_reason(error)
            raise TrainingError(f"{self.paths.checkpoints}: cannot write the step-{self.step} checkpoint "
                                f"({one_line(detail, 200)}); previous checkpoint kept: "
                                f"{self.last_checkpoint or 'none'}") from None


def describe_checkpoints(result, keep):
    """'checkpoint X (N MB; K kept, M MB)' for the final log line."""
    if not result.checkpoint:
        return "no checkpoint"
    size = checkpoint_bytes(result.checkpoint)
    return (f"checkpoint {result.checkpoint} ({size / 1e6:.1f} MB each with optimizer slots; "
            f"--keep {keep}: at most {keep * size / 1e6:.1f} MB)")
