"""`digits-gan attributes`: attribute vectors of a labelled dataset through an encoder job.

No TensorFlow at import time: the encoding imports it when it runs.
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "attributes", help="attribute vectors (mean z with - without) from an encoder job and a CelebA dataset",
        description="Encode every image of an attribute-labelled dataset (e.g. CelebA) with an encoder job and "
                    "store, per attribute, mean z of the images with it minus mean z of those without, in an "
                    ".npz (keys names, vectors, count_with, count_without, skipped) for "
                    "`digits-gan latent attributes --attributes-file`. --embed N also writes the z's of the "
                    "first N images as TensorBoard projector files in <out stem>_projector/.",
    )
    parser.add_argument("--encoder-job", required=True, metavar="JOBDIR", help="trained encoder job directory")
    parser.add_argument("--dataset", required=True, metavar="DIR", help="dataset with attribute labels")
    parser.add_argument("--out", metavar="F.npz",
                        help="output file (default ENCODER_JOB/attributes/attribute_vectors.npz)")
    parser.add_argument("--embed", type=int, default=500, metavar="N",
                        help="images in the embedding view (default 500; 0: none)")
    parser.add_argument("--max-images", type=int, metavar="N", help="encode at most N images (default: all)")
    parser.add_argument("--batch-size", type=int, default=256, help="images per session call (default 256)")
    parser.add_argument("--checkpoint", default="last", help="'last' (default), 'best' or a checkpoint prefix")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")
    parser.set_defaults(func=run)


def run(args):
    from ..attributes import attributes_command

    result, npz_path, projector = attributes_command(
        args.encoder_job, args.dataset, out=args.out, embed=args.embed, max_images=args.max_images,
        batch_size=args.batch_size, checkpoint=args.checkpoint, progress=args.progress)
    print(f"{len(result.names)} attribute vectors written to {npz_path}")
    if result.skipped:
        print(f"skipped (no images on one side): {', '.join(result.skipped)}")
    if projector:
        print(f"embedding view: tensorboard --logdir {projector}")
    return 0
