"""Training throughput of network-mnist.py and network-celebA.py: ours vs the strongest references.

Sides, each in its own worker process, all training the same G and D (batch 64, the same
TensorFlow thread count, oneDNN on, synthetic data, one D update and one G update per step):
- ours:         `digits-gan train` (runtime.trainer.train) on a synthetic dataset in
                DIGITS layout, its whole loop timed (summaries every 50 steps included);
- tutorial:     the TensorFlow DCGAN tutorial's step: one tf.function, G run once, both
                tapes, Keras 3 layers, no XLA, a tf.data pipeline from memory;
- tutorial-xla: the same step with jit_compile=True;
- graph-v1:     a plain tf.compat.v1 graph of the network file's own UserModel (the same
                ops as ours), two AdamOptimizers, one session.run per step;
- keras-fit:    Keras 3 `fit` with a train_step computing both tapes (G once), no XLA;
- peak:         the machine's measured ceiling: a 2048^3 matmul and a 5x5 convolution,
                forward + both gradients (graph mode, float32).
Every worker starts, builds and warms up first; then rounds interleave one timed window
per side (ours, tutorial, ..., peak, ours, ...), the other workers idle meanwhile. Per
window the driver records the 1-minute load average at its start and the CPU time other
processes used during it (cores busy outside the timed worker), and the worker its minor
page faults per step (memory handed back to the system and mapped again). Reported: the median
and the spread (min-max) over rounds, the ratio of ours to the *best* reference per
model, and GFLOP/s against the peak. GFLOP/s counts 3 x the forward conv/matmul FLOPs
of G + D(real) + D(fake) per image, for every side alike.

    python benchmarks/train_throughput.py                  # full run (~7 min on 2 idle cores, 15 loaded)
    python benchmarks/train_throughput.py --quick          # smoke run (a few steps per side)
    python benchmarks/train_throughput.py --json out.json  # also write every window's figures
    python benchmarks/train_throughput.py --gpu --markdown gpu_throughput.md
        # GPU machine: ours --xla off / on, the Keras sides in float32 and mixed_float16
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BATCH = 64
Z_DIM = 100
MODELS = {
    # name: (network file, image shape H,W,C, classes (conditional) or 0, steps in ours' dataset)
    "mnist": ("network-mnist", (28, 28, 1), 10, 1200),
    "celebA": ("network-celebA", (64, 64, 3), 0, 240),
}
REFERENCES = ("tutorial", "tutorial-xla", "graph-v1", "keras-fit")
SIDES = ("ours",) + REFERENCES


# --------------------------------------------------------------------------- FLOPs
def conv_macs(out_h, out_w, kernel, c_in, c_out):
    return out_h * out_w * kernel * kernel * c_in * c_out


def deconv_macs(in_h, in_w, kernel, c_in, c_out):
    """A stride-2 transposed convolution multiplies each input pixel by the kernel."""
    return in_h * in_w * kernel * kernel * c_in * c_out


def forward_macs(model):
    """(G MACs, D MACs) of one image's forward pass, as the network files build them."""
    if model == "mnist":
        y = 10
        g = ((Z_DIM + y) * 1024 + (1024 + y) * 7 * 7 * 128
             + deconv_macs(7, 7, 5, 128 + y, 64) + deconv_macs(14, 14, 5, 64 + y, 1))
        d = (conv_macs(14, 14, 5, 1 + y, 1 + y) + conv_macs(7, 7, 5, 1 + y + y, 64 + y)
             + (7 * 7 * (64 + y) + y) * 1024 + (1024 + y))
        return g, d
    g = (Z_DIM * 4 * 4 * 512 + deconv_macs(4, 4, 5, 512, 256) + deconv_macs(8, 8, 5, 256, 128)
         + deconv_macs(16, 16, 5, 128, 64) + deconv_macs(32, 32, 5, 64, 3))
    d = (conv_macs(32, 32, 5, 3, 64) + conv_macs(16, 16, 5, 64, 128) + conv_macs(8, 8, 5, 128, 256)
         + conv_macs(4, 4, 5, 256, 512) + 4 * 4 * 512)
    return g, d


