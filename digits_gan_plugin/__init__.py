"""digits-gan: GAN data plugins, model zoo, training runtime and view plugins for
TensorFlow, usable inside NVIDIA DIGITS or on their own.

Importing this package (and every module that does not train or infer) must not import
TensorFlow: dataset building, listing and ``--help`` answer in well under a second.
"""
__version__ = "0.1.0"
