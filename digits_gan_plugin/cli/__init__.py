"""``digits-gan``: the single command-line entry point.

Each command group has one module in this package; it exposes
``register(subparsers)``, which adds its parser(s) and sets ``func(args) -> int``.
Command modules must not import TensorFlow at module level: ``--help``, listing and
dataset building answer in well under a second.
"""
import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading

from .. import __version__, runtime
from ..errors import DigitsGanError, os_error_line

COMMAND_MODULES = [
    "digits_gan_plugin.cli.attributes",
    "digits_gan_plugin.cli.dataset",
    "digits_gan_plugin.cli.evaluate",
    "digits_gan_plugin.cli.export",
    "digits_gan_plugin.cli.gallery",
    "digits_gan_plugin.cli.infer",
    "digits_gan_plugin.cli.jobs",
    "digits_gan_plugin.cli.judge",
    "digits_gan_plugin.cli.latent",
    "digits_gan_plugin.cli.serve",
    "digits_gan_plugin.cli.train",
]


def build_parser():
    parser = argparse.ArgumentParser(
        prog="digits-gan",
        description="Build GAN datasets, train DIGITS-style model definitions, explore latent spaces.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    parser.add_argument("--verbose", action="store_true",
                        help="let TensorFlow's start-up and C++ log lines through (also DIGITS_GAN_VERBOSE=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module_name in COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        os.environ[runtime.VERBOSE_ENV] = "1"  # this process and the ones it starts
    # TensorFlow's C++ start-up chatter (CUDA probing, CPU feature notes) buries our own
    # progress and error lines (see runtime.quiet_tensorflow).
    runtime.quiet_tensorflow()
    with _terminate_as_interrupt() as terminated:
        code = _run(args)
    return 128 + signal.SIGTERM if code == 130 and terminated else code


def _run(args):
    try:
        return args.func(args) or 0
    except DigitsGanError as error:
        if args.debug:
            raise
        print(f"digits-gan: error: {' '.join(str(error).split())}", file=sys.stderr)  # one line, always
        return 2
    except OSError as error:  # a read or write no command put into words (a full disk, a file removed meanwhile)
        if args.debug:
            raise
        print(f"digits-gan: error: {os_error_line(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("digits-gan: interrupted", file=sys.stderr)
        return 130
    except MemoryError as error:  # numpy's names the size and shape it could not allocate
        if args.debug:
            raise
        print(f"digits-gan: error: out of memory ({str(error) or 'an allocation failed'}); ask for fewer images, "
              f"a smaller batch or grid", file=sys.stderr)
        return 2


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM (kill, docker stop, a batch scheduler's time limit) handled as Ctrl-C: a
    training job writes its checkpoint, a dataset build removes its staging folder. Yields
    a list that holds True once SIGTERM came (the exit code is then 143, not 130). Only
    in the main thread, where Python runs signal handlers."""
    terminated = []
    if threading.current_thread() is not threading.main_thread():
        yield terminated
        return

    def interrupt(signum, frame):
        terminated.append(True)
        raise KeyboardInterrupt()

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield terminated
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
