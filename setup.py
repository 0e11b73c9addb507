from setuptools import setup

PLUGIN_LAYER = [
    "numpy>=1.17",
    "lmdb>=1.0",
    "protobuf",
    "Pillow>=9.1",
    "Jinja2",
    "simplejpeg>=1.6",
    "tqdm>=4.60",
    "threadpoolctl>=3.0",
]
# The standalone runtime: training, inference, evaluation, charts, TensorBoard, the
# latent directions' InterFaceGAN boundaries (scikit-learn).
RUNTIME = ["tensorflow>=2.13", "tf-slim>=1.1", "tensorboard>=2.13", "matplotlib>=3.5", "h5py>=3.7",
           "scikit-learn>=1.0"]
# The web UI (and the DIGITS-host emulation in the tests).
WEB = ["Flask>=2.2", "Flask-WTF>=1.1", "WTForms>=3.0", "Jinja2>=3.0"]
# `digits-gan export --format onnx` (and reading the ONNX file back in the tests).
EXPORT = ["tf2onnx>=1.16", "onnxruntime>=1.17"]

setup(
    name="digits-gan",
    version="0.1.0",
    description="GAN model zoo and DIGITS plugins for TensorFlow: datasets, training, latent-space views",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    # The plugin layer (data and view plugins, dataset I/O, latent math, forms) runs on the
    # Python 3.8 of NVIDIA's last DIGITS containers; the standalone runtime needs 3.9+.
    python_requires=">=3.8",
    packages=[
        "digits_gan_plugin",
        "digits_gan_plugin.cli",
        "digits_gan_plugin.data_plugins",
        "digits_gan_plugin.runtime",
        "digits_gan_plugin.webapp",
        "model_definitions",
        "view_plugins",
    ],
    package_data={
        "model_definitions": ["*.py"],
        "digits_gan_plugin": ["templates/*.html", "templates/*/*.html", "templates/*/*.css", "static/*"],
        "digits_gan_plugin.webapp": ["templates/*.html", "static/*", "static/*/*", "static/*/*/*"],
    },
    # What the plugins need inside an existing DIGITS, without touching its TensorFlow,
    # Flask, WTForms or protobuf: those four are not pinned here (protobuf: any 3.x-7.x
    # runtime works with proto.py; Jinja2 and WTForms come with DIGITS' Flask).
    install_requires=PLUGIN_LAYER,
    extras_require={
        "runtime": RUNTIME,
        "web": RUNTIME + WEB,
        "examples": RUNTIME + WEB + ["mlxtend>=0.22"],
        "export": RUNTIME + EXPORT,
        "test": RUNTIME + WEB + EXPORT + ["mlxtend>=0.22", "pytest>=7", "pytest-xdist>=3.0", "playwright>=1.40", "vermin>=1.5"],
    },
    entry_points={
        "console_scripts": ["digits-gan=digits_gan_plugin.cli:main"],
        "digits.plugins.data": [
            "mnist = digits_gan_plugin.data_plugins.mnist:DataIngestion",
            "celeba = digits_gan_plugin.data_plugins.celeba:DataIngestion",
            "imagefolder = digits_gan_plugin.data_plugins.imagefolder:DataIngestion",
            "gan-inference = digits_gan_plugin.data_plugins.gan_inference:DataIngestion",
            "gaussian = digits_gan_plugin.data_plugins.gaussian:DataIngestion",
            "synthetic = digits_gan_plugin.data_plugins.synthetic:DataIngestion",
        ],
        "digits.plugins.view": [
            "gan-view = view_plugins.gan:Visualization",
        ],
    },
)
