"""Pretrained weights: argument checks, checkpoint selection, download and loading.

``weights`` is ``None`` (random initialisation), ``"imagenet"`` (the published checkpoint
that fits the variant, from the model registry) or the path of a weights file:
``.weights.h5`` / ``.keras`` (Keras 3) or a legacy ``.h5`` / ``.hdf5`` file, loaded by layer
name like the published checkpoints, or a torchvision state dict (``.pth``, ``.pt``,
``.bin``, ``.safetensors``), converted. ``"imagenet_torchvision"`` selects torchvision's
published checkpoint. Selection is in :mod:`.selection`, downloading in :mod:`.download`,
reading Keras files in :mod:`.files`, PyTorch files in :mod:`.torch_checkpoint` and their
conversion in :mod:`.torchvision`; checkpoints whose source is timm (MobileNetV4) are
converted by :mod:`.timm`. Nothing here runs at import time.

Example:
    >>> import keras_mobilenets
    >>> model = keras_mobilenets.MobileNetV3Small(weights="imagenet")
"""

import os

from keras_mobilenets.registry import Checkpoint
from keras_mobilenets.weights import download, registry, torchvision
from keras_mobilenets.weights.download import WeightsDownloadError
from keras_mobilenets.weights.files import load_weights_file
from keras_mobilenets.weights.selection import (
    DEFAULT_ROWS,
    KEYWORDS,
    TORCH_SUFFIXES,
    WEIGHTS_SUFFIXES,
    WeightsRequest,
    available_checkpoints,
    check_request,
    check_weights_argument,
    is_state_dict_checkpoint,
    layout_for,
    resolve_layout,
    select_checkpoint,
)

__all__ = [
    "Checkpoint",
    "DEFAULT_ROWS",
    "KEYWORDS",
    "TORCH_SUFFIXES",
    "WEIGHTS_SUFFIXES",
    "WeightsDownloadError",
    "WeightsRequest",
    "available_checkpoints",
    "check_request",
    "check_weights_argument",
    "is_state_dict_checkpoint",
    "layout_for",
    "resolve_layout",
    "load_weights",
    "load_weights_file",
    "registry",
    "select_checkpoint",
]


def load_weights(model, weights, request=None):
    """Loads ``weights`` into ``model``.

    Args:
        model: The freshly built model.
        weights: A ``Checkpoint`` (from :func:`check_request`), a keyword of
            ``KEYWORDS`` (then ``request`` selects the checkpoint) or the path of a
            weights file (Keras, or a torchvision state dict converted on loading).
        request: The model's :class:`WeightsRequest`.

    Raises:
        ValueError: If the file does not fit the model (the message lists the layers that
            differ) or a download fails verification.
        WeightsDownloadError: If a checkpoint cannot be downloaded.
    """
    if weights is None:
        return
    if isinstance(weights, str) and weights in KEYWORDS:
        if request is None:
            raise ValueError(f"`request` is needed to load weights={weights!r}.")
        weights = select_checkpoint(request, warn=False, source=KEYWORDS[weights])
    allow_extra = request is not None and not request.include_top
    if isinstance(weights, Checkpoint):
        if weights.source == "timm":
            from keras_mobilenets.weights import timm

            timm.load_timm_weights(model, download.fetch(weights))
            return
        if is_state_dict_checkpoint(weights):
            include_top = request.include_top if request is not None else True
            torchvision.load_checkpoint(model, weights, include_top)
            return
        load_weights_file(model, download.fetch(weights), allow_extra_layers=False)
        return
    path = os.fspath(weights)
    if path.endswith(TORCH_SUFFIXES):
        if request is None:
            raise ValueError(f"`request` is needed to load the torchvision file {path!r}.")
        torchvision.load_file(model, path, request.family)
        return
    load_weights_file(model, path, allow_extra_layers=allow_extra)
