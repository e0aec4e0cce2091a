"""An int8 export says once, not once per op, which hard-swish ops leave XNNPACK."""

import logging

import numpy as np
import pytest

pytest.importorskip("ai_edge_litert")

import keras_mobilenets  # noqa: E402
from keras_mobilenets import export  # noqa: E402


def test_one_summary_warning_for_hard_swish_scales(caplog):
    # Random weights and random pixels: most hard-swish scales fall outside XNNPACK's limits.
    model = keras_mobilenets.MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.75,
                                              weights=None, classes=4)
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    with caplog.at_level(logging.WARNING, logger="keras_mobilenets.export"):
        export.to_tflite(model, quantization="int8", representative_data=images)
    records = [r for r in caplog.records if "HARD_SWISH" in r.getMessage()]
    assert len(records) == 1, [r.getMessage()[:120] for r in records]
    message = records[0].getMessage()
    count, total = (int(word) for word in message.split()[:3:2])
    assert 1 <= count <= total == 19  # MobileNetV3Small has 19 hard-swish activations
    assert message.count("/hard_swish") == count  # every affected op named, once


def test_a_final_softmax_off_xnnpack_is_reported_but_not_warned_about(caplog):
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs)
    images = np.random.default_rng(1).uniform(0, 255, (4, 16, 16, 3)).astype("float32")
    with caplog.at_level(logging.WARNING, logger="keras_mobilenets.export"):
        flatbuffer = export.to_tflite(model, quantization="int8", representative_data=images)
    slow = export.non_delegated_ops(flatbuffer)
    assert [(row["op"], row["output"]) for row in slow] == [("SOFTMAX", True)]
    assert "SOFTMAX x1 (int8)" in export.op_report(flatbuffer)
    assert not [r for r in caplog.records if "XNNPACK" in r.getMessage()]
