"""Dataset build speed: CelebA build vs the machine's JPEG decode limit, and MNIST 5k.

    python -m benchmarks.dataset_build              # 10,000 CelebA-style JPEGs
    python -m benchmarks.dataset_build --count 500  # smoke test (also: --quick)

Generates 178x218 CelebA-style JPEGs (smooth gradients, ellipses, noise; quality 90)
and a real-format list_attr_celeba.txt in --workdir (reused when already there), then
measures in the same run (wall clock; CPU time of all processes is printed too, since
a machine shared with other jobs distorts images/s):
  decode  images/s of reading + bare full-size JPEG decode of the same files by ONE
          process, with Pillow and (when installed) simplejpeg, accurate (libjpeg's
          defaults) and fast (fastdct + fastupsample, the build's --fast-decode);
  limit   decode x cores: what a build bound only by JPEG decoding could reach, for
          the accurate decode (the reference) and for the fast one;
  levers  per-image CPU of the decodes a build could use instead of the full one:
          simplejpeg stopped below the crop's last row (what the build does; exact),
          DCT-domain 5/8 scaling (the smallest scale keeping the 108 crop >= 64 px;
          with its pixel difference after the resize), and TensorFlow's
          decode_and_crop_jpeg (libjpeg-turbo's crop + skip-scanline path), measured
          in a child process with 1 intra/inter-op thread, with its import cost;
  build   images/s of the full CelebA build (default 108 crop, 64 resize, all cores),
          with its default accurate decode and with --fast-decode;
and prints build/limit (target >= 0.75) for each pairing, and the embedded MNIST 5k
build time (target < 5 s), in-process and as a `digits-gan dataset create` command.
"""
import argparse
import importlib.util
import io
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

from digits_gan_plugin import imaging
from digits_gan_plugin.data_plugins import celeba, mnist
from digits_gan_plugin.dataset_io import write_dataset
from digits_gan_plugin.files import usable_cores

WIDTH, HEIGHT = 178, 218
ATTRIBUTES = 40