def step_flops_per_image(model):
    g, d = forward_macs(model)
    return 3 * 2 * (g + 2 * d)


# --------------------------------------------------------------------------- windows
class Windows:
    """Timed windows run from inside a side's own step loop (`after_step` after every
    step). After `warmup` steps the worker prints READY and waits on stdin; each line
    'SECONDS' times steps until SECONDS have passed (at least one step) and prints
    RESULT {steps, seconds, cpu}; 'quit' (or end of input) ends the process."""

    def __init__(self, warmup, sync=None):
        self.warmup, self.sync = warmup, sync or (lambda: None)
        self.steps, self.started, self.seconds = 0, None, None

    def after_step(self):
        self.steps += 1
        if self.started is None:
            if self.steps >= self.warmup:
                self._answer("READY", {})
                self._next()
            return
        elapsed = time.perf_counter() - self.started
        if elapsed >= self.seconds:
            self.sync()
            elapsed = time.perf_counter() - self.started
            self._answer("RESULT", {"steps": self.steps - self.first, "seconds": elapsed,
                                    "cpu": time.process_time() - self.cpu, "faults": minor_faults() - self.faults})
            self._next()

    def _next(self):
        words = sys.stdin.readline().split()
        if not words or words[0] == "quit":
            sys.stdout.flush()
            os._exit(0)
        self.seconds = float(words[0])
        self.sync()
        self.first, self.faults = self.steps, minor_faults()
        self.cpu, self.started = time.process_time(), time.perf_counter()

    @staticmethod
    def _answer(kind, payload):
        sys.stdout.write(f"{kind} {json.dumps(payload)}\n")
        sys.stdout.flush()


def minor_faults():
    """Page faults this process has taken that needed no disk read (a page mapped afresh)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def set_threads(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def synthetic_arrays(model, count):
    """uint8 images N,H,W,C and int64 labels (0 without classes), seeded."""
    _, shape, classes, _ = MODELS[model]
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (count,) + shape, dtype=np.uint8), rng.integers(0, max(classes, 1), count)


def memory_dataset(model):
    """The references' input: in-memory arrays, shuffled, repeated, batched, prefetched."""
    import tensorflow as tf

    x, labels = synthetic_arrays(model, BATCH * 32)
    return (tf.data.Dataset.from_tensor_slices((x, labels)).shuffle(len(x), seed=0).repeat()
            .batch(BATCH, drop_remainder=True).prefetch(tf.data.AUTOTUNE))


# --------------------------------------------------------------------------- sides
def run_ours(args):
    from digits_gan_plugin.runtime.trainer import TrainOptions, train

    windows = Windows(args.warmup)
    with tempfile.TemporaryDirectory(prefix="throughput-job-") as tmp:
        options = TrainOptions(dataset=args.dataset, network=MODELS[args.model][0], epochs=1, batch_size=BATCH,
                               seed=0, threads=args.threads, snapshot_interval=1000.0, xla=args.xla)
        train(options, os.path.join(tmp, "job"), progress=False, step_callback=lambda step: windows.after_step())
    raise SystemExit(f"ours: the dataset's {MODELS[args.model][3]} steps ran out before the driver said quit")


