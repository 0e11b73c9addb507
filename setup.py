from setuptools import setup

setup(
    name="digits-gan",
    version="0.1.0",
    description="GAN model zoo and DIGITS plugins for TensorFlow: datasets, training, latent-space views",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.9",
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
        "digits_gan_plugin": ["templates/*.html", "templates/*/*.html", "static/*"],
        "view_plugins": ["templates/*.html"],
        "digits_gan_plugin.webapp": ["templates/*.html", "static/*"],
    },
    install_requires=[
        "tensorflow>=2.13",
        "tf-slim>=1.1",
        "numpy>=1.23",
        "h5py>=3.7",
        "lmdb>=1.4",
        "protobuf>=3.20",
        "Pillow>=9.1",
        "simplejpeg>=1.6",
        "tqdm>=4.60",
        "threadpoolctl>=3.0",
    ],
    extras_require={
        "examples": ["mlxtend>=0.22"],
        "web": ["Flask>=2.2", "Flask-WTF>=1.1", "WTForms>=3.0", "Jinja2>=3.0"],
        "test": [
            "pytest>=7",
            "mlxtend>=0.22",
            "Flask>=2.2", "Flask-WTF>=1.1", "WTForms>=3.0", "Jinja2>=3.0",
            "playwright>=1.40",
        ],
    },
    entry_points={
        "console_scripts": ["digits-gan=digits_gan_plugin.cli:main"],
        "digits.plugins.data": [
            "mnist = digits_gan_plugin.data_plugins.mnist:DataIngestion",
            "celeba = digits_gan_plugin.data_plugins.celeba:DataIngestion",
            "imagefolder = digits_gan_plugin.data_plugins.imagefolder:DataIngestion",
            "gan-inference = digits_gan_plugin.data_plugins.gan_inference:DataIngestion",
            "gaussian = digits_gan_plugin.data_plugins.gaussian:DataIngestion",
        ],
        "digits.plugins.view": [
            "gan-view = view_plugins.gan:Visualization",
        ],
    },
)