def celeba_style_image(index):
    """A varied 218x178 RGB face-like picture: gradient background, an ellipse 'face',
    two 'eyes', a few blocks and mild noise (JPEG cost similar to real photos)."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(index)
    top, bottom = rng.integers(0, 256, (2, 3))
    ramp = np.linspace(0.0, 1.0, HEIGHT)[:, None, None]
    pixels = (top * (1 - ramp) + bottom * ramp).repeat(WIDTH, axis=1)
    pixels += rng.normal(0, 6, pixels.shape)
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(3):
        x0, y0 = rng.integers(0, WIDTH), rng.integers(0, HEIGHT)
        draw.rectangle([x0, y0, x0 + rng.integers(10, 60), y0 + rng.integers(10, 60)],
                       fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    cx, cy = WIDTH // 2 + rng.integers(-10, 11), HEIGHT // 2 + rng.integers(-10, 11)
    rx, ry = rng.integers(35, 55), rng.integers(50, 70)
    draw.ellipse([cx - rx, cy - ry, cx + rx, cy + ry], fill=tuple(int(v) for v in rng.integers(90, 256, 3)))
    for side in (-1, 1):
        ex, ey = cx + side * rx // 2, cy - ry // 4
        draw.ellipse([ex - 6, ey - 4, ex + 6, ey + 4], fill=tuple(int(v) for v in rng.integers(0, 80, 3)))
    return image


def generate_celeba(folder, count):
    """Write `count` JPEGs + list_attr_celeba.txt into folder, unless already there."""
    marker = os.path.join(folder, f".complete-{count}")
    if os.path.exists(marker):
        return
    shutil.rmtree(folder, ignore_errors=True)
    image_dir = os.path.join(folder, celeba.IMAGE_DIR)
    os.makedirs(image_dir)
    names = [f"{index + 1:06d}.jpg" for index in range(count)]
    for index, name in enumerate(names):
        celeba_style_image(index).save(os.path.join(image_dir, name), quality=90)
    values = np.where(np.random.default_rng(0).random((count, ATTRIBUTES)) < 0.3, 1, -1)
    header = " ".join(f"Attribute_{index}" for index in range(ATTRIBUTES)) + " "
    with open(os.path.join(folder, celeba.ATTRIBUTES_FILE), "w") as handle:
        handle.write(f"{count}\n{header}\n")
        handle.writelines(name + " " + " ".join(f"{v:2d}" for v in row) + "\n" for name, row in zip(names, values))
    open(marker, "w").close()


def cpu_seconds():
    """CPU time used so far by this process and its waited-for children (pool workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def decode_rate(paths, decode):
    """(images/s, CPU s per image) of reading and fully decoding each file with
    decode(bytes) in this one process."""
    start, cpu_start = time.perf_counter(), cpu_seconds()
    for path in paths:
        with open(path, "rb", buffering=0) as handle:  # as load_square_image reads them
            decode(handle.readall())
    return len(paths) / (time.perf_counter() - start), (cpu_seconds() - cpu_start) / len(paths)


def read_file(path):
    with open(path, "rb") as handle:
        return handle.read()


def pillow_decode(data):
    from PIL import Image

    with Image.open(io.BytesIO(data)) as image:
        image.load()


def simplejpeg_decode(data):
    import simplejpeg

    simplejpeg.decode_jpeg(data)


def simplejpeg_fast_decode(data):
    import simplejpeg

    simplejpeg.decode_jpeg(data, fastdct=True, fastupsample=True)


CROP, SIZE = 108, 64
TOP, LEFT = (HEIGHT - CROP) // 2, (WIDTH - CROP) // 2


def rows_to_crop_decode(data):
    """simplejpeg decode of the rows down to the crop's bottom (+1), as the build does."""
    return imaging.decode_jpeg_rows(data, TOP + CROP + 1)


def five_eighths_decode(data):
    """DCT-domain 5/8 decode: 218x178 -> 137x112, the 108 crop becomes 67.5 px."""
    import simplejpeg

    return simplejpeg.decode_jpeg(data, min_height=-(-HEIGHT * 5 // 8), min_width=-(-WIDTH * 5 // 8))


def five_eighths_square(data):
    """The 64x64 square resized (box filter) from the 5/8 decode."""
    pixels, scale = five_eighths_decode(data), 5 / 8
    return imaging._resize(pixels, (LEFT * scale, TOP * scale, (LEFT + CROP) * scale, (TOP + CROP) * scale), SIZE)


def tensorflow_probe(paths):
    """Run in a child process: CPU s of importing TensorFlow, and CPU s per image of
    decode_and_crop_jpeg (accurate IDCT) of the centre crop, eager op by op and in a
    sequential tf.data map, both on 1 intra/inter-op thread. Prints one JSON line."""
    import json

    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    start = cpu_seconds()
    import tensorflow as tf

    imported = cpu_seconds() - start
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    datas = [read_file(path) for path in paths]
    window = tf.constant([TOP, LEFT, CROP, CROP])

    def crop(data):
        return tf.io.decode_and_crop_jpeg(data, window, channels=3, dct_method="INTEGER_ACCURATE")

    crop(datas[0])
    start = cpu_seconds()
    for data in datas:
        crop(data).numpy()
    eager = (cpu_seconds() - start) / len(datas)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    pipeline = tf.data.Dataset.from_tensor_slices(datas).map(crop).batch(64).with_options(options)
    start = cpu_seconds()
    for _ in pipeline:
        pass
    mapped = (cpu_seconds() - start) / len(datas)
    print(json.dumps({"import": imported, "eager": eager, "tf.data": mapped}))


def build_rate(source, out, count, workers, fast_decode):
    """(images/s, CPU s per image over all processes) of the CelebA build."""
    start, cpu_start = time.perf_counter(), cpu_seconds()
    write_dataset(celeba.DataIngestion(source=source, fast_decode=fast_decode), out, workers=workers,
                  progress=False, overwrite=True)
    return count / (time.perf_counter() - start), (cpu_seconds() - cpu_start) / count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", "--images", dest="count", type=int, default=10_000,
                        help="number of CelebA-style images (default 10,000)")
    parser.add_argument("--quick", action="store_true", help="500 images (smoke test)")
    parser.add_argument("--workers", type=int, default=usable_cores(), help="build processes (default: cores)")
    parser.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "digits-gan-bench"),
                        help="where the generated source images are kept between runs")
    parser.add_argument("--tensorflow-probe", metavar="FOLDER", help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.tensorflow_probe:
        tensorflow_probe(sorted(os.path.join(args.tensorflow_probe, name) for name in os.listdir(args.tensorflow_probe))[:2000])
        return 0
    count = 500 if args.quick else args.count
    cores = usable_cores()

    source = os.path.join(args.workdir, f"celeba-{count}")
    start = time.perf_counter()
    generate_celeba(source, count)
    print(f"source: {count} JPEGs {WIDTH}x{HEIGHT} in {source} (ready in {time.perf_counter() - start:.1f} s)")
    paths = sorted(os.path.join(source, celeba.IMAGE_DIR, name) for name in os.listdir(os.path.join(source, celeba.IMAGE_DIR)))
    for path in paths:  # warm the page cache so neither measurement reads from disk
        with open(path, "rb") as handle:
            handle.read()

    decoders = {"Pillow": pillow_decode}
    if importlib.util.find_spec("simplejpeg"):  # what load_square_image decodes JPEGs with
        decoders.update({"simplejpeg": simplejpeg_decode, "simplejpeg fast": simplejpeg_fast_decode})
    decodes = {name: decode_rate(paths, decoder) for name, decoder in decoders.items()}
    levers = {}
    if "simplejpeg" in decoders:
        levers["simplejpeg down to the crop bottom (the build's, exact)"] = decode_rate(paths, rows_to_crop_decode)[1]
        levers["simplejpeg DCT-scaled 5/8"] = decode_rate(paths, five_eighths_decode)[1]
        sample = paths[:300]
        difference = np.concatenate([np.abs(five_eighths_square(read_file(path)).astype(int)
                                            - imaging.load_square_image(path, SIZE, crop=CROP)).ravel() for path in sample])
    probe = None
    if importlib.util.find_spec("tensorflow"):
        import json

        result = subprocess.run([sys.executable, "-m", "benchmarks.dataset_build", "--tensorflow-probe",
                                 os.path.join(source, celeba.IMAGE_DIR)], capture_output=True, text=True, check=True)
        probe = json.loads(result.stdout.strip().splitlines()[-1])
    out = os.path.join(args.workdir, "celeba-dataset")
    builds = {fast: build_rate(source, out, count, args.workers, fast) for fast in (True, False)}
    for name, (rate, cpu) in decodes.items():
        print(f"{'decode, ' + name:40s}: {rate:6.0f} images/s, {cpu * 1e6:4.0f} us CPU/image "
              f"(1 process: read + full-size {WIDTH}x{HEIGHT} JPEG decode)")
    # reference: the faster accurate decoder; the --fast-decode build is also paired with the fast decode
    reference = max((name for name in ("Pillow", "simplejpeg") if name in decodes), key=lambda name: decodes[name][0])
    limits = [reference] + [name for name in ("simplejpeg fast",) if name in decodes]
    for name in limits:
        print(f"{'limit, ' + name:40s}: {decodes[name][0] * cores:6.0f} images/s ({name} x {cores} cores)")
    for name, cpu in levers.items():
        print(f"lever, {name}: {cpu * 1e6:4.0f} us CPU/image (read + decode)")
    if levers:
        print(f"  5/8 square vs the default accurate square: mean {difference.mean():.2f}, "
              f"99th percentile {np.percentile(difference, 99):.0f}, max {difference.max()} grey levels")
    if probe:
        print(f"lever, TensorFlow decode_and_crop_jpeg: {probe['eager'] * 1e6:4.0f} us CPU/image eager, "
              f"{probe['tf.data'] * 1e6:4.0f} in tf.data (decode only), after {probe['import']:.1f} CPU s "
              f"of importing TensorFlow (per process)")
    for fast, (rate, cpu) in builds.items():
        label = "CelebA build" + (" --fast-decode" if fast else " (default: accurate decode)")
        print(f"{label:40s}: {rate:6.0f} images/s, {cpu * 1e6:4.0f} us CPU/image over all processes "
              f"({args.workers} workers, crop 108 -> 64x64)")
    print("build / limit (target >= 0.75); CPU ratio = decode CPU / build CPU, what a quiet machine with "
          "perfect scaling would reach:")
    for fast, decoder in [(False, reference), (True, reference), (True, "simplejpeg fast")]:
        if decoder in decodes:
            (rate, cpu), (decode, decode_cpu) = builds[fast], decodes[decoder]
            label = ("fast build" if fast else "accurate build") + " vs " + decoder
            print(f"  {label:38s}: {rate / (decode * cores):6.2f}, CPU ratio {decode_cpu / cpu:.2f}")

    mnist_out = os.path.join(args.workdir, "mnist-dataset")
    start = time.perf_counter()
    write_dataset(mnist.DataIngestion(), mnist_out, workers=args.workers, progress=False, overwrite=True)
    in_process = time.perf_counter() - start
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "digits_gan_plugin.cli", "dataset", "create", "mnist", "--out", mnist_out,
                    "--overwrite", "--quiet"], check=True, stdout=subprocess.DEVNULL)
    command = time.perf_counter() - start
    print(f"{'MNIST 5k build':40s}: {in_process:6.2f} s in-process, {command:.2f} s as a command (target < 5 s)")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(mnist_out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
