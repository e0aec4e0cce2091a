"""Pretrained weights: argument checks, checkpoint selection, download and loading.

``weights`` is ``None`` (random initialisation), ``"imagenet"`` (the published checkpoint
that fits the variant, from the model registry) or the path of a weights file:
``.weights.h5`` / ``.keras`` (Keras 3) or a legacy ``.h5`` / ``.hdf5`` file, loaded by layer
name like the published checkpoints. Checkpoints whose source is timm (MobileNetV4) are
converted by :mod:`.timm`; the MobileNetV4 builders also take timm files as paths. Selection is in :mod:`.selection`, downloading in
:mod:`.download`, reading files in :mod:`.files`. Nothing here runs at import time.

Example:
    >>> import keras_mobilenets
    >>> model = keras_mobilenets.MobileNetV3Small(weights="imagenet")
"""

import os

from keras_mobilenets.registry import Checkpoint
from keras_mobilenets.weights import download, registry
from keras_mobilenets.weights.download import WeightsDownloadError
from keras_mobilenets.weights.files import load_weights_file
from keras_mobilenets.weights.selection import (
    DEFAULT_ROWS,
    WEIGHTS_SUFFIXES,
    WeightsRequest,
    available_checkpoints,
    check_request,
    check_weights_argument,
    select_checkpoint,
)

__all__ = [
    "Checkpoint",
    "DEFAULT_ROWS",
    "WEIGHTS_SUFFIXES",
    "WeightsDownloadError",
    "WeightsRequest",
    "available_checkpoints",
    "check_request",
    "check_weights_argument",
    "load_weights",
    "load_weights_file",
    "registry",
    "select_checkpoint",
]


def load_weights(model, weights, request=None):
    """Loads ``weights`` into ``model``.

    Args:
        model: The freshly built model.
        weights: A ``Checkpoint`` (from :func:`check_request`), ``"imagenet"`` (then
            ``request`` selects the checkpoint) or the path of a weights file.
        request: The model's :class:`WeightsRequest`.

    Raises:
        ValueError: If the file does not fit the model (the message lists the layers that
            differ) or a download fails verification.
        WeightsDownloadError: If a checkpoint cannot be downloaded.
    """
    if weights is None:
        return
    if isinstance(weights, str) and weights == "imagenet":
        if request is None:
            raise ValueError("`request` is needed to load weights='imagenet'.")
        weights = select_checkpoint(request, warn=False)
    allow_extra = request is not None and not request.include_top
    if isinstance(weights, Checkpoint):
        path = download.fetch(weights)
        if weights.source == "timm":
            from keras_mobilenets.weights import timm

            timm.load_timm_weights(model, path)
            return
        load_weights_file(model, path, allow_extra_layers=False)
        return
    load_weights_file(model, os.fspath(weights), allow_extra_layers=allow_extra)
