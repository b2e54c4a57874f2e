"""edge toolkit: Keras -> int8 TFLite -> edge devices, verified and benchmarked on the way.

The package is laid out as the pipeline it implements::

    data -> models -> train -> convert -> runtime -> pipeline / bench
                                            \\-> inspect, eval, deploy

Only ``train``, ``convert`` and the Keras side of ``models`` / ``eval`` import TensorFlow; everything a device
needs (``runtime``, ``inspect``, ``pipeline``, ``bench``) runs on numpy, ai-edge-litert and OpenCV.
"""

__version__ = "0.1.0"
