"""Writes the small torchvision-format reference files the weights tests read.

Run with a Python that has torch and torchvision (they are not test dependencies):

    python tests/reference/make_torchvision_references.py

It writes, under ``tests/reference/torchvision/``:

* ``<model>.pth``: ``torch.save(model.state_dict())`` of torchvision models at reduced
  width (``width_mult=0.25`` for MobileNetV2/V3, ShuffleNetV2 x0.5) with 10 classes, random
  weights and random batch-norm statistics (no checkpoint can be downloaded here);
* ``<model>.npz``: ``pixels`` (RGB in [0, 255], NHWC, 64x64) and the torchvision model's
  ``logits`` in eval mode for them (normalised with the ImageNet mean / std first);
* ``lraspp_mobilenet_v3_large_0.25.pth`` / ``.npz``: torchvision's LR-ASPP
  (``lraspp_mobilenet_v3_large``'s layout: dilated MobileNetV3-Large, here at
  ``width_mult=0.25``) with 21 classes; ``logits`` are NHWC;
* ``ssdlite_mobilenet_v3_large_0.25.pth`` / ``.npz``: torchvision's SSDLite extractor and
  head (``ssdlite320_mobilenet_v3_large``'s layout: reduced-tail MobileNetV3-Large, here at
  ``width_mult=0.25`` with extra blocks of 128/64/64/32 channels) for 3 classes plus
  background; ``pixels`` are 160x160 and ``boxes`` / ``classes`` the raw head outputs
  (images normalised to [-1, 1] first, as torchvision's SSDLite does);
* ``full_size_shapes.json``: ``{model: {key: shape}}`` of torchvision's full-size models
  whose ImageNet / COCO / VOC checkpoints the registry lists (the published files hold
  exactly these keys and shapes), so the tests check our converters against them;
* ``tensors_zip.pth`` / ``tensors_legacy.pth``: one state dict of assorted dtypes and a
  non-contiguous tensor, in the zip and the legacy ``torch.save`` formats, with
  ``tensors.npz`` holding the expected arrays.
"""

import collections
import json
import os

import numpy as np
import torch
import torchvision

FOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision")
SIZE = 64
SSD_SIZE = 160
CLASSES = 10
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

MODELS = {
    "shufflenet_v2_x0_5": lambda: torchvision.models.shufflenet_v2_x0_5(num_classes=CLASSES),
    "mobilenet_v2_0.25": lambda: torchvision.models.mobilenet_v2(
        width_mult=0.25, num_classes=CLASSES),
    "mobilenet_v3_small_0.25": lambda: torchvision.models.mobilenet_v3_small(
        width_mult=0.25, num_classes=CLASSES),
    "mobilenet_v3_large_0.25": lambda: torchvision.models.mobilenet_v3_large(
        width_mult=0.25, num_classes=CLASSES),
}


def randomize(model, generator):
    """Random batch-norm affine parameters and running statistics, small random biases."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                shape = module.running_mean.shape
                module.weight.copy_(torch.rand(shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(shape, generator=generator) * 0.2)
                module.running_mean.copy_(torch.randn(shape, generator=generator) * 0.2)
                module.running_var.copy_(torch.rand(shape, generator=generator) + 0.5)
            elif getattr(module, "bias", None) is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)


def lraspp():
    from torchvision.models.segmentation import lraspp as module

    backbone = torchvision.models.mobilenet_v3_large(width_mult=0.25, dilated=True)
    return module._lraspp_mobilenetv3(backbone, 21)


class SSDLiteRaw(torch.nn.Module):
    """torchvision's SSDLite feature extractor and head, returning the raw predictions."""

    def __init__(self):
        super().__init__()
        from functools import partial

        from torchvision.models.detection import _utils, ssdlite

        norm = partial(torch.nn.BatchNorm2d, eps=0.001, momentum=0.03)
        features = torchvision.models.mobilenet_v3_large(
            width_mult=0.25, reduced_tail=True, norm_layer=norm).features
        strided = [i for i, block in enumerate(features) if getattr(block, "_is_cn", False)]
        self.backbone = ssdlite.SSDLiteFeatureExtractorMobileNet(
            features, strided[-1], norm, width_mult=0.25)
        channels = _utils.retrieve_out_channels(self.backbone, (SSD_SIZE, SSD_SIZE))
        self.head = ssdlite.SSDLiteHead(channels, [6] * 6, 4, norm)

    def forward(self, pixels):
        x = pixels.permute(0, 3, 1, 2) / 255.0
        x = (x - 0.5) / 0.5
        out = self.head(list(self.backbone(x).values()))
        return out["bbox_regression"], out["cls_logits"]


