"""The naming contract of an SSDLite head: how its layers are found in a built model.

``ssdlite.py`` names the head's layers with :data:`PREFIX`; the default boxes
(``anchors.py``) and the post-processing read a model's feature maps through
:func:`head_layers`, so neither needs the builder itself.

Example:
    >>> head_layers(detector)  # [((20, 20), 6), ((10, 10), 6), ...]
"""

PREFIX = "ssdlite"


def head_layers(model):
    """``[((rows, cols), boxes per location)]`` of the box head of an SSDLite model, per map.

    Raises:
        ValueError: If ``model`` has no SSDLite box head.
    """
    heads = []
    while True:
        try:
            layer = model.get_layer(f"{PREFIX}_box_{len(heads)}_conv")
        except ValueError:
            break
        heads.append((tuple(layer.output.shape[1:3]), layer.filters // 4))
    if not heads:
        raise ValueError(
            f"Model {getattr(model, 'name', model)!r} has no SSDLite head (layers named "
            f"'{PREFIX}_box_<k>_conv'); build it with keras_mobilenets.detection.SSDLite."
        )
    return heads
