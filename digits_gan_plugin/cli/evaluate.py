"""`digits-gan evaluate JOBDIR`: sample quality of a conditional MNIST-family job.

No TensorFlow at import time: evaluation.evaluate imports it when it runs.
"""


def register(subparsers):
    parser = subparsers.add_parser(
        "evaluate",
        help="score a conditional MNIST-family job (accuracy, MNIST score, Frechet distance, diversity)",
        description="Generate samples from a conditional MNIST-family job and judge them with a small CNN "
                    "classifier trained once on the job's dataset (cached under $DIGITS_GAN_CACHE, default "
                    "~/.cache/digits-gan). Writes JOBDIR/eval.json.",
    )
    parser.add_argument("job_dir", metavar="JOBDIR", help="training job directory (with config.json)")
    parser.add_argument("--samples", type=int, default=10000,
                        help="generated samples, split equally over the classes (default 10000)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the z vectors (default 0)")
    parser.add_argument("--checkpoint", choices=("best", "last"),
                        help="checkpoint to generate from (default: best when the job was trained with "
                             "--best-metric, else last)")
    parser.add_argument("--no-progress", dest="progress", action="store_false", help="hide progress bars")
    parser.set_defaults(func=run)


def run(args):
    from ..evaluation import evaluate
    from ..jobdir import JobPaths

    result = evaluate(args.job_dir, samples=args.samples, seed=args.seed, checkpoint=args.checkpoint,
                      progress=args.progress)
    print(result["summary"])
    print(f"wrote {JobPaths(args.job_dir).eval_json}")
    return 0
