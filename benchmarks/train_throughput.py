"""Training throughput of network-mnist.py and network-celebA.py: our runtime vs Keras 3.

For each model, two subprocesses (for isolation: graph mode vs eager Keras) train the
same network at the same batch size with the same TensorFlow thread count:
- ours: `digits-gan train` (runtime.trainer.train) on a synthetic dataset in DIGITS
  layout (LMDB -> tf.data), one epoch long enough that no epoch-end work is timed;
- keras: the same G and D as an idiomatic Keras 3 `keras.Model` subclass whose
  `train_step` updates D then G (keras-io DCGAN style: G's step runs its own forward
  pass), compiled and `fit` on the same kind of numpy data, under tf.function.
Both warm up, then time a fixed number of steps. The ours-worker also runs a 5x5
convolution forward+backward micro-benchmark (this machine's practical peak).

GFLOP/s counts the model FLOPs of one training step per image, 3 x the forward
conv/matmul FLOPs of G + D(real) + D(fake) (backward ~ 2x forward), for both sides,
so it is proportional to images/s (Keras' separate G pass is extra work not counted).

    python benchmarks/train_throughput.py            # full run (a few minutes)
    python benchmarks/train_throughput.py --quick    # smoke run (tiny step counts)
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

BATCH = 64
Z_DIM = 100
MODELS = {
    # name: (network file, image shape H,W,C, classes (conditional) or 0)
    "mnist": ("network-mnist", (28, 28, 1), 10),
    "celebA": ("network-celebA", (64, 64, 3), 0),
}


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


# --------------------------------------------------------------------------- workers
def set_threads(threads):
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)


def conv_peak_gflops(threads, iterations):
    """GFLOP/s of a 5x5 convolution forward + both gradients (graph mode, float32),
    batch 64, 16x16x128 -> 16x16x128."""
    import tensorflow.compat.v1 as tf

    shape, filters = (BATCH, 16, 16, 128), 128
    with tf.Graph().as_default():
        x = tf.Variable(tf.random.normal(shape))
        w = tf.Variable(tf.random.normal([5, 5, shape[-1], filters], stddev=0.05))
        y = tf.nn.conv2d(x, w, strides=1, padding="SAME")
        # Fetch the gradient ops themselves: a tf.group of them gets pruned away.
        step = [grad.op for grad in tf.gradients(tf.reduce_sum(y * y), [x, w])]
        config = tf.ConfigProto(intra_op_parallelism_threads=threads, inter_op_parallelism_threads=threads)
        with tf.Session(config=config) as session:
            session.run(tf.global_variables_initializer())
            for _ in range(2):
                session.run(step)
            started = time.perf_counter()
            for _ in range(iterations):
                session.run(step)
            elapsed = time.perf_counter() - started
    flops = 3 * 2 * conv_macs(16, 16, 5, shape[-1], filters) * BATCH
    return flops * iterations / elapsed / 1e9


def synthetic_plugin(shape, classes, count):
    """The shipped synthetic data plugin: `count` random uint8 images of `shape`
    (H,W,C) with a class label (classes > 0) or 40 +-1 attributes."""
    from digits_gan_plugin.data_plugins.synthetic import DataIngestion

    height, _, channels = shape
    labels = {"classes": classes} if classes else {"attributes": 40}
    return DataIngestion(size=height, channels=channels, train_count=count, val_count=0, **labels)


def run_ours(model, threads, warmup, steps):
    """Images/s of our runtime training `model` (+ the conv peak in this process)."""
    from digits_gan_plugin.dataset_io import write_dataset
    from digits_gan_plugin.runtime.trainer import TrainOptions, train

    network, shape, classes = MODELS[model]
    total = warmup + steps
    with tempfile.TemporaryDirectory(prefix="throughput-") as tmp:
        dataset = os.path.join(tmp, "dataset")
        write_dataset(synthetic_plugin(shape, classes, BATCH * total), dataset, progress=False)
        times = {}

        def record(step):
            if step in (warmup, total):
                times[step] = time.perf_counter()

        options = TrainOptions(dataset=dataset, network=network, epochs=1, batch_size=BATCH, max_steps=total,
                               seed=0, threads=threads, snapshot_interval=1000.0)
        train(options, os.path.join(tmp, "job"), progress=False, step_callback=record)
    images_per_sec = BATCH * steps / (times[total] - times[warmup])
    return {"images_per_sec": images_per_sec, "conv_peak_gflops": conv_peak_gflops(threads, max(3, steps // 10))}


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
    network, (height, width, channels), classes = MODELS[model]
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


def run_keras(model, threads, warmup, steps):
    """Images/s of the Keras 3 train_step version of `model`."""
    set_threads(threads)
    import keras
    import tensorflow as tf

    network, shape, classes = MODELS[model]
    generator, discriminator = keras_networks(model)
    cross_entropy = keras.losses.BinaryCrossentropy(from_logits=True)
    real_label = 0.9 if classes else 1.0

    class GAN(keras.Model):
        def __init__(self):
            super().__init__()
            self.generator, self.discriminator = generator, discriminator

        def compile(self):
            super().compile()
            self.d_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)
            self.g_optimizer = keras.optimizers.Adam(2e-4, beta_1=0.5)

        def _g(self, z, y):
            return self.generator([z, y] if classes else z, training=True)

        def _d(self, images, y):
            return self.discriminator([images, y] if classes else images, training=True)

        def train_step(self, data):
            x, labels = data
            real = x / 255.0 if classes else x / 127.5 - 1.0
            y = tf.one_hot(labels, classes) if classes else None
            batch = tf.shape(real)[0]
            z = tf.random.uniform([batch, Z_DIM], -1.0, 1.0)
            with tf.GradientTape() as tape:
                d_real, d_fake = self._d(real, y), self._d(self._g(z, y), y)
                d_loss = (cross_entropy(tf.fill(tf.shape(d_real), real_label), d_real)
                          + cross_entropy(tf.zeros_like(d_fake), d_fake))
            grads = tape.gradient(d_loss, self.discriminator.trainable_weights)
            self.d_optimizer.apply_gradients(zip(grads, self.discriminator.trainable_weights))
            z = tf.random.uniform([batch, Z_DIM], -1.0, 1.0)
            with tf.GradientTape() as tape:
                d_fake = self._d(self._g(z, y), y)
                g_loss = cross_entropy(tf.ones_like(d_fake), d_fake)
            grads = tape.gradient(g_loss, self.generator.trainable_weights)
            self.g_optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
            return {"d_loss": d_loss, "g_loss": g_loss}

    total = warmup + steps
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (BATCH * total,) + shape).astype(np.float32)
    labels = rng.integers(0, max(classes, 1), BATCH * total)
    times = {}

    class Timer(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch + 1 in (warmup, total):
                times[batch + 1] = time.perf_counter()

    gan = GAN()
    gan.compile()
    gan.fit(x, labels, batch_size=BATCH, epochs=1, shuffle=True, verbose=0, callbacks=[Timer()])
    return {"images_per_sec": BATCH * steps / (times[total] - times[warmup])}


def worker(args):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    run = run_ours if args.worker == "ours" else run_keras
    print("RESULT " + json.dumps(run(args.model, args.threads, args.warmup, args.steps[args.model])))
    return 0


# --------------------------------------------------------------------------- driver
def spawn(side, model, args):
    command = [sys.executable, os.path.abspath(__file__), "--worker", side, "--model", model,
               "--threads", str(args.threads), "--warmup", str(args.warmup),
               "--mnist-steps", str(args.steps["mnist"]), "--celeba-steps", str(args.steps["celebA"])]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        sys.stderr.write(done.stdout[-2000:] + done.stderr[-4000:])
        raise SystemExit(f"train_throughput: the {side} worker for {model} failed (exit {done.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: a few steps per side")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="TensorFlow intra/inter-op threads of both sides (default: all cores)")
    parser.add_argument("--warmup", type=int, help="untimed steps (default 10, quick 2)")
    parser.add_argument("--mnist-steps", type=int, help="timed steps for mnist (default 200, quick 5)")
    parser.add_argument("--celeba-steps", type=int, help="timed steps for celebA (default 40, quick 2)")
    parser.add_argument("--models", default="mnist,celebA", help="comma-separated subset of mnist,celebA")
    parser.add_argument("--worker", choices=("ours", "keras"), help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=tuple(MODELS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.warmup = args.warmup or (2 if args.quick else 10)
    args.steps = {"mnist": args.mnist_steps or (5 if args.quick else 200),
                  "celebA": args.celeba_steps or (2 if args.quick else 40)}
    if args.worker:
        return worker(args)

    print(f"batch {BATCH}, {args.threads} threads, warmup {args.warmup} steps, timed steps "
          f"{args.steps}{' (quick)' if args.quick else ''}")
    header = (f"{'model':<8} {'ours img/s':>10} {'keras img/s':>11} {'ratio':>6} {'GFLOP/step/img':>14} "
              f"{'ours GFLOP/s':>12} {'keras GFLOP/s':>13} {'5x5 conv peak':>13}")
    rows = []
    for model in args.models.split(","):
        ours, keras_side = spawn("ours", model, args), spawn("keras", model, args)
        flops = step_flops_per_image(model) / 1e9
        rows.append(f"{model:<8} {ours['images_per_sec']:>10.1f} {keras_side['images_per_sec']:>11.1f} "
                    f"{ours['images_per_sec'] / keras_side['images_per_sec']:>6.2f} {flops:>14.3f} "
                    f"{ours['images_per_sec'] * flops:>12.1f} {keras_side['images_per_sec'] * flops:>13.1f} "
                    f"{ours['conv_peak_gflops']:>13.1f}")
    print(header)
    print("\n".join(rows))
    print("ratio = ours / keras (target >= 1.0); GFLOP/s = img/s x model FLOPs per image (3 x forward "
          "of G + 2 D); conv peak: 5x5 conv fwd+bwd, batch 64, 16x16x128->128, in the ours process")
    return 0


if __name__ == "__main__":
    sys.exit(main())
