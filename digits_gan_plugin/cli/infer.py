"""``digits-gan infer`` and ``digits-gan models`` (no TensorFlow at import time)."""
from ..options import int_list, seed_int


def register(subparsers):
    _register_infer(subparsers)
    models = subparsers.add_parser("models", help="list the shipped model definitions")
    models.set_defaults(func=run_models)


def _register_infer(subparsers):
    parser = subparsers.add_parser(
        "infer", help="run a trained job's inference op",
        description="Run a job's inference op over an inference dataset, a z-vector file or chosen classes. "
                    "--out F.npz / F.h5 writes that file (plus F.png, the image grid); any other --out is a "
                    "directory receiving result.npz, result.json and grid.png. Default --out: "
                    "JOBDIR/inference/<dataset or z-file name, or 'classes'>/.",
    )
    parser.add_argument("--job", required=True, metavar="JOBDIR", help="training job directory")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--dataset", metavar="DIR", help="inference dataset of z vectors (test_db)")
    source.add_argument("--z", metavar="FILE", help="z vectors, N x D, in .npz / .txt / .h5")
    source.add_argument("--classes", type=int_list, metavar="0,1,...", help="generate these classes")
    parser.add_argument("--per-class", type=int, default=10, help="images per class with --classes (default 10)")
    parser.add_argument("--seed", type=seed_int, default=0, help="z seed with --classes (default 0)")
    parser.add_argument("--checkpoint", default="last", help="'last' (default), 'best' or a checkpoint prefix")
    parser.add_argument("--batch-size", type=int, default=256, help="vectors per session call (default 256)")
    parser.add_argument("--out", help="F.npz, F.h5 or a directory (see above)")
    parser.set_defaults(func=run_infer)


def run_infer(args):
    from ..runtime.inference import infer_command

    written = infer_command(args.job, dataset=args.dataset, z_file=args.z, classes=args.classes,
                            per_class=args.per_class, seed=args.seed, checkpoint=args.checkpoint,
                            out=args.out, batch_size=args.batch_size)
    for path in written:
        print(path)
    return 0


def run_models(args):
    from ..runtime.model_files import describe, list_model_definitions

    definitions = list_model_definitions()
    width = max((len(name) for name in definitions), default=0)
    for name, path in definitions.items():
        print(f"{name:<{width}}  {describe(path)}")
    return 0
