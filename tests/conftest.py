"""Shared fixtures: small generated sources (IDX files, JPEG folders, CelebA-style
attribute lists) and a session-scoped tiny MNIST dataset other tests can train on."""
import gzip
import os
import struct
import subprocess

import numpy as np
import pytest

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()


# A tiny unconditional GAN model file (z_dim 4, 8x8x1 images) for tests that train a few steps.
TINY_GAN = '''
class UserModel(Tower):
    z_dim = 4

    def generator(self, z):
        with tf.variable_scope("generator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [self.z_dim, 64], initializer=tf.random_normal_initializer(stddev=0.1))
            return tf.reshape(tf.sigmoid(tf.matmul(z, w)), [-1, 8, 8, 1])

    def discriminator(self, images):
        with tf.variable_scope("discriminator", reuse=tf.AUTO_REUSE):
            w = tf.get_variable("w", [64, 1], initializer=tf.random_normal_initializer(stddev=0.1))
            return tf.matmul(tf.reshape(images, [-1, 64]), w)

    @model_property
    def inference(self):
        return self.generator(tf.reshape(self.x, [-1, self.z_dim])) * 255.0

    @model_property
    def loss(self):
        z = tf.random_uniform([tf.shape(self.x)[0], self.z_dim], -1.0, 1.0)
        fake = self.generator(z)
        d_real, d_fake = self.discriminator(self.x / 255.0), self.discriminator(fake)
        xent = tf.nn.sigmoid_cross_entropy_with_logits
        d_vars, g_vars = tf.trainable_variables("discriminator/"), tf.trainable_variables("generator/")
        return [
            {"name": "d", "loss": tf.reduce_mean(xent(logits=d_real, labels=tf.ones_like(d_real)))
                                  + tf.reduce_mean(xent(logits=d_fake, labels=tf.zeros_like(d_fake))), "vars": d_vars},
            {"name": "g", "loss": tf.reduce_mean(xent(logits=d_fake, labels=tf.ones_like(d_fake))), "vars": g_vars},
        ]
'''


def idx_bytes(array):
    """The IDX encoding of a uint8 array, written field by field: two zero bytes, type
    0x08 (unsigned byte), the number of dimensions, big-endian uint32 sizes, data."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", size) for size in array.shape)
    return header + array.tobytes()


def write_idx(path, array, gz=False):
    data = idx_bytes(array)
    with open(path, "wb") as handle:
        handle.write(gzip.compress(data) if gz else data)
    return path


def synthetic_digits(count, seed=0):
    """count digit images (uint8 count,28,28, white glyph on black, randomly shifted)
    rendered with Pillow's built-in font, and their labels (int64, cycling 0..9)."""
    from PIL import Image, ImageDraw, ImageFont

    rng = np.random.default_rng(seed)
    font = ImageFont.load_default(size=22)
    labels = np.arange(count) % 10
    images = np.empty((count, 28, 28), dtype=np.uint8)
    for index, label in enumerate(labels):
        image = Image.new("L", (28, 28))
        dx, dy = rng.integers(-3, 4, size=2)
        ImageDraw.Draw(image).text((14 + dx, 14 + dy), str(label), fill=255, font=font, anchor="mm")
        images[index] = image
    return images, labels.astype(np.int64)


