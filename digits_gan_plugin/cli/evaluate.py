"""`digits-gan evaluate JOBDIR`: sample quality of a generator job, judged by a classifier
of its dataset's labels (see `digits-gan judge`), and attribute-edit rates.

No TensorFlow at import time: evaluation.evaluate imports it when it runs.
"""
from ..options import seed_int
from .judge import add_judge_options, judge_settings


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="score a generator job: Frechet distance, KID, precision/recall, density/coverage "
             "(and class accuracy, MNIST score, attribute-edit rates where they apply)",
        description="Generate samples from a generator job and judge them against real held-out images with a "
                    "small CNN trained once on the job dataset's own labels (classes or attributes; cached under "
                    "$DIGITS_GAN_CACHE, default ~/.cache/digits-gan; see `digits-gan judge`). "
                    "Writes JOBDIR/eval.json.",
    )
    parser.add_argument("job_dir", metavar="JOBDIR", help="training job directory (with config.json)")
    parser.add_argument("--samples", type=int, default=10000,
                        help="generated samples, split equally over the classes of a conditional model "
                             "(default 10000)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed of the z vectors (default 0)")
    parser.add_argument("--checkpoint", choices=("best", "last"),
                        help="checkpoint to generate from (default: best when the job was trained with "
                             "--best-metric, else last)")
    parser.add_argument("--attributes", metavar="VECTORS.npz",
                        help="attribute vectors (from `digits-gan attributes`): report, for each one the judge "
                             "has a label for, the share of samples whose probability of it rises when the vector "
                             "is added to z, and how much the other attributes move")
    parser.add_argument("--edit-samples", type=int, default=1000, metavar="N",
                        help="z's edited per attribute vector (default 1000)")
    parser.add_argument("--edit-scale", type=float, default=1.0, metavar="S",
                        help="multiple of each attribute vector added to z (default 1)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    add_judge_options(parser)
    parser.set_defaults(func=run)


def run(args):
    from ..evaluation import evaluate
    from ..jobdir import JobPaths

    result = evaluate(args.job_dir, samples=args.samples, seed=args.seed, checkpoint=args.checkpoint,
                      classifier_settings=judge_settings(args), progress=args.progress,
                      attributes=args.attributes, edit_samples=args.edit_samples, edit_scale=args.edit_scale)
    print(result["summary"])
    print(f"wrote {JobPaths(args.job_dir).eval_json}")
    return 0
