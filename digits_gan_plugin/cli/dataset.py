"""`digits-gan dataset ...`: build, inspect and list datasets (never imports TensorFlow).

    digits-gan dataset create <plugin> [plugin options] --out DIR [--encoding png]
                                       [--workers N] [--overwrite]
    digits-gan dataset info DIR [--grid PATH]
    digits-gan dataset plugins
"""
import os

from .. import options as plugin_options
from ..data_plugins import available_plugins

GRID_SAMPLES = 100


def _plugin_kwargs(plugin, args):
    return {option.name: getattr(args, option.name) for option in getattr(plugin, "OPTIONS", [])}


def cmd_create(args):
    from ..dataset_io import write_dataset

    plugin = args.plugin_class(**_plugin_kwargs(args.plugin_class, args))
    meta = write_dataset(plugin, args.out, encoding=args.encoding, workers=args.workers,
                         overwrite=args.overwrite, progress=not args.quiet)
    for stage, stage_meta in meta["stages"].items():
        print(f"{stage}: {stage_meta['count']} entries, feature {'x'.join(map(str, stage_meta['feature_shape']))} "
              f"{stage_meta['feature_dtype']}")
    skipped = sum(stage_meta["skipped"] for stage_meta in meta["stages"].values())
    if skipped:
        print(f"skipped {skipped} unreadable entries, listed in {os.path.join(args.out, 'skipped.txt')}")
    print(f"dataset written to {args.out}")
    return 0


def _describe_labels(meta, label_shape):
    names = meta.get("label_names")
    named = f": {', '.join(names)}" if names else ""
    if label_shape is None:
        return "none"
    if label_shape == []:
        classes = meta.get("num_classes")
        return f"class index, {classes} classes{named}" if classes else f"class index{named}"
    return f"float array {'x'.join(map(str, label_shape))}{named}"


def cmd_info(args):
    from ..dataset_io import DatasetReader
    from ..imaging import make_grid, save_png, to_uint8

    reader = DatasetReader(args.dir)
    meta = reader.meta
    origin = f"plugin {meta.get('plugin_id')}" if meta.get("plugin_id") else meta.get("written_by", "no plugin recorded")
    print(f"dataset {os.path.abspath(args.dir)} ({origin}, encoding {meta.get('encoding', 'none')})")
    print(f"labels: {_describe_labels(meta, reader.label_shape(reader.stages[0]))}")
    for stage in reader.stages:
        stage_meta = meta["stages"][stage]
        if reader.has_mean(stage):
            mean = reader.mean(stage)
            channel_means = ", ".join(f"{value:.2f}" for value in mean.reshape(-1, mean.shape[-1]).mean(axis=0))
        else:
            channel_means = "none (no mean file)"
        print(f"{stage}: {stage_meta['count']} entries, feature C,H,W {stage_meta['feature_shape']} "
              f"{stage_meta['feature_dtype']}, mean per channel: {channel_means}")
        if stage_meta.get("skipped"):
            print(f"  {stage_meta['skipped']} entries were skipped (see skipped.txt)")
    stage = reader.stages[0]
    if meta["stages"][stage]["feature_dtype"] != "uint8" or reader.feature_shape[0] not in (1, 3):
        print("no sample grid: features are not images")
        return 0
    batch, _ = next(reader.batches(stage, min(GRID_SAMPLES, reader.count(stage)), shuffle=False,
                                   repeat=False, drop_remainder=False))
    grid_path = args.grid or os.path.join(args.dir, "samples.png")
    save_png(make_grid(to_uint8(batch)), grid_path)
    print(f"grid of the first {len(batch)} {stage} samples: {grid_path}")
    return 0


def cmd_plugins(args):
    for plugin_id, plugin in sorted(available_plugins().items()):
        print(f"{plugin_id:16s} {plugin.get_title()}")
    return 0


def register(subparsers):
    parser = subparsers.add_parser("dataset", help="build, inspect and list DIGITS-layout datasets")
    commands = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)

    create = commands.add_parser("create", help="build a dataset with a data plugin")
    plugins = create.add_subparsers(dest="plugin", metavar="PLUGIN", required=True)
    for plugin_id, plugin in sorted(available_plugins().items()):
        plugin_parser = plugins.add_parser(plugin_id, help=plugin.get_title(), description=plugin.get_title())
        plugin_options.add_to_argparse(plugin_parser, getattr(plugin, "OPTIONS", []))
        plugin_parser.add_argument("--out", required=True, metavar="DIR", help="dataset folder to create")
        plugin_parser.add_argument("--encoding", choices=["none", "png"], default="none",
                                   help="store uint8 features raw (default) or as PNG files")
        plugin_parser.add_argument("--workers", type=plugin_options.positive_int, default=None,
                                   help="encoding processes (default: all cores)")
        plugin_parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset folder")
        plugin_parser.add_argument("--quiet", action="store_true", help="no progress bar")
        plugin_parser.set_defaults(func=cmd_create, plugin_class=plugin)

    info = commands.add_parser("info", help="counts, shapes, labels, mean and a sample grid of a dataset")
    info.add_argument("dir", metavar="DIR", help="dataset folder")
    info.add_argument("--grid", metavar="PATH", help="where to write the PNG grid (default: DIR/samples.png)")
    info.set_defaults(func=cmd_info)

    listing = commands.add_parser("plugins", help="list the available data plugins")
    listing.set_defaults(func=cmd_plugins)

