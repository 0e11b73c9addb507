"""``digits-gan train``.

No TensorFlow import at module level: ``models`` and ``--help`` stay fast.
"""

from ..errors import TrainingError
from ..options import int_list
from ..runtime.schedules import LR_POLICIES, SOLVERS


def register(subparsers):
    parser = subparsers.add_parser(
        "train", help="train a model-definition file on a dataset",
        description="Train a DIGITS-style model file (UserModel) on a dataset into a job directory.",
    )
    parser.add_argument("--dataset", help="dataset directory (DIGITS layout); required unless --resume")
    parser.add_argument("--network", help="model file path or shipped name (see 'digits-gan models')")
    parser.add_argument("--out", metavar="JOBDIR", help="job directory to write (not needed by workers K > 0)")
    parser.add_argument("--epochs", type=int, help="epochs to train in total (default 10)")
    parser.add_argument("--batch-size", type=int, help="images per step (default 64)")
    parser.add_argument("--solver", choices=SOLVERS, help="default optimizer of every loss entry (default adam)")
    parser.add_argument("--lr", type=float, help="base learning rate (default 2e-4)")
    parser.add_argument("--lr-policy", choices=LR_POLICIES, help="learning-rate policy (default fixed)")
    parser.add_argument("--gamma", type=float, help="lr policy gamma (step, multistep, exp, inv, sigmoid)")
    parser.add_argument("--power", type=float, help="lr policy power (inv, poly)")
    parser.add_argument("--step-size", type=int, help="lr policy step size in steps (step, sigmoid)")
    parser.add_argument("--step-values", type=int_list, help="comma-separated steps (multistep)")
    parser.add_argument("--resume", action="store_true", help="continue JOBDIR from its last checkpoint")
    parser.add_argument("--weights", metavar="JOBDIR|CKPT",
                        help="initialize variables matching by name and shape from another job or checkpoint")
    parser.add_argument("--keep", type=int, help="checkpoints to keep (default 5)")
    parser.add_argument("--best-metric", metavar="COLUMN",
                        help="metrics.csv column whose best value is kept in checkpoints/best/")
    parser.add_argument("--best-mode", choices=("min", "max"), help="best = lowest (min, default) or highest")
    parser.add_argument("--snapshot-interval", type=float, metavar="EPOCHS", help="checkpoint every EPOCHS (default 1)")
    parser.add_argument("--summary-interval", type=int, metavar="STEPS",
                        help="write TensorBoard scalars every STEPS (default 50, at most once per epoch)")
    parser.add_argument("--seed", type=int, help="random seed (default: random, saved in config.json)")
    parser.add_argument("--devices", type=_devices,
                        help="N (first N GPUs; without GPUs N logical CPU devices, for testing) or comma-separated "
                             "device names: one tower per device, the batch split evenly (default 1)")
    parser.add_argument("--cluster", metavar="FILE",
                        help='multi-worker training: JSON {"worker": ["host:port", ...]}; worker 0 is the chief '
                             "(also read from the TF_CONFIG environment variable); see docs/scaling.md")
    parser.add_argument("--task", metavar="worker:K", help="this process's task in --cluster")
    parser.add_argument("--max-steps", type=int, help="stop after this many steps in total")
    parser.add_argument("--threads", type=int, help="TensorFlow threads (default: all cores)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--dry-run", action="store_true", help="build the graph, run no step, print the config")
    parser.set_defaults(func=run_train)


_OPTION_FLAGS = ("dataset", "network", "epochs", "batch_size", "solver", "lr", "lr_policy", "gamma", "power",
                 "step_size", "step_values", "keep", "best_metric", "best_mode", "snapshot_interval",
                 "summary_interval", "seed", "devices", "max_steps", "threads", "weights")


def _devices(text):
    return int(text) if text.strip().isdigit() else text


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
    run_worker(cluster, args.dataset, args.batch_size or 64, seed=args.seed, threads=args.threads)
    return 0


def _run_chief(args, cluster):
    from ..jobdir import read_config
    from ..runtime.trainer import TrainOptions, options_from_config, train

    if not args.out:
        raise TrainingError("--out required (except for workers K > 0 of a --cluster)")
    given = {name: getattr(args, name) for name in _OPTION_FLAGS if getattr(args, name) is not None}
    if args.resume:
        options = options_from_config(read_config(args.out), **given)
    else:
        missing = [f"--{name}" for name in ("dataset", "network") if name not in given]
        if missing:
            raise TrainingError(f"{' and '.join(missing)} required (unless --resume)")
        options = TrainOptions(**given)
    result = train(options, args.out, resume=args.resume, dry_run=args.dry_run, progress=not args.no_progress,
                   cluster=cluster)
    if args.dry_run:
        return 0
    if result.interrupted:
        return 130
    print(f"trained {result.step} steps ({result.epoch} epochs) into {result.job_dir}; "
          f"checkpoint {result.checkpoint}")
    return 0
