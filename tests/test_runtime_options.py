"""Training options declared once (runtime/train_options.py): the dataclass, its check,
the `train` flags and their help, the web form and recipe argv all come from
TRAIN_OPTIONS. No TensorFlow here."""
import argparse
import dataclasses

import pytest

from digits_gan_plugin.cli import build_parser
from digits_gan_plugin.errors import TrainingError
from digits_gan_plugin.options import add_to_argparse, make_wtform, to_cli_args
from digits_gan_plugin.runtime import train_options as to
from digits_gan_plugin.runtime.train_options import TRAIN_OPTIONS, TrainOptions, make_options, options_from_config


def train_parser():
    return build_parser()._subparsers._group_actions[0].choices["train"]


def test_the_dataclass_fields_and_defaults_are_the_options():
    fields = {field.name: field for field in dataclasses.fields(TrainOptions)}
    assert list(fields) == [option.name for option in TRAIN_OPTIONS]
    options = TrainOptions(dataset="d", network="n")
    for option in TRAIN_OPTIONS:
        if not option.required:
            assert getattr(options, option.name) == option.default
    with pytest.raises(dataclasses.FrozenInstanceError):
        options.epochs = 3  # train() cannot change its caller's options


def test_every_option_is_a_train_flag_whose_help_states_its_default():
    parser = train_parser()
    flags = {action.dest: action for action in parser._actions}
    help_text = " ".join(parser.format_help().split())
    for option in TRAIN_OPTIONS:
        assert option.name in flags, option.name
        assert flags[option.name].default is None  # not given: --resume keeps the job's value
        if option.describe_default() and option.type is not bool:
            assert f"(default: {option.describe_default()})" in help_text, option.name


def test_flags_and_python_values_are_checked_alike():
    parser = train_parser()
    args = parser.parse_args(["--out", "j", "--dataset", "d", "--network", "n", "--epochs", "3",
                              "--step-values", "100,200", "--lr", "0.01"])
    given = {option.name: getattr(args, option.name) for option in TRAIN_OPTIONS
             if getattr(args, option.name) is not None}
    options = make_options(given)
    assert options.epochs == 3 and options.step_values == (100, 200) and options.lr == 0.01
    for flag, value, words in [("--epochs", "0", "below the minimum 1"), ("--lr", "nan", "finite"),
                               ("--lr", "0", "expected a number > 0"), ("--keep", "1.5", "not a valid int"),
                               ("--solver", "adamw", "not one of")]:
        with pytest.raises(SystemExit):
            parser.parse_args(["--out", "j", flag, value])
        name = flag[2:].replace("-", "_")
        with pytest.raises(TrainingError, match=words):
            make_options({"dataset": "d", "network": "n", name: value})
    with pytest.raises(TrainingError, match="--epochs: .*below the minimum"):
        TrainOptions(dataset="d", network="n", epochs=0).check()
    with pytest.raises(TrainingError, match="--dataset and --network required"):
        make_options({})


def test_resume_keeps_the_saved_values_except_those_given():
    config = {"dataset": "d", "network": "n", "epochs": 7, "devices": ["/device:CPU:0"], "step_values": [5],
              "model": {}, "steps_per_epoch": 3}
    options = options_from_config(config, epochs=9, lr=None)
    assert options.epochs == 9 and options.devices == "/device:CPU:0" and options.step_values == (5,)
    assert options.device_spec() == ["/device:CPU:0"]
    assert options.to_config()["step_values"] == [5]


def test_recipes_round_trip_through_the_train_flags():
    parser = train_parser()
    for recipe in (to.MNIST_RECIPE, to.MNIST_ENCODER_RECIPE, to.CELEBA_RECIPE, to.CELEBA_ENCODER_RECIPE):
        args = parser.parse_args(["--out", "j", "--dataset", "d", *to.recipe_args(recipe)])
        for name, value in recipe.items():
            assert getattr(args, name) == value
    with pytest.raises(TrainingError, match="unknown training option"):
        to.recipe_args({"epoch": 3})


def test_the_web_form_accepts_what_the_flags_accept():
    from werkzeug.datastructures import MultiDict

    form_class = make_wtform([option for option in TRAIN_OPTIONS if option.name not in ("dataset", "network")])
    good = form_class(MultiDict({"epochs": "3", "lr": "0.001", "step_values": "10,20", "solver": "sgd"}),
                      meta={"csrf": False})
    assert good.validate(), good.errors
    assert good.data["epochs"] == 3 and good.data["keep"] == 2  # defaults from the options
    bad = form_class(MultiDict({"epochs": "0", "lr": "nan", "step_values": "10,x"}), meta={"csrf": False})
    assert not bad.validate()
    assert {"epochs", "lr", "step_values"} <= set(bad.errors)
    # the form's values become the same flags a person would type
    assert to_cli_args(TRAIN_OPTIONS, {"epochs": 3, "step_values": (10, 20), "digits_semantics": True}) == [
        "--epochs", "3", "--step-values", "10,20", "--digits-semantics"]


def test_not_given_flags_leave_required_options_to_the_caller():
    parser = argparse.ArgumentParser()
    add_to_argparse(parser, TRAIN_OPTIONS, not_given=True)
    assert parser.parse_args([]).dataset is None  # --resume: the job's dataset
    strict = add_to_argparse(argparse.ArgumentParser(), TRAIN_OPTIONS)
    with pytest.raises(SystemExit):
        strict.parse_args([])


def test_debug_shows_the_traceback_and_the_default_is_one_line(tmp_path, capsys):
    from digits_gan_plugin.cli import main

    assert main(["train", "--out", str(tmp_path / "job")]) == 2
    assert capsys.readouterr().err.strip() == "digits-gan: error: --dataset and --network required (unless --resume)"
    with pytest.raises(TrainingError, match="--dataset and --network required"):
        main(["--debug", "train", "--out", str(tmp_path / "job")])
