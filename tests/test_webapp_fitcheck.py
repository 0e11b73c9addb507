"""The network fit check: a graph-building dry run of each shipped definition on the
dataset, cached in the user's cache folder, run before a training job exists."""
from digits_gan_plugin.runtime.model_files import list_model_definitions
from digits_gan_plugin.webapp.fitcheck import FitChecker, check_one, main, rank, short_reason
from webapp_helpers import user_folders

__all__ = ["user_folders"]


def test_the_mnist_gan_fits_mnist_and_the_face_gan_does_not_with_the_reason(tiny_mnist_dataset):
    definitions = list_model_definitions()
    fits = check_one(tiny_mnist_dataset, definitions["network-mnist"])
    assert fits["fits"] and fits["facts"]["conditional"] and fits["facts"]["inference_input"] == "z"
    misfit = check_one(tiny_mnist_dataset, definitions["network-celebA"])
    assert not misfit["fits"]
    assert misfit["reason"] == ("this network makes images whose height and width are multiples of 16; "
                                "the dataset has 28 x 28 images")
    assert rank({"network-celebA": misfit, "network-mnist": fits}, {"num_classes": 10})[0] == "network-mnist"


def test_short_reasons_keep_what_the_row_does_not_say_already():
    network = "/x/model_definitions/network-mine.py"
    assert short_reason("digits-gan: error: /x/model_definitions/network-mine.py:12: TypeError while building the "
                        "train tower on 8x8x1 images with no labels: bad", network) == "bad"
    assert short_reason("digits-gan: error: /x/model_definitions/network-mine.py: loss entry 'g' never runs",
                        network) == "loss entry 'g' never runs"
    assert short_reason("digits-gan: error: ValueError while computing the gradients of loss entry 'g' on 8x8x1 "
                        "images with no labels: odd", network).startswith("ValueError while computing")


def test_results_are_cached_in_the_user_cache_folder(tiny_mnist_dataset, tmp_path):
    checker = FitChecker()
    network = str(list_model_definitions()["network-mnist-simple"])
    assert main([str(checker.folder), str(tiny_mnist_dataset), network]) == 0  # what the background process runs
    cached = list((tmp_path / "xdg-cache" / "digits-gan" / "network-fit").glob("*.json"))
    assert len(cached) == 1
    result = checker.results(tiny_mnist_dataset, [network])[network]
    assert result["fits"] and checker.check_now(tiny_mnist_dataset, network) == result
    assert not checker.pending(tiny_mnist_dataset)  # nothing started: all cached