def keras_networks(model):
    """(generator, discriminator) keras.Model pairs with the network files' layers."""
    import keras
    from keras import layers

    init = keras.initializers.RandomNormal(stddev=0.02)

    def dense(units):
        return layers.Dense(units, kernel_initializer=init)

    def conv(filters):
        return layers.Conv2D(filters, 5, strides=2, padding="same", kernel_initializer=init)

    def deconv(filters):
        return layers.Conv2DTranspose(filters, 5, strides=2, padding="same", kernel_initializer=init)

    def bn():
        return layers.BatchNormalization(momentum=0.9, epsilon=1e-5)

    lrelu = layers.LeakyReLU(0.2)
    _, (height, width, channels), classes, _ = MODELS[model]
    if model == "mnist":
        def concat(h, y):
            if len(h.shape) == 2:
                return layers.Concatenate()([h, y])
            tiled = layers.UpSampling2D((h.shape[1], h.shape[2]))(layers.Reshape((1, 1, classes))(y))
            return layers.Concatenate()([h, tiled])

        z_in, y_in = keras.Input((Z_DIM,)), keras.Input((classes,))
        h = layers.ReLU()(bn()(dense(1024)(concat(z_in, y_in))))
        h = layers.ReLU()(bn()(dense(7 * 7 * 128)(concat(h, y_in))))
        h = layers.Reshape((7, 7, 128))(h)
        h = layers.ReLU()(bn()(deconv(64)(concat(h, y_in))))
        out = layers.Activation("sigmoid")(deconv(channels)(concat(h, y_in)))
        generator = keras.Model([z_in, y_in], out)
        x_in, yd_in = keras.Input((height, width, channels)), keras.Input((classes,))
        h = lrelu(conv(channels + classes)(concat(x_in, yd_in)))
        h = lrelu(bn()(conv(64 + classes)(concat(h, yd_in))))
        h = lrelu(bn()(dense(1024)(concat(layers.Flatten()(h), yd_in))))
        discriminator = keras.Model([x_in, yd_in], dense(1)(concat(h, yd_in)))
        return generator, discriminator
    z_in = keras.Input((Z_DIM,))
    h = layers.ReLU()(bn()(layers.Reshape((4, 4, 512))(dense(4 * 4 * 512)(z_in))))
    for filters in (256, 128, 64):
        h = layers.ReLU()(bn()(deconv(filters)(h)))
    generator = keras.Model(z_in, layers.Activation("tanh")(deconv(channels)(h)))
    x_in = keras.Input((height, width, channels))
    h = lrelu(conv(64)(x_in))
    for filters in (128, 256, 512):
        h = lrelu(bn()(conv(filters)(h)))
    discriminator = keras.Model(x_in, dense(1)(layers.Flatten()(h)))
    return generator, discriminator


def keras_gan_step(model, generator, discriminator, mixed=False):
    """(step(x, labels), d_optimizer, g_optimizer): the DCGAN-tutorial step (G once, both
    tapes, D and G updated from the same forward pass) for `model`'s networks.
    mixed: float16 compute with Keras' loss-scale optimizers (GPU mode)."""
    import keras
    import tensorflow as tf

    _, _, classes, _ = MODELS[model]
    real_label = 0.9 if classes else 1.0
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
    if mixed:
        d_optimizer = keras.mixed_precision.LossScaleOptimizer(d_optimizer)
        g_optimizer = keras.mixed_precision.LossScaleOptimizer(g_optimizer)

    def step(x, labels):
        real = tf.cast(x, tf.float32) / 255.0 if classes else tf.cast(x, tf.float32) / 127.5 - 1.0
        y = tf.one_hot(labels, classes) if classes else None
        z = tf.random.uniform([tf.shape(real)[0], Z_DIM], -1.0, 1.0)
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = generator([z, y] if classes else z, training=True)
            d_real = discriminator([real, y] if classes else real, training=True)
            d_fake = discriminator([fake, y] if classes else fake, training=True)
            d_real, d_fake = tf.cast(d_real, tf.float32), tf.cast(d_fake, tf.float32)
            d_loss = (cross_entropy(tf.fill(tf.shape(d_real), real_label), d_real)
                      + cross_entropy(tf.zeros_like(d_fake), d_fake))
            g_loss = cross_entropy(tf.ones_like(d_fake), d_fake)
            if mixed:
                d_scaled, g_scaled = d_optimizer.scale_loss(d_loss), g_optimizer.scale_loss(g_loss)
            else:
                d_scaled, g_scaled = d_loss, g_loss
        d_grads = d_tape.gradient(d_scaled, discriminator.trainable_weights)
        g_grads = g_tape.gradient(g_scaled, generator.trainable_weights)
        d_optimizer.apply_gradients(zip(d_grads, discriminator.trainable_weights))
        g_optimizer.apply_gradients(zip(g_grads, generator.trainable_weights))
        return {"d_loss": d_loss, "g_loss": g_loss}

    return step, d_optimizer, g_optimizer


