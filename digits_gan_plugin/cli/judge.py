"""`digits-gan judge train|show DATASET`: the judge classifier of a dataset, trained on its
own labels (classes or attributes) and cached by the dataset's fingerprint; `evaluate`
uses the same cache entry when given the same --judge-* options.

No TensorFlow at import time: evaluation imports it when a judge is trained or loaded.
"""


def add_judge_options(parser):
    """The judge's training budget (part of its cache key), shared with `evaluate`."""
    from ..evaluation import DEFAULT_CLASSIFIER

    group = parser.add_argument_group("judge", "the judge's training budget (part of its cache key: "
                                               "judge train and evaluate find one judge with the same values)")
    group.add_argument("--judge-epochs", type=int, default=DEFAULT_CLASSIFIER.epochs, metavar="N",
                       help=f"passes over the train images (default {DEFAULT_CLASSIFIER.epochs})")
    group.add_argument("--judge-steps", type=int, metavar="N",
                       help="stop after N batches (default: when the epochs are done)")
    group.add_argument("--judge-images", type=int, default=DEFAULT_CLASSIFIER.max_images, metavar="N",
                       help=f"train images used at most, a seeded random subset of a larger split "
                            f"(default {DEFAULT_CLASSIFIER.max_images})")


def judge_settings(args):
    """The ClassifierSettings of add_judge_options' flags (checked)."""
    from dataclasses import replace

    from ..evaluation import DEFAULT_CLASSIFIER

    settings = replace(DEFAULT_CLASSIFIER, epochs=args.judge_epochs, max_steps=args.judge_steps,
                       max_images=args.judge_images)
    return settings.check({"epochs": "--judge-epochs", "max_steps": "--judge-steps", "max_images": "--judge-images"})


def register(subparsers):
    parser = subparsers.add_parser(
        "judge", help="train or show the judge classifier of a labelled dataset (for evaluate)",
        description="A small CNN fitted to a dataset's own labels: class labels (MNIST, imagefolder class "
                    "sub-folders: softmax) or attribute labels (CelebA's 40: one sigmoid each), cached under "
                    "$DIGITS_GAN_CACHE (default ~/.cache/digits-gan) by the dataset's fingerprint.")
    commands = parser.add_subparsers(dest="judge_command", metavar="ACTION", required=True)
    train = commands.add_parser("train", help="train the judge (or load it from the cache) and report its "
                                              "held-out accuracy")
    show = commands.add_parser("show", help="report the cached judge, per label; never trains")
    for action, func in ((train, run_train), (show, run_show)):
        action.add_argument("dataset", metavar="DATASET", help="dataset folder with labelled train_db and val_db")
        add_judge_options(action)
        action.set_defaults(func=func)
    train.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")


def run_train(args):
    from ..evaluation import load_or_train_classifier

    judge = load_or_train_classifier(args.dataset, judge_settings(args), progress=args.progress)
    print("\n".join(judge.describe()))
    print("trained now" if judge.trained_now else "found in the cache (unchanged dataset and settings)")
    return 0


def run_show(args):
    from ..dataset_io import DatasetReader
    from ..errors import DataError
    from ..evaluation import cached_classifier, dataset_labels

    dataset_labels(DatasetReader(args.dataset))
    judge = cached_classifier(args.dataset, judge_settings(args))
    if judge is None:
        raise DataError(f"{args.dataset}: no judge cached for this dataset and these settings; "
                        f"run `digits-gan judge train {args.dataset}` (with the same --judge-* options)")
    print("\n".join(judge.describe()))
    if judge.label_accuracy:
        width = max(len(name) for name in judge.label_names)
        print("held-out accuracy per attribute:")
        print("\n".join(f"  {name:<{width}}  {accuracy:.2%}"
                        for name, accuracy in zip(judge.label_names, judge.label_accuracy)))
    return 0
