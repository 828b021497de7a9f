"""Calibration: INT8 and FP16 models from an FP32 model, behind an accuracy gate.

* :mod:`~edgerestore.calibration.frames`: calibration frames from a folder or a video;
* :mod:`~edgerestore.calibration.samples`: degrading them for the model's task and
  recording the runtime's exact feeds;
* :mod:`~edgerestore.calibration.quantize`: INT8 QDQ with ONNX Runtime's quantizer,
  settings per target (``cpu``, ``tensorrt``);
* :mod:`~edgerestore.calibration.fp16`: FP16 conversion;
* :mod:`~edgerestore.calibration.gate`: the accuracy gate;
* :mod:`~edgerestore.calibration.convert`: the whole ``edgerestore calibrate`` job.

Nothing heavy is imported here; onnx and onnxruntime are imported on first use.
See docs/calibration.md.
"""
