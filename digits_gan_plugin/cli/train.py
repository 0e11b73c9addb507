"""``digits-gan train``.

No TensorFlow import at module level: ``models`` and ``--help`` stay fast.
"""

from ..errors import TrainingError
from ..options import add_to_argparse
from ..runtime.train_options import OPTIONS_BY_NAME, TRAIN_OPTIONS


def register(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a model-definition file on a dataset",
        description="Train a DIGITS-style model file (UserModel) on a dataset into a job directory. "
                    "--dataset and --network are required unless --resume; with --resume the job's saved "
                    "options apply except those given.",
    )
    parser.add_argument("--out", metavar="JOBDIR", help="job directory to write (not needed by workers K > 0)")
    parser.add_argument("--resume", action="store_true", help="continue JOBDIR from its last checkpoint")
    add_to_argparse(parser, TRAIN_OPTIONS, not_given=True)
    parser.add_argument("--cluster", metavar="FILE",
                        help='multi-worker training: JSON {"worker": ["host:port", ...]}; worker 0 is the chief '
                             "(also read from the TF_CONFIG environment variable); see docs/scaling.md")
    parser.add_argument("--task", metavar="worker:K", help="this process's task in --cluster")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--dry-run", action="store_true", help="build the graph, run no step, print the config")
    parser.set_defaults(func=run_train)


def run_train(args):
    from ..runtime.cluster import read_cluster

    cluster = read_cluster(args.cluster, args.task)
    if cluster is None:
        return _run_chief(args, None)
    try:
        return _run_chief(args, cluster) if cluster.is_chief else _run_worker(args, cluster)
    except TrainingError as error:
        # A session bound to a dead gRPC peer blocks on close, even at interpreter exit.
        import os
        import sys

        print(f"digits-gan: error: {error}", file=sys.stderr, flush=True)
        os._exit(2)


def _run_worker(args, cluster):
    from ..runtime.cluster import run_worker

    if args.dataset is None:
        raise TrainingError(f"--dataset required on worker:{cluster.index} (its own copy of the dataset)")
    batch_size = args.batch_size or OPTIONS_BY_NAME["batch_size"].default
    run_worker(cluster, args.dataset, batch_size, seed=args.seed, threads=args.threads)
    return 0


def _run_chief(args, cluster):
    from ..jobdir import JobPaths, read_config
    from ..runtime.train_options import make_options, options_from_config
    from ..runtime.trainer import describe_checkpoints, train

    if not args.out:
        raise TrainingError("--out required (except for workers K > 0 of a --cluster)")
    given = {option.name: getattr(args, option.name) for option in TRAIN_OPTIONS
             if getattr(args, option.name) is not None}
    resume = args.resume and JobPaths(args.out).config.is_file()
    if args.resume and not resume and not {"dataset", "network"} <= set(given):
        read_config(args.out)  # its error: not a training job
    # a job stopped before its config.json was written starts afresh from the flags given
    options = options_from_config(read_config(args.out), **given) if resume else make_options(given)
    result = train(options, args.out, resume=args.resume, dry_run=args.dry_run, progress=not args.no_progress,
                   cluster=cluster)
    if args.dry_run:
        return 0
    if result.interrupted:
        return 130
    print(f"trained {result.step} steps ({result.epoch} epochs) into {result.job_dir}; "
          f"{describe_checkpoints(result, options.keep)}")
    return 0