def ssdlite_reference(generator):
    model = SSDLiteRaw()
    randomize(model, generator)
    model.eval()
    pixels = torch.randint(0, 256, (2, SSD_SIZE, SSD_SIZE, 3), generator=generator).float()
    with torch.no_grad():
        boxes, classes = model(pixels)
    name = "ssdlite_mobilenet_v3_large_0.25"
    torch.save(model.state_dict(), os.path.join(FOLDER, f"{name}.pth"))
    np.savez_compressed(os.path.join(FOLDER, f"{name}.npz"),
                        pixels=pixels.numpy().astype(np.uint8), boxes=boxes.numpy(),
                        classes=classes.numpy())
    print(f"{name}: boxes {tuple(boxes.shape)}, |classes| max {classes.abs().max():.3f}")


SEGMENTATION = torchvision.models.segmentation
DETECTION = torchvision.models.detection
FULL_SIZE = {
    "shufflenet_v2_x0_5": lambda: torchvision.models.shufflenet_v2_x0_5(),
    "shufflenet_v2_x1_0": lambda: torchvision.models.shufflenet_v2_x1_0(),
    "shufflenet_v2_x1_5": lambda: torchvision.models.shufflenet_v2_x1_5(),
    "shufflenet_v2_x2_0": lambda: torchvision.models.shufflenet_v2_x2_0(),
    "mobilenet_v2": lambda: torchvision.models.mobilenet_v2(),
    "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(),
    "mobilenet_v3_large": lambda: torchvision.models.mobilenet_v3_large(),
    "lraspp_mobilenet_v3_large": lambda: SEGMENTATION.lraspp_mobilenet_v3_large(
        weights=None, weights_backbone=None),
    "ssdlite320_mobilenet_v3_large": lambda: DETECTION.ssdlite320_mobilenet_v3_large(
        weights=None, weights_backbone=None),
}


def full_size_shapes():
    shapes = {name: {key: list(value.shape) for key, value in build().state_dict().items()}
              for name, build in FULL_SIZE.items()}
    with open(os.path.join(FOLDER, "full_size_shapes.json"), "w") as f:
        json.dump(shapes, f, indent=0, sort_keys=False)
        f.write("\n")


def reference(name, build, generator):
    model = build()
    randomize(model, generator)
    model.eval()
    pixels = torch.randint(0, 256, (2, SIZE, SIZE, 3), generator=generator).float()
    x = pixels.permute(0, 3, 1, 2) / 255.0
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        logits = model(x)
    if isinstance(logits, dict):  # segmentation: {"out": NCHW logits} -> NHWC
        logits = logits["out"].permute(0, 2, 3, 1)
    torch.save(model.state_dict(), os.path.join(FOLDER, f"{name}.pth"))
    np.savez_compressed(
        os.path.join(FOLDER, f"{name}.npz"), pixels=pixels.numpy().astype(np.uint8),
        logits=logits.numpy(),
    )
    trainable = sum(p.numel() for p in model.parameters())
    print(f"{name}: {trainable} trainable parameters, |logits| max {logits.abs().max():.3f}")


def tensors(generator):
    matrix = torch.randn(4, 6, generator=generator)
    state = collections.OrderedDict(
        float32=torch.randn(3, 2, 3, 3, generator=generator),
        float16=torch.randn(5, generator=generator).half(),
        bfloat16=torch.tensor([1.0, -2.5, 0.15625]).bfloat16(),
        int64=torch.arange(7),
        scalar=torch.tensor(3),
        transposed=matrix.t(),
        sliced=matrix[1:3, ::2],
    )
    torch.save(state, os.path.join(FOLDER, "tensors_zip.pth"))
    torch.save(state, os.path.join(FOLDER, "tensors_legacy.pth"),
               _use_new_zipfile_serialization=False)
    np.savez(os.path.join(FOLDER, "tensors.npz"),
             **{k: v.float().numpy() if v.dtype == torch.bfloat16 else v.numpy()
                for k, v in state.items()})


def main():
    os.makedirs(FOLDER, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    for name, build in MODELS.items():
        reference(name, build, generator)
    tensors(generator)
    reference("lraspp_mobilenet_v3_large_0.25", lraspp, generator)
    ssdlite_reference(generator)
    full_size_shapes()


if __name__ == "__main__":
    main()