def run_tutorial(args):
    import keras
    import tensorflow as tf

    set_threads(args.threads)
    if args.mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    generator, discriminator = keras_networks(args.model)
    step, d_optimizer, _ = keras_gan_step(args.model, generator, discriminator, args.mixed)
    train_step = tf.function(step, jit_compile=args.side == "tutorial-xla")
    windows = Windows(args.warmup, sync=lambda: d_optimizer.iterations.numpy())
    for x, labels in memory_dataset(args.model):
        train_step(x, labels)
        windows.after_step()


def run_keras_fit(args):
    import keras

    set_threads(args.threads)
    if args.mixed:
        keras.mixed_precision.set_global_policy("mixed_float16")
    generator, discriminator = keras_networks(args.model)
    step, d_optimizer, _ = keras_gan_step(args.model, generator, discriminator, args.mixed)
    windows = Windows(args.warmup, sync=lambda: d_optimizer.iterations.numpy())

    class GAN(keras.Model):
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = generator, discriminator

        def train_step(self, data):
            return step(*data)

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            windows.after_step()

    gan = GAN()
    gan.compile(jit_compile=False)
    gan.fit(memory_dataset(args.model), steps_per_epoch=10**9, epochs=1, verbose=0, callbacks=[Timer()])


def run_graph_v1(args):
    """The network file's UserModel in a plain graph: its two loss entries minimized by
    one AdamOptimizer each, both gradients taken before either update (as ours)."""
    import tensorflow.compat.v1 as tf

    from digits_gan_plugin.runtime.model_files import load_model_class, resolve_network

    network, shape, classes, _ = MODELS[args.model]
    model_class = load_model_class(resolve_network(network))
    with tf.Graph().as_default():
        tf.set_random_seed(0)
        x, labels = tf.data.make_one_shot_iterator(memory_dataset(args.model)).get_next()
        y = labels if classes else tf.ones([BATCH, 1, 1, 40])
        model = model_class(tf.cast(x, tf.float32), y, list(shape), classes or 40, is_training=True,
                            is_inference=False)
        entries = model.loss
        pairs = []
        for entry in entries:
            optimizer = tf.train.AdamOptimizer(entry["learning_rate"], **entry["solver_args"])
            pairs.append((optimizer, optimizer.compute_gradients(entry["loss"], var_list=entry["vars"])))
        with tf.control_dependencies([g for _, grads in pairs for g, _ in grads]):
            train_op = tf.group(*[optimizer.apply_gradients(grads) for optimizer, grads in pairs])
        config = tf.ConfigProto(intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=args.threads)
        with tf.Session(config=config) as session:
            session.run(tf.global_variables_initializer())
            windows = Windows(args.warmup)
            while True:
                session.run(train_op)
                windows.after_step()


def peak_kernels(quick):
    """{name: (fetches, FLOPs per run)} of the ceiling's kernels in the default graph:
    a square matmul and a 5x5 'SAME' convolution, each forward + both gradients."""
    import tensorflow.compat.v1 as tf

    size = 512 if quick else 2048
    a = tf.Variable(tf.random.normal([size, size]))
    b = tf.Variable(tf.random.normal([size, size]))
    product = tf.matmul(a, b)
    batch, side, channels = (8, 16, 64) if quick else (32, 16, 256)
    images = tf.Variable(tf.random.normal([batch, side, side, channels]))
    kernel = tf.Variable(tf.random.normal([5, 5, channels, channels], stddev=0.05))
    convolved = tf.nn.conv2d(images, kernel, strides=1, padding="SAME")
    kernels = {}
    for name, output, inputs, macs in (("matmul", product, [a, b], size ** 3),
                                       ("conv", convolved, [images, kernel],
                                        batch * conv_macs(side, side, 5, channels, channels))):
        # the gradient ops themselves: a tf.group of them gets pruned away
        kernels[name] = ([grad.op for grad in tf.gradients(tf.reduce_sum(output * output), inputs)] + [output.op],
                         3 * 2 * macs)
    return kernels


