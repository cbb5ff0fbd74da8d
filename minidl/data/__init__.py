"""Data sets for minidl.

``load_digits`` returns the embedded UCI handwritten digits (8x8, 10 classes,
Alpaydin & Kaynak, CC BY 4.0) with a fixed train/val/test split; it needs no download.
``load_cifar10`` reads the standard CIFAR-10 python batches from disk (never downloads).
``transforms`` holds per-channel normalisation and training augmentation for a Solver.
"""
from . import transforms
from .cifar10 import CIFAR10_CLASSES, load_cifar10
from .digits import DIGITS_CLASSES, load_digits

__all__ = ["load_digits", "DIGITS_CLASSES", "load_cifar10", "CIFAR10_CLASSES", "transforms"]
