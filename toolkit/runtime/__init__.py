"""Device runtime: verify and load ``.tflite`` files and run them (numpy + ai-edge-litert only)."""

from toolkit.runtime.backends import Backend, select_backend
from toolkit.runtime.runner import Runner, TensorSpec, check_model, default_threads
from toolkit.runtime.tflite_file import ModelFile, read_model_file

__all__ = [
    "Backend",
    "ModelFile",
    "Runner",
    "TensorSpec",
    "check_model",
    "default_threads",
    "read_model_file",
    "select_backend",
]
