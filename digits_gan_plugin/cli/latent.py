"""`digits-gan latent ...` (never imports TensorFlow).

    digits-gan latent tasks
    digits-gan latent <task> --job JOBDIR [task options] [--seed N] --out DIR
"""
from .. import latent
from . import latent_model
from .. import options as plugin_options
from ..data_plugins.gan_inference import DataIngestion as GanInference
from ..digits_api import TEST_DB

def cmd_tasks(args):
    for task in latent.TASKS.values():
        print(f"{task.name:12s} {task.description}")
    return 0


def cmd_task(args):
    from ..dataset_io import write_dataset

    names = {option.name for option in GanInference.OPTIONS}
    kwargs = {name: value for name, value in vars(args).items() if name in names}
    plugin = GanInference(**kwargs)
    meta = plugin.latent_meta()
    write_dataset(plugin, args.out, stages=[TEST_DB], workers=args.workers, overwrite=args.overwrite,
                  extra_meta={"latent": meta}, progress=not args.quiet)
    shape = f"grid {meta['grid'][0]}x{meta['grid'][1]}, " if meta["grid"] else ""
    frames = f"{meta['frames']} frames, " if meta["frames"] else ""
    what = "images" if meta["task"] == "encode-list" else "vectors"
    print(f"{meta['count']} {what} ({shape}{frames}seed {meta['seed']}) written to {args.out}")
    print(f"next: digits-gan infer --job {args.job} --dataset {args.out}")
    return 0


def register(subparsers):
    parser = subparsers.add_parser("latent", help="build an inference dataset that walks a GAN's latent space",
                                   description="Build a DIGITS inference dataset (test_db) of z vectors for a "
                                               "trained job: feed it to `digits-gan infer`.")
    tasks = parser.add_subparsers(dest="task", metavar="TASK", required=True)
    tasks.add_parser("tasks", help="list the tasks").set_defaults(func=cmd_tasks)
    for task in latent.TASKS.values():
        task_parser = tasks.add_parser(task.name, help=task.description, description=task.func.__doc__)
        plugin_options.add_to_argparse(task_parser, GanInference.task_command_options(task.name))
        task_parser.add_argument("--out", required=True, metavar="DIR", help="inference dataset directory to create")
        task_parser.add_argument("--workers", type=plugin_options.positive_int, default=1, help="encoding processes (default: 1)")
        task_parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
        task_parser.add_argument("--quiet", action="store_true", help="no progress bar")
        task_parser.set_defaults(func=cmd_task)
    latent_model.register(tasks)  # project, directions: they run the trained generator
