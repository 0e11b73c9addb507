"""``digits-gan jobs [ROOT...]``: the datasets and training jobs under some folders, as
the web UI lists them (the same job store: found by their own metadata)."""
import os


def register(subparsers):
    parser = subparsers.add_parser(
        "jobs", help="list the datasets and training jobs under folders",
        description="List every dataset (dataset.json) and training job (config.json) under the given folders "
                    "(default: the current folder), with their inference results; the web UI lists the same.")
    parser.add_argument("roots", nargs="*", default=["."], metavar="ROOT", help="folders to look in (default: .)")
    parser.set_defaults(func=run)


def run(args):
    from .. import jobdir
    from ..errors import DataError
    from ..webapp.store import scan

    for root in args.roots:
        if not os.path.isdir(root):
            raise DataError(f"{root}: no such folder")
    problems = []
    items = scan(args.roots, problems)
    if not items and not problems:
        print(f"no datasets or training jobs under {', '.join(args.roots)}")
        return 0
    for kind, title in (("dataset", "datasets"), ("model", "training jobs"), ("inference", "inference results")):
        members = [item for item in items if item.kind == kind]
        if members:
            print(f"{title}:")
        for item in members:
            print(f"  {item.id}  {_describe(item, jobdir):40s}  {item.path}")
    if problems:
        print("not listed (unreadable):")
        for problem in problems:
            print(f"  {problem}")
    return 0


def _describe(item, jobdir):
    if item.kind == "dataset":
        counts = ", ".join(f"{stage} {info.get('count')}" for stage, info in item.meta["stages"].items())
        return f"{item.meta.get('plugin_id', '?')}: {counts}"
    if item.kind == "model":
        step = jobdir.latest_step(item.path)
        network = os.path.basename(str(item.meta.get("network", "?")))
        return f"{network}, " + (f"step {step}" if step is not None else "no checkpoint")
    return f"{item.meta.get('task') or 'result'}"
