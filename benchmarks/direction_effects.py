"""What the discovered directions do to MNIST digits.

For a trained conditional MNIST GAN job (the walkthrough's network-mnist job), finds the
top `--count` SeFa and GANSpace directions (`digits-gan latent directions`), with
`--encoder-job` also the best class boundaries (InterFaceGAN, one-vs-rest on encoded z)
and their mean-difference vectors, and sweeps
`--samples` random (z, class) pairs along each from -extent to +extent. Prints, per
direction:

    ink     Pearson correlation of the edit coefficient t with the ink mass (mean pixel
            value) of the image, within each sweep (per-sample means removed)
    slant   the same with the slant (shear moment mu11 / mu02 of the pixel mass,
            positive leaning right)
    judge   the judge classifier's accuracy on the requested class along the whole
            sweep, next to its accuracy at t = 0 (the unedited samples)

A direction that edits style without breaking the digit has |ink| or |slant| near 1
and a judge accuracy close to the unedited one.

Usage:
    python benchmarks/direction_effects.py --gan-job GAN_JOB [--encoder-job ENCODER_JOB] [--dataset DS]
    python benchmarks/direction_effects.py --quick --gan-job G    # smoke run, tiny judge
"""
import argparse
import os
import sys

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from digits_gan_plugin import evaluation, jobdir  # noqa: E402


def ink_mass(images):
    """Mean pixel value in [0, 1] of each uint8 N,H,W,C image."""
    return images.reshape(len(images), -1).mean(axis=1) / 255.0


def slant(images):
    """Shear moment mu11 / mu02 of each image's pixel mass (x right, y down; > 0: the
    top leans right)."""
    mass = images[..., 0].astype(np.float64)
    height, width = mass.shape[1:]
    ys, xs = np.mgrid[:height, :width]
    total = mass.sum(axis=(1, 2)) + 1e-9
    mean_x = (mass * xs).sum(axis=(1, 2)) / total
    mean_y = (mass * ys).sum(axis=(1, 2)) / total
    dx = xs[None] - mean_x[:, None, None]
    dy = ys[None] - mean_y[:, None, None]
    mu11 = (mass * dx * dy).sum(axis=(1, 2)) / total
    mu02 = (mass * dy * dy).sum(axis=(1, 2)) / total + 1e-9
    return -mu11 / mu02  # y grows downwards: a right-leaning stroke has negative mu11


def sweep_correlation(values, samples, steps, t):
    """Pearson correlation of t with `values` (samples x steps, row-major) after
    removing each sample's mean."""
    grid = values.reshape(samples, steps)
    centred = grid - grid.mean(axis=1, keepdims=True)
    ramp = np.broadcast_to(t - t.mean(), grid.shape)
    denominator = np.sqrt((centred ** 2).sum() * (ramp ** 2).sum())
    return float((centred * ramp).sum() / denominator) if denominator > 0 else 0.0


def measure(gan_job, dataset, count, samples, steps, classifier_settings, pca_samples=2000, seed=0,
            encoder_job=None):
    """[(name, score, ink r, slant r, judge accuracy along the sweep, at t = 0)]; with
    `encoder_job`, also the `count` best-scored class boundaries and their classes'
    mean differences."""
    from digits_gan_plugin.runtime.directions import (FirstLayer, boundaries, default_extent, ganspace, sefa, select,
                                                      sweep_vectors)
    from digits_gan_plugin.runtime.export import freeze
    from digits_gan_plugin.runtime.inference import load_generator

    judge = evaluation.load_or_train_classifier(dataset, classifier_settings, progress=False)
    tower = freeze(gan_job)
    facts = tower.facts
    layer = FirstLayer(tower)
    try:
        found = sefa(layer, count) + ganspace(layer, count, pca_samples, np.random.default_rng(seed))
    finally:
        layer.close()
    if encoder_job:
        labelled = boundaries(encoder_job, dataset, seed=seed)
        classes = len(labelled.names) // 2  # boundary_K ..., then meandiff_K ...
        best = list(np.argsort(labelled.score[:classes])[::-1][:count])
        found = found + select(labelled, best + [k + classes for k in best])
    extent = default_extent(facts)
    rows = []
    with load_generator(gan_job) as generator:
        for name, score, vector in zip(found.names, found.score, found.vectors):
            vectors, t = sweep_vectors(facts, vector, extent, steps, samples, np.random.default_rng(seed))
            images = generator.generate(vectors)
            requested = np.argmax(vectors[:, facts.z_dim:], axis=1)
            probs, _ = judge.predict(images)
            correct = (np.argmax(probs, axis=1) == requested).reshape(samples, steps)
            rows.append((name, float(score), sweep_correlation(ink_mass(images), samples, steps, t),
                         sweep_correlation(slant(images), samples, steps, t), float(correct.mean()),
                         float(correct[:, steps // 2].mean())))
    return rows, extent


def report(rows, extent, samples, steps):
    print(f"\n{samples} samples per direction, {steps} steps from -{extent:.2f} to +{extent:.2f}")
    print(f"{'direction':18s} {'score':>7s} {'ink r':>7s} {'slant r':>8s} {'judge':>7s} {'t=0':>6s}")
    for name, score, ink, lean, judged, unedited in rows:
        print(f"{name:18s} {score:7.4f} {ink:+7.2f} {lean:+8.2f} {judged:7.3f} {unedited:6.3f}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gan-job", required=True, help="trained conditional network-mnist job")
    parser.add_argument("--dataset", help="the judge's dataset (default: the GAN job's)")
    parser.add_argument("--encoder-job", help="encoder job trained from the GAN: adds the class boundaries")
    parser.add_argument("--count", type=int, default=5, help="directions per method (default 5)")
    parser.add_argument("--samples", type=int, default=100, help="(z, class) pairs per direction (default 100)")
    parser.add_argument("--steps", type=int, default=9, help="odd number of images per sweep (default 9)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 directions, 8 samples, PCA of 200, tiny judge")
    args = parser.parse_args(argv)
    count, samples = (2, 8) if args.quick else (args.count, args.samples)
    settings = evaluation.QUICK_CLASSIFIER if args.quick else evaluation.DEFAULT_CLASSIFIER
    dataset = args.dataset or jobdir.read_config(args.gan_job)["dataset"]
    rows, extent = measure(args.gan_job, dataset, count, samples, args.steps | 1, settings,
                           pca_samples=200 if args.quick else 2000, encoder_job=args.encoder_job)
    report(rows, extent, samples, args.steps | 1)
    return rows


if __name__ == "__main__":
    main()