def write_mnist_idx_dir(folder, train_count=160, val_count=40, gz=False, seed=0):
    """Write the four standard MNIST IDX files of synthetic digits into `folder`;
    returns (train_images, train_labels, val_images, val_labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = synthetic_digits(train_count, seed)
    val_images, val_labels = synthetic_digits(val_count, seed + 1)
    suffix = ".gz" if gz else ""
    write_idx(folder / f"train-images-idx3-ubyte{suffix}", train_images, gz)
    write_idx(folder / f"train-labels-idx1-ubyte{suffix}", train_labels, gz)
    write_idx(folder / f"t10k-images-idx3-ubyte{suffix}", val_images, gz)
    write_idx(folder / f"t10k-labels-idx1-ubyte{suffix}", val_labels, gz)
    return train_images, train_labels, val_images, val_labels


def write_jpeg(path, colour, size=(178, 218), quality=95):
    """A JPEG of one flat RGB colour; `size` is (width, height)."""
    from PIL import Image

    Image.new("RGB", size, tuple(colour)).save(path, format="JPEG", quality=quality)
    return path


def write_celeba_dir(folder, colours, attributes=None, partition=None, size=(178, 218)):
    """A CelebA-style source: img_align_celeba/00000N.jpg of the given flat colours and
    list_attr_celeba.txt in the real format (count line, the 40 names with a trailing
    space, then `filename` and 40 values of 1/-1 aligned with runs of spaces); also
    list_eval_partition.txt when `partition` (one 0/1/2 per image) is given.
    attributes: int array N,40 of 1/-1 (default: a fixed pattern). Returns the names."""
    image_dir = folder / "img_align_celeba"
    image_dir.mkdir(parents=True, exist_ok=True)
    count = len(colours)
    if attributes is None:
        attributes = np.where((np.arange(count)[:, None] + np.arange(40)[None, :]) % 3 == 0, 1, -1)
    names = [f"{index + 1:06d}.jpg" for index in range(count)]
    for name, colour in zip(names, colours):
        write_jpeg(image_dir / name, colour, size)
    lines = [str(count), " ".join(CELEBA_ATTRIBUTES) + " "]
    lines += [name + " " + " ".join(f"{value:2d}" for value in row) for name, row in zip(names, attributes)]
    (folder / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    if partition is not None:
        (folder / "list_eval_partition.txt").write_text(
            "".join(f"{name} {part}\n" for name, part in zip(names, partition))
        )
    return names


@pytest.fixture(scope="session")
def tiny_mnist_dataset(tmp_path_factory):
    """A built dataset dir (DIGITS layout) of 200 synthetic 1x28x28 digits with labels
    0..9: train_db 160, val_db 40, uint8 features, scalar labels, num_classes 10."""
    from digits_gan_plugin.data_plugins.mnist import DataIngestion
    from digits_gan_plugin.dataset_io import write_dataset

    root = tmp_path_factory.mktemp("tiny_mnist")
    write_mnist_idx_dir(root / "source")
    write_dataset(DataIngestion(source=str(root / "source")), root / "dataset", workers=1, progress=False)
    return root / "dataset"


# The longest files start first, so that two xdist workers (pytest.ini) finish together
# instead of one running the browser test alone at the end.
SLOW_FIRST = ("test_webapp_browser.py", "test_run_local.py", "test_zoo_models.py", "test_models_gaussian.py")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_on_a_tiny_disk(mount, script, size="256k", timeout=300):
    """Run shell `script` (in the repository root) with a fresh `size` tmpfs mounted at
    `mount` in a private mount namespace (`unshare -m`: nothing outside sees it, it goes
    when the script ends); the test is skipped where that needs privileges we lack.
    Returns the CompletedProcess (text)."""
    os.makedirs(mount, exist_ok=True)
    try:
        done = subprocess.run(["unshare", "-m", "sh", "-c", f"mount -t tmpfs -o size={size} tmpfs {mount} || exit 99; "
                               + script], capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    except FileNotFoundError:
        pytest.skip("no unshare here")
    if done.returncode == 99 or "Operation not permitted" in done.stderr:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    return done


FILL_THE_DISK = "cat /dev/zero > {mount}/fill 2>/dev/null"  # shell: leaves no byte free on {mount}


def pytest_collection_modifyitems(items):
    def rank(item):
        name = item.path.name
        return SLOW_FIRST.index(name) if name in SLOW_FIRST else len(SLOW_FIRST)

    items.sort(key=rank)  # stable: the order inside each file is kept
