"""SSD post-processing as a layer: decode, score threshold, per-class NMS, top-k.

``SSDPostprocess`` takes the raw predictions of ``SSDLite`` and returns, for each image,
the ``max_detections`` best detections, padded:

* ``"boxes"``: float32 ``(batch, max_detections, 4)`` in ``bounding_box_format`` (pixels
  of the model input for the non-relative formats), -1 after the last detection;
* ``"labels"``: int32 ``(batch, max_detections)``: class ids in ``[0, num_classes)`` (the
  background is dropped), -1 after the last detection;
* ``"scores"``: float32 ``(batch, max_detections)``: softmax probabilities, sorted
  descending, -1 after the last detection;
* ``"num_detections"``: int32 ``(batch,)``.

Algorithm (per image): softmax over the ``num_classes + 1`` logits; the
``pre_nms_top_k`` best (default box, class) pairs over all classes; boxes decoded with
``BoxCoder`` and clipped to the image; non-maximum suppression per class with
``iou_threshold`` and ``score_threshold``, done as one NMS in which each class's boxes are
shifted by twice the class id (boxes of different classes never overlap, so this is exactly
per-class NMS); the ``max_detections`` best kept.

TFLite: the layer uses only ops with TFLite builtin kernels (SOFTMAX, TOPK_V2, GATHER,
FLOOR_DIV/FLOOR_MOD, EXP, NON_MAX_SUPPRESSION_V5, ...), so the Keras layer and the
exported file run the same algorithm (``export.to_tflite(..., postprocess=layer)``). The
alternative, TFLite's ``TFLite_Detection_PostProcess`` custom op (reached through a
``tf.function(experimental_implements=...)`` placeholder and ``allow_custom_ops``), has no
Keras counterpart: the Keras model would need a separate re-implementation of its decoding
and NMS whose results could differ from the file's, and the file would need a runtime with
that custom op registered. The images of a batch are processed one by one (a static loop
when the batch size is known, as in TFLite export; ``tf.map_fn`` otherwise).

References: SSD (arXiv:1512.02325), SSDLite (arXiv:1801.04381); torchvision's SSD
post-processing uses score threshold 0.001, NMS IoU 0.55 and 300 detections for COCO.

Example:
    >>> layer = SSDPostprocess.from_model(model, max_detections=10)
    >>> detections = layer(model(images))
    >>> detections["boxes"].shape
    TensorShape([8, 10, 4])
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_mobilenets import _checks
from keras_mobilenets.detection.anchors import (
    DEFAULT_ASPECT_RATIOS, MAX_RATIO, MIN_RATIO, DefaultBoxes,
)
from keras_mobilenets.detection.boxes import VARIANCE, BoxCoder, check_format, from_rel_xyxy

PADDING = -1
OUTPUT_KEYS = ("boxes", "labels", "scores", "num_detections")


@keras.saving.register_keras_serializable(package="keras_mobilenets")
class SSDPostprocess(keras.layers.Layer):
    """Turns SSD raw predictions into padded detections (see the module docstring).

    Args:
        image_shape: ``(rows, cols)`` of the model input (for pixel box formats).
        feature_map_shapes: ``(rows, cols)`` per prediction map (``DefaultBoxes``).
        aspect_ratios: As for ``DefaultBoxes``.
        min_ratio: As for ``DefaultBoxes``.
        max_ratio: As for ``DefaultBoxes``.
        clip: As for ``DefaultBoxes``.
        variance: The box coder's variances.
        score_threshold: Minimum class probability of a detection, in [0, 1].
        iou_threshold: NMS IoU threshold, in (0, 1].
        max_detections: Detections per image (>= 1).
        pre_nms_top_k: (default box, class) candidates per image before NMS (>= 1).
        bounding_box_format: Format of the output boxes (``boxes.BOX_FORMATS``).
        **kwargs: Layer arguments (``name``, ...).

    Call arguments:
        predictions: ``{"boxes": (batch, A, 4), "classes": (batch, A, C + 1)}`` or the
            list ``[boxes, classes]`` (a tfmot QAT model's output order).

    Raises:
        ValueError: On an invalid argument, or predictions whose number of default
            boxes differs from ``feature_map_shapes``.
        RuntimeError: With another Keras backend than TensorFlow (the layer runs
            TensorFlow's non-maximum suppression).

    Example:
        >>> layer = SSDPostprocess(image_shape=(64, 64), feature_map_shapes=[[4, 4], [2, 2]])
        >>> layer.get_config()["max_detections"]
        100
    """

    def __init__(self, image_shape, feature_map_shapes, aspect_ratios=DEFAULT_ASPECT_RATIOS,
                 min_ratio=MIN_RATIO, max_ratio=MAX_RATIO, clip=True, variance=VARIANCE,
                 score_threshold=0.01, iou_threshold=0.55, max_detections=100, pre_nms_top_k=300,
                 bounding_box_format="xyxy", **kwargs):
        _checks.require_tensorflow_backend("detection.SSDPostprocess (TensorFlow's NMS)")
        super().__init__(**kwargs)
        self.default_boxes = DefaultBoxes(
            tuple(tuple(s) for s in feature_map_shapes), aspect_ratios, min_ratio, max_ratio, clip
        )
        if (not isinstance(image_shape, (tuple, list))
                or _checks.int_pair(image_shape[:2]) is None):
            raise ValueError(f"`image_shape` must be (rows, cols) ints >= 1, got {image_shape!r}.")
        self.coder = BoxCoder(variance)
        _checks.check_number("score_threshold", score_threshold, low=0, high=1)
        _checks.check_number("iou_threshold", iou_threshold, low=0, high=1, low_open=True)
        _checks.check_positive_int("max_detections", max_detections)
        _checks.check_positive_int("pre_nms_top_k", pre_nms_top_k)
        check_format(bounding_box_format)
        self.image_shape = image_shape
        self.feature_map_shapes = feature_map_shapes
        self.aspect_ratios = aspect_ratios
        self.min_ratio = min_ratio
        self.max_ratio = max_ratio
        self.clip = clip
        self.variance = variance
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.pre_nms_top_k = pre_nms_top_k
        self.bounding_box_format = bounding_box_format
        self._anchors = self.default_boxes.boxes()

    @classmethod
    def from_model(cls, model, aspect_ratios=DEFAULT_ASPECT_RATIOS, min_ratio=MIN_RATIO,
                   max_ratio=MAX_RATIO, clip=True, **kwargs):
        """The post-processing of an ``SSDLite`` model (default boxes read from it).

        Args:
            model: A model built by ``SSDLite`` (Keras 3).
            aspect_ratios: Aspect ratios the model was built for (``DefaultBoxes.from_model``).
            min_ratio: Smallest default-box scale (``DefaultBoxes.from_model``).
            max_ratio: Largest default-box scale (``DefaultBoxes.from_model``).
            clip: Whether default boxes are clipped to the image (``DefaultBoxes.from_model``).
            **kwargs: The other ``SSDPostprocess`` arguments.

        Example:
            >>> layer = SSDPostprocess.from_model(model, score_threshold=0.3)
        """
        boxes = DefaultBoxes.from_model(model, aspect_ratios, min_ratio, max_ratio, clip)
        config = boxes.get_config()
        return cls(image_shape=list(model.input_shape[1:3]), **config, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            image_shape=self.image_shape, feature_map_shapes=self.feature_map_shapes,
            aspect_ratios=self.aspect_ratios, min_ratio=self.min_ratio, max_ratio=self.max_ratio,
            clip=self.clip, variance=self.variance, score_threshold=self.score_threshold,
            iou_threshold=self.iou_threshold, max_detections=self.max_detections,
            pre_nms_top_k=self.pre_nms_top_k, bounding_box_format=self.bounding_box_format,
        )
        return config

    def _split(self, predictions):
        if isinstance(predictions, dict):
            deltas, logits = predictions["boxes"], predictions["classes"]
        else:
            deltas, logits = predictions
        if deltas.shape[1] is not None and deltas.shape[1] != len(self._anchors):
            raise ValueError(
                f"The predictions hold {deltas.shape[1]} default boxes, but `feature_map_shapes` "
                f"{self.feature_map_shapes} and the aspect ratios give {len(self._anchors)}."
            )
        return deltas, logits

    def _detect_one(self, boxes, scores):
        """Detections of one image: boxes (A, 4) rel_xyxy, scores (A, C) without background."""
        num_classes = scores.shape[-1]
        flat = tf.reshape(scores, [-1])
        top_k = min(self.pre_nms_top_k, int(flat.shape[0]))
        top_scores, top_index = tf.math.top_k(flat, k=top_k)
        box_index = top_index // num_classes
        labels = top_index % num_classes
        candidates = tf.gather(boxes, box_index)
        # Boxes lie in [0, 1]: shifting class c by 2c keeps classes apart (per-class NMS).
        shifted = candidates + 2.0 * tf.cast(labels, tf.float32)[:, None]
        selected, _, valid = tf.raw_ops.NonMaxSuppressionV5(
            boxes=shifted, scores=top_scores, max_output_size=self.max_detections,
            iou_threshold=float(self.iou_threshold), score_threshold=float(self.score_threshold),
            soft_nms_sigma=0.0, pad_to_max_output_size=True,
        )
        kept = tf.range(self.max_detections) < valid
        boxes = tf.where(kept[:, None], tf.gather(candidates, selected), float(PADDING))
        labels = tf.where(kept, tf.gather(labels, selected), PADDING)
        scores = tf.where(kept, tf.gather(top_scores, selected), float(PADDING))
        return boxes, labels, scores, valid

    def call(self, predictions):
        deltas, logits = self._split(predictions)
        # Softmax probabilities of the object classes, written relative to the background
        # logit: p_c = exp(x_c - x_0) / (1 + sum_c' exp(x_c' - x_0)) (the clamp only avoids
        # overflow). After an int8 network the TFLite converter runs these ops and top-k in
        # float; it would run a SOFTMAX op (which it also fuses from exp(x - max) / sum) in
        # int8, with scores in steps of 1/256 whose ties reorder the candidates of NMS.
        logits = ops.cast(logits, "float32")
        exp = ops.exp(ops.minimum(logits[..., 1:] - logits[..., :1], 80.0))
        scores = exp / (1.0 + ops.sum(exp, axis=-1, keepdims=True))
        boxes = ops.clip(self.coder.decode(self._anchors, deltas), 0.0, 1.0)
        if boxes.shape[0] is not None:
            per_image = [self._detect_one(b, s) for b, s in
                         zip(tf.unstack(boxes), tf.unstack(scores))]
            boxes, labels, scores, count = (tf.stack(parts) for parts in zip(*per_image))
        else:
            boxes, labels, scores, count = tf.map_fn(
                lambda args: self._detect_one(*args), (boxes, scores),
                fn_output_signature=(tf.float32, tf.int32, tf.float32, tf.int32),
            )
        boxes = from_rel_xyxy(boxes, self.bounding_box_format, self.image_shape, labels)
        return {"boxes": boxes, "labels": labels, "scores": scores,
                "num_detections": tf.cast(count, tf.int32)}

    def compute_output_spec(self, predictions):
        deltas, _ = self._split(predictions)
        batch, k = deltas.shape[0], self.max_detections
        return {
            "boxes": keras.KerasTensor((batch, k, 4), "float32"),
            "labels": keras.KerasTensor((batch, k), "int32"),
            "scores": keras.KerasTensor((batch, k), "float32"),
            "num_detections": keras.KerasTensor((batch,), "int32"),
        }


def inference_model(model, name=None, **postprocess_kwargs):
    """``model`` (raw predictions) followed by ``SSDPostprocess``: images -> detections.

    Args:
        model: A model built by ``SSDLite``.
        name: Name of the new model (default ``"<model name>_detector"``).
        **postprocess_kwargs: ``SSDPostprocess.from_model`` arguments.

    Returns:
        A functional ``keras.Model`` on ``model``'s inputs whose output is the
        detections dict.

    Example:
        >>> detector = inference_model(model, score_threshold=0.3, max_detections=20)
        >>> detector.predict(images)["boxes"].shape
        (8, 20, 4)
    """
    layer = SSDPostprocess.from_model(model, **postprocess_kwargs)
    outputs = layer(model.outputs)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, outputs, name=name or f"{model.name}_detector")


def numpy_detections(detections):
    """A detections dict (tensors) as numpy arrays."""
    return {key: np.asarray(detections[key]) for key in OUTPUT_KEYS}


def tflite_detections(runner, images):
    """Runs a TFLite detector (exported with ``SSDPostprocess``) and names its outputs.

    The converter names the outputs after internal tensors; they are told apart by rank
    and dtype (boxes: rank 3; num_detections: rank 1; labels: int rank 2; scores: float
    rank 2).

    Args:
        runner: An ``export.LiteRTModel`` of the file.
        images: Input batch (the file runs one image at a time).

    Returns:
        The detections dict of numpy arrays, as ``SSDPostprocess`` returns it.

    Raises:
        ValueError: If the file's outputs are not those of ``SSDPostprocess``.

    Example:
        >>> detections = tflite_detections(LiteRTModel("ssdlite_int8.tflite"), images)
    """
    outputs = runner.predict(images)
    named = {}
    for array in outputs if isinstance(outputs, list) else [outputs]:
        if array.ndim == 3:
            named["boxes"] = array
        elif array.ndim == 1:
            named["num_detections"] = array.astype("int32")
        elif np.issubdtype(array.dtype, np.integer):
            named["labels"] = array.astype("int32")
        else:
            named["scores"] = array
    if sorted(named) != sorted(OUTPUT_KEYS):
        raise ValueError(
            f"The TFLite file's outputs ({[a.shape for a in outputs]}) are not those of "
            "SSDPostprocess (boxes, labels, scores, num_detections)."
        )
    return named