def run_peak(args):
    """Each window: the matmul for half the time, then the conv; GFLOP/s of each."""
    import tensorflow.compat.v1 as tf

    config = tf.ConfigProto(intra_op_parallelism_threads=args.threads, inter_op_parallelism_threads=args.threads)
    with tf.Graph().as_default(), tf.Session(config=config) as session:
        kernels = peak_kernels(args.quick)
        session.run(tf.global_variables_initializer())
        for fetches, _ in kernels.values():
            for _ in range(args.warmup):
                session.run(fetches)
        Windows._answer("READY", {})
        for line in sys.stdin:
            if line.split()[0] == "quit":
                return
            seconds = float(line) / len(kernels)
            started, cpu, faults, result = time.perf_counter(), time.process_time(), minor_faults(), {}
            for name, (fetches, flops) in kernels.items():
                begin, runs = time.perf_counter(), 0
                while runs == 0 or time.perf_counter() - begin < seconds:
                    session.run(fetches)
                    runs += 1
                result[name + "_gflops"] = flops * runs / (time.perf_counter() - begin) / 1e9
            result.update(steps=0, seconds=time.perf_counter() - started, cpu=time.process_time() - cpu,
                          faults=minor_faults() - faults)
            Windows._answer("RESULT", result)


WORKERS = {"ours": run_ours, "tutorial": run_tutorial, "tutorial-xla": run_tutorial, "graph-v1": run_graph_v1,
           "keras-fit": run_keras_fit, "peak": run_peak}


# --------------------------------------------------------------------------- driver
@dataclass(frozen=True)
class Variant:
    """One worker's settings: a side, ours' --xla, float16 compute (Keras sides)."""

    side: str
    xla: str = "auto"
    mixed: bool = False

    @property
    def label(self):
        return self.side + (f" --xla {self.xla}" if self.side == "ours" and self.xla != "auto" else "") + (
            " mixed" if self.mixed else "")


def variants(args):
    """The workers to time, in round order."""
    if not args.gpu:
        return [Variant(side, xla=args.xla) for side in args.sides]
    found = []
    for side in args.sides:
        if side == "ours":
            found += [Variant(side, xla="off"), Variant(side, xla="on")]
        elif side == "graph-v1":  # the network file's own float32 ops
            found.append(Variant(side))
        else:
            found += [Variant(side), Variant(side, mixed=True)]
    return found


def busy_seconds():
    """CPU seconds the whole machine has spent busy (all cores, /proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(value) for value in handle.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Worker:
    """One side's worker process, driven over its stdin/stdout."""

    def __init__(self, variant, model, args, dataset, scratch):
        """scratch: the driver's temporary folder, the worker's TMPDIR. Workers end with
        os._exit (no clean-up of their own: their job folders, autograph's generated
        files), so all they write there goes when the driver removes that folder."""
        self.side, self.model = variant.label, model
        command = [sys.executable, os.path.abspath(__file__), "--worker", variant.side, "--model", model,
                   "--threads", str(args.threads), "--warmup", str(args.warmup), "--dataset", dataset,
                   "--xla", variant.xla] + (["--quick"] if args.quick else []) + (["--mixed"] if variant.mixed else [])
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="1", PYTHONUNBUFFERED="1",
                   TMPDIR=scratch)
        self.log = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                        text=True, env=env, cwd=REPO)

    def _read(self, kind):
        for line in self.process.stdout:
            if line.startswith(kind + " "):
                return json.loads(line[len(kind) + 1:])
        self.log.seek(0)
        sys.stderr.write(self.log.read()[-4000:])
        raise SystemExit(f"train_throughput: the {self.side} worker for {self.model} failed "
                         f"(exit {self.process.wait()})")

    def ready(self):
        return self._read("READY")

    def window(self, seconds):
        self.process.stdin.write(f"{seconds}\n")
        self.process.stdin.flush()
        return self._read("RESULT")

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.write("quit\n")
                self.process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self.log.close()


