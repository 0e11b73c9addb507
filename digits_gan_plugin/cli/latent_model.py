"""``digits-gan latent project`` and ``digits-gan latent directions``: the latent
subcommands that run a trained generator (``cli/latent.py`` registers them under
``latent``). No TensorFlow at import time.
"""
from ..options import add_to_argparse, int_list, seed_int
from ..runtime import projector


def register(tasks):
    """Add `project` and `directions` to the `latent` subparsers `tasks`."""
    _register_project(tasks)
    _register_directions(tasks)


def _register_project(tasks):
    parser = tasks.add_parser(
        "project", help="fit z (and the class) to images by optimisation",
        description="Fit z (and, for conditional models, the class) to each image by Adam on z: pixel MSE plus an "
                    "optional perceptual term in the judge's or D's features, z kept in the model's distribution, "
                    "starting from an encoder's z with --encoder. Writes OUT/z.npz (for `digits-gan infer --z`), "
                    "reconstruction.png, optimisation.gif and projection.json.")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files or folders of images")
    parser.add_argument("--job", required=True, metavar="JOBDIR", help="GAN job directory")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to create")
    parser.add_argument("--encoder", metavar="JOBDIR", help="encoder job: start from its z and class")
    parser.add_argument("--label", type=int, help="class of every image (conditional models; default: searched)")
    add_to_argparse(parser, projector.OPTIONS)
    parser.add_argument("--dataset", metavar="DIR", help="the judge's dataset (default: the job's)")
    parser.add_argument("--no-resize", dest="resize", action="store_false",
                        help="refuse images of another size instead of resizing them")
    parser.add_argument("--checkpoint", default="last", help="'last' (default), 'best' or a checkpoint prefix")
    parser.add_argument("--encoder-checkpoint", default="last", help="the encoder's checkpoint (default 'last')")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run_project)


def run_project(args):
    settings = projector.ProjectorSettings.from_options(vars(args))
    projection, written = projector.project_command(
        args.job, args.images, args.out, encoder_job=args.encoder, label=args.label, settings=settings,
        checkpoint=args.checkpoint, encoder_checkpoint=args.encoder_checkpoint, dataset=args.dataset,
        resize=args.resize, overwrite=args.overwrite)
    count = len(projection.mse)
    print(f"{count} image(s): mean MSE {projection.mse.mean():.4f}, {projection.seconds / count:.2f} s per image")
    for path in written:
        print(path)
    return 0


def _register_directions(tasks):
    parser = tasks.add_parser(
        "directions", help="discover directions in z (SeFa, GANSpace, InterFaceGAN boundaries)",
        description="Directions in a generator's z: SeFa (closed-form factorization of its first layer), GANSpace "
                    "(PCA of the first layer's activations) and, with --encoder and a --dataset labelled by class "
                    "(one-vs-rest) or attributes, InterFaceGAN boundaries next to mean-difference vectors. Writes "
                    "OUT/directions.npz (for `digits-gan latent attributes --attributes-file`), a sweep grid and "
                    "GIF per direction and directions.json.")
    parser.add_argument("--job", required=True, metavar="JOBDIR", help="GAN job directory")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to create")
    parser.add_argument("--method", dest="methods", action="append", metavar="NAME",
                        help="sefa, ganspace, boundary (repeat; default sefa and ganspace)")
    parser.add_argument("--count", type=int, default=5, help="directions per unsupervised method (default 5)")
    parser.add_argument("--index", type=int_list, metavar="I,J", help="keep only these directions (0-based)")
    parser.add_argument("--samples", type=int, default=2000, help="z samples for GANSpace's PCA (default 2000)")
    parser.add_argument("--steps", type=int, default=9, help="images along each sweep (default 9)")
    parser.add_argument("--rows", type=int, default=4, help="z's per sweep grid (default 4)")
    parser.add_argument("--extent", type=float, help="sweep from -E to +E along each unit direction "
                                                     "(default 0.3 x the expected length of z)")
    parser.add_argument("--encoder", metavar="JOBDIR", help="encoder job (boundary)")
    parser.add_argument("--dataset", metavar="DIR", help="dataset labelled by class or attributes (boundary)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the samples and sweeps (default 0)")
    parser.add_argument("--checkpoint", default="last", help="'last' (default), 'best' or a checkpoint prefix")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run_directions)


def run_directions(args):
    from ..runtime.directions import directions_command

    methods = [name.strip() for value in (args.methods or ["sefa,ganspace"]) for name in value.split(",")
               if name.strip()]
    found, written = directions_command(
        args.job, args.out, methods=methods, count=args.count, indices=args.index, samples=args.samples,
        steps=args.steps, rows=args.rows, extent=args.extent, seed=args.seed, encoder_job=args.encoder,
        dataset=args.dataset, checkpoint=args.checkpoint, overwrite=args.overwrite)
    for name, score in zip(found.names, found.score):
        print(f"{name:24s} score {score:.4f}")
    print(f"{len(found.names)} directions written to {written[0]}")
    return 0
