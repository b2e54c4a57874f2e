"""Inspect ``.tflite`` files without running them: I/O, quantization, op dtypes, float islands, MACs."""

from toolkit.inspect.analysis import analyze, non_int8_ops, op_histogram, precision

__all__ = ["analyze", "non_int8_ops", "op_histogram", "precision"]