def write_ours_dataset(model, out, steps):
    """The synthetic DIGITS-layout dataset ours reads (`steps` batches: one epoch)."""
    from digits_gan_plugin.data_plugins.synthetic import DataIngestion
    from digits_gan_plugin.dataset_io import write_dataset

    _, (height, _, channels), classes, _ = MODELS[model]
    labels = {"classes": classes} if classes else {"attributes": 40}
    write_dataset(DataIngestion(size=height, channels=channels, train_count=BATCH * steps, val_count=0, **labels),
                  out, progress=False)


def measure(model, args, tmp):
    """{side: [window dict, ...]} for `model`: start every worker, then interleave."""
    dataset = os.path.join(tmp, model)
    if "ours" in args.sides:
        write_ours_dataset(model, dataset, args.warmup + 8 if args.quick else MODELS[model][3])
    workers = {variant.label: Worker(variant, model, args, dataset, tmp)
               for variant in variants(args) + [Variant("peak")]}
    try:
        for worker in workers.values():
            worker.ready()
        windows = {side: [] for side in workers}
        for _ in range(args.rounds):
            for side, worker in workers.items():
                load, busy = os.getloadavg()[0], busy_seconds()
                result = worker.window(args.window * (0.5 if side == "peak" else 1.0))
                others = max(0.0, busy_seconds() - busy - result["cpu"]) / result["seconds"]
                windows[side].append(dict(result, load=load, other_cores=others,
                                          images_per_sec=BATCH * result["steps"] / result["seconds"],
                                          cpu_ms_per_step=1000 * result["cpu"] / max(result["steps"], 1),
                                          faults_per_step=result["faults"] / max(result["steps"], 1)))
        return windows
    finally:
        for worker in workers.values():
            worker.close()


def spread(values):
    return statistics.median(values), min(values), max(values)


def round_ratios(windows, ours, references):
    """Ours over the best reference of the same round, per round: the windows of one round
    run back to back, so a slow drift of the machine moves both sides of a ratio alike."""
    if not ours or not references:
        return []
    rounds = zip(windows[ours], *(windows[side] for side in references))
    return [mine["images_per_sec"] / max(other["images_per_sec"] for other in others)
            for mine, *others in rounds]


def summarize(model, windows):
    """The model's table rows (dicts) and ratio of ours to the best reference."""
    flops = step_flops_per_image(model) / 1e9
    peaks = windows["peak"]
    peak = statistics.median(max(w["matmul_gflops"], w["conv_gflops"]) for w in peaks)
    rows = []
    for side, results in windows.items():
        if side == "peak":
            continue
        median, low, high = spread([w["images_per_sec"] for w in results])
        rows.append({"side": side, "median": median, "low": low, "high": high, "gflops": median * flops,
                     "of_peak": median * flops / peak, "load": max(w["load"] for w in results),
                     "cpu_ms": statistics.median(w["cpu_ms_per_step"] for w in results),
                     "faults": statistics.median(w["faults_per_step"] for w in results),
                     "other_cores": statistics.median(w["other_cores"] for w in results)})
    medians = {row["side"]: row["median"] for row in rows}
    references = {side: value for side, value in medians.items() if not side.startswith("ours")}
    best = max(references, key=references.get) if references else None
    ours = max((side for side in medians if side.startswith("ours")), key=medians.get, default=None)
    ratio = medians[ours] / references[best] if best and ours else None
    return {"model": model, "rows": rows, "best_reference": best, "ratio": ratio,
            "round_ratios": round_ratios(windows, ours, references), "peak_gflops": peak,
            "matmul_gflops": statistics.median(w["matmul_gflops"] for w in peaks),
            "conv_gflops": statistics.median(w["conv_gflops"] for w in peaks), "flops_per_image": flops * 1e9}


