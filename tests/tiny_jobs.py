"""Tiny trained jobs shared by the export, projector and directions tests: each is
trained once per test session (one step on the tiny MNIST dataset) and reused."""
from digits_gan_plugin.runtime.model_files import resolve_network
from digits_gan_plugin.runtime.trainer import TrainOptions, train

_JOBS = {}


def tiny_jobs(tmp_path_factory, dataset):
    """{'gan': conditional network-mnist job, 'encoder': network-mnist-encoder job from
    it, 'simple': unconditional network-mnist-simple job} (paths)."""
    if not _JOBS:
        root = tmp_path_factory.mktemp("tiny_jobs")
        for name, network, weights in (("gan", "network-mnist", None),
                                        ("encoder", "network-mnist-encoder", root / "gan"),
                                        ("simple", mnist_simple_from_step_0(root), None)):
            options = TrainOptions(dataset=str(dataset), network=str(network), epochs=1, batch_size=8, max_steps=1,
                                   seed=0, threads=2, weights=str(weights) if weights else None)
            train(options, root / name, progress=False)
            _JOBS[name] = root / name
    return dict(_JOBS)


def mnist_simple_from_step_0(folder):
    """A copy of network-mnist-simple (same file name) whose G trains from step 0: its 300
    D-only steps would leave G untrained in a short test job, which `train` refuses."""
    text = resolve_network("network-mnist-simple").read_text(encoding="utf-8")
    assert text.count("pretrain_steps = 300") == 1
    path = folder / "network-mnist-simple.py"
    path.write_text(text.replace("pretrain_steps = 300", "pretrain_steps = 0"))
    return path
