"""Keras -> TFLite conversion with calibration, parity checks and a provenance manifest (imports TensorFlow
lazily: importing this package is cheap, calling :func:`convert` needs the ``train`` extra)."""

from toolkit.convert.config import ConvertConfig
from toolkit.convert.converter import ConvertResult, convert, manifest_path_for

__all__ = ["ConvertConfig", "ConvertResult", "convert", "manifest_path_for"]
