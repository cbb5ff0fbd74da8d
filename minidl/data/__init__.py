"""Data sets for minidl.

``load_digits`` returns the embedded UCI handwritten digits (8x8, 10 classes,
Alpaydin & Kaynak, CC BY 4.0) with a fixed train/val/test split; it needs no download.
"""
from .digits import DIGITS_CLASSES, load_digits

__all__ = ["load_digits", "DIGITS_CLASSES"]
