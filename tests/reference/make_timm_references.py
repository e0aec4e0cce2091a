"""Writes the MobileNetV4 timm reference files the tests read (run with timm installed).

    /work/timmenv/bin/python tests/reference/make_timm_references.py

For each variant: a randomly initialised timm ``mobilenetv4_*`` model gets the
deterministic parameters of ``recipe.py`` (random batch-norm statistics included); its
logits on ``recipe.images()`` (normalised with the ImageNet mean / standard deviation, as
timm's checkpoints expect) are saved with the key -> shape table, the trainable parameter
count and the versions used. No weights are stored: the tests rebuild them from the table.
Torch and timm are not test dependencies.
"""

import json
import pathlib
import sys

import numpy as np
import timm
import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import recipe  # noqa: E402

VARIANTS = ("conv_small", "conv_medium", "conv_large", "hybrid_medium", "hybrid_large")
MEAN = np.array([0.485, 0.456, 0.406])
STD = np.array([0.229, 0.224, 0.225])
OUT = pathlib.Path(__file__).resolve().parent / "data"


def main():
    OUT.mkdir(exist_ok=True)
    torch.manual_seed(0)
    for variant in VARIANTS:
        name = f"mobilenetv4_{variant}"
        model = timm.create_model(name, pretrained=False).eval()
        shapes = {key: list(value.shape) for key, value in model.state_dict().items()}
        model.load_state_dict(
            {k: torch.from_numpy(v) for k, v in recipe.state_dict(shapes).items()}
        )
        pixels = recipe.images()
        normalised = (pixels.astype('float64') / 255.0 - MEAN) / STD
        with torch.no_grad():  # float64, so the reference carries no float32 rounding
            logits = model.double()(torch.from_numpy(normalised.transpose(0, 3, 1, 2).copy()))
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        (OUT / f"{name}.json").write_text(json.dumps({
            "model": name, "timm": timm.__version__, "torch": torch.__version__,
            "size": recipe.SIZE, "trainable_params": trainable, "shapes": shapes,
        }, indent=0))
        np.savez_compressed(OUT / f"{name}.npz", logits=logits.numpy().astype("float32"))
        print(name, trainable, float(np.abs(logits.numpy()).max()))


if __name__ == "__main__":
    main()