def markdown(summaries, args, start_load):
    lines = [f"batch {BATCH}, {args.threads} threads, {args.rounds} rounds x {args.window:g} s windows, "
             f"warm-up {args.warmup} steps, {'GPU mode' if args.gpu else f'ours --xla {args.xla}'}; "
             f"1-minute load at the start {start_load:.2f}", ""]
    for summary in summaries:
        lines += [f"{summary['model']}: {summary['flops_per_image'] / 1e9:.3f} GFLOP per image-step; peak "
                  f"{summary['peak_gflops']:.0f} GFLOP/s (matmul {summary['matmul_gflops']:.0f}, "
                  f"conv {summary['conv_gflops']:.0f}); ours / best reference ({summary['best_reference']}) = "
                  + (f"**{summary['ratio']:.3f}** (target >= 1.0: {'met' if summary['ratio'] >= 1.0 else 'not met'})"
                     if summary["ratio"] is not None else "n/a")
                  + (" (per round, ours / that round's best reference: median {:.3f}, {:.3f}-{:.3f})".format(
                      *spread(summary["round_ratios"])) if summary["round_ratios"] else ""), "",
                  "| side | img/s median | min-max | CPU ms/step | page faults/step | GFLOP/s | of peak "
                  "| max load at start | other cores busy |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for row in summary["rows"]:
            lines.append(f"| {row['side']} | {row['median']:.1f} | {row['low']:.1f}-{row['high']:.1f} | "
                         f"{row['cpu_ms']:.0f} | {row['faults']:.0f} | {row['gflops']:.1f} | {row['of_peak']:.0%} | "
                         f"{row['load']:.2f} | "
                         f"{row['other_cores']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: one short round, small peak kernels")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="TensorFlow intra/inter-op threads of every side (default: all cores)")
    parser.add_argument("--warmup", type=int, help="untimed steps per worker (default 10, quick 1)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 4, quick 1)")
    parser.add_argument("--window", type=float, help="seconds per timed window (default 5, quick 0.1)")
    parser.add_argument("--models", default="mnist,celebA", help="comma-separated subset of mnist,celebA")
    parser.add_argument("--sides", default=",".join(SIDES), help=f"comma-separated subset of {','.join(SIDES)}")
    parser.add_argument("--xla", default="auto", choices=("auto", "on", "off"), help="ours' --xla option")
    parser.add_argument("--gpu", action="store_true",
                        help="GPU mode: ours with --xla off and on; the Keras sides in float32 and mixed_float16")
    parser.add_argument("--mixed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the summaries and every window's figures to this file")
    parser.add_argument("--markdown", help="also write the tables (Markdown) to this file")
    parser.add_argument("--worker", choices=tuple(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--side", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=tuple(MODELS), help=argparse.SUPPRESS)
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.warmup = args.warmup or (1 if args.quick else 10)
    args.rounds = args.rounds or (1 if args.quick else 4)
    args.window = args.window or (0.1 if args.quick else 5.0)
    args.sides = tuple(side.strip() for side in args.sides.split(",") if side.strip())
    unknown = [side for side in args.sides if side not in SIDES]
    if unknown or not args.sides:
        parser.error(f"--sides: expected a subset of {','.join(SIDES)}, got {','.join(unknown) or 'none'}")
    args.models = tuple(model.strip() for model in args.models.split(","))
    if any(model not in MODELS for model in args.models):
        parser.error(f"--models: expected a subset of {','.join(MODELS)}")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        args.side = args.worker
        WORKERS[args.worker](args)
        return 0
    start_load = os.getloadavg()[0]
    summaries, raw = [], {}
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        for model in args.models:
            raw[model] = measure(model, args, tmp)
            summaries.append(summarize(model, raw[model]))
    text = markdown(summaries, args, start_load)
    print(text)
    if args.markdown:
        from digits_gan_plugin.files import write_text_atomic

        write_text_atomic(args.markdown, text + "\n")
    if args.json:
        from digits_gan_plugin.files import write_json_atomic

        write_json_atomic(args.json, {"start_load": start_load, "summaries": summaries, "windows": raw,
                                      "settings": {key: getattr(args, key) for key in
                                                   ("threads", "warmup", "rounds", "window", "xla", "gpu",
                                                    "quick")}})
    return 0


if __name__ == "__main__":
    sys.exit(main())
