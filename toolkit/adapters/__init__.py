"""Pre- and post-processing, one home for each: small stateless functions between images / interpreter
outputs and typed results (pycoral's adapters are the model).

* :mod:`~toolkit.adapters.image` -- letterbox, resize, BGR -> RGB, pixels into a model's input tensor
* :mod:`~toolkit.adapters.boxes` -- box area, IoU, centre/size conversion, (class-wise) NMS
* :mod:`~toolkit.adapters.detect` -- our detector's heatmap + boxes -> :class:`~toolkit.adapters.detect.Detection`
* :mod:`~toolkit.adapters.segment` -- class scores -> labels on the frame; the segmenter's class names
* :mod:`~toolkit.adapters.behaviour` -- tracks into and out of the behaviour model's heading frame
* :mod:`~toolkit.adapters.third_party` -- declared adapters for models that are not ours (SSD, DeepLab)

Training, calibration, evaluation and the camera pipeline call these same functions, so a model sees the same
pixels and its outputs are read the same way everywhere. numpy and OpenCV only: this runs on a device install.
"""
