"""``digits-gan export JOB``: the generator (and an encoder) as standalone artefacts.

No TensorFlow at import time (runtime.export imports it when it runs).
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "export", help="write a job's generator as a SavedModel (+ TFLite, ONNX) with model.json",
        description="Write a trained generator as a standalone artefact: OUT/saved_model (signatures 'generate': "
                    "z [N, z_dim] (+ y one-hot [N, classes]) -> images uint8 NHWC, pixels float [-1, 1]; and "
                    "'encode' with an encoder job), OUT/model.json, OUT/weights.npz (the generator's own "
                    "weights) and, with --format, generator.tflite (fixed --batch) and generator.onnx. "
                    "Default OUT: JOBDIR/export. See docs/export.md.")
    parser.add_argument("job", metavar="JOB", help="GAN job directory (or an encoder job trained with --weights GAN_JOB)")
    parser.add_argument("--encoder", metavar="JOBDIR", help="encoder job whose encoder becomes the 'encode' signature")
    parser.add_argument("--format", dest="formats", action="append", metavar="NAME[,NAME]",
                        help="savedmodel (always written), tflite, onnx; repeat or comma-separate")
    parser.add_argument("--out", metavar="DIR", help="export folder to create (default JOBDIR/export)")
    parser.add_argument("--checkpoint", default="last", help="'last' (default), 'best' or a checkpoint prefix")
    parser.add_argument("--batch", type=int, default=1, help="the TFLite model's fixed batch size (default 1)")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17, at least 15)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    parser.set_defaults(func=run)


def run(args):
    from ..runtime.export import describe_sizes, export_command

    formats = [name.strip() for value in (args.formats or ["savedmodel"]) for name in value.split(",") if name.strip()]
    card = export_command(args.job, out=args.out, formats=formats, encoder_job=args.encoder,
                          checkpoint=args.checkpoint, batch=args.batch, opset=args.opset, overwrite=args.overwrite)
    print(f"exported {', '.join(card['files'])} to {card['out']}")
    print(describe_sizes(card))
    return 0
