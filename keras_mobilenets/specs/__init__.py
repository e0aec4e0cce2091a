"""Architectures as data (no Keras imports): block rows, scaling and one table per family."""

from keras_mobilenets.specs import (
    mobilenet_v1,
    mobilenet_v2,
    mobilenet_v3,
    mobilenet_v4,
    shufflenet_v1,
    shufflenet_v2,
)
from keras_mobilenets.specs.block_spec import (
    BackboneSpec,
    BatchNormSpec,
    BlockNames,
    ConvSpec,
    InvertedResidualSpec,
    PoolSpec,
    SeparableSpec,
    ShuffleUnitSpec,
    ShuffleV2UnitSpec,
    TopSpec,
)
from keras_mobilenets.specs.scaling import make_divisible, scale_width
from keras_mobilenets.specs.uib_spec import (
    ConvBlockSpec,
    FusedIBSpec,
    MobileMQASpec,
    UIBSpec,
)

# Names of the layers that end a block, per family; read by the features API.
BLOCK_OUTPUT_PATTERNS = (
    mobilenet_v1.BLOCK_OUTPUT_PATTERN,
    mobilenet_v2.BLOCK_OUTPUT_PATTERN,
    mobilenet_v3.BLOCK_OUTPUT_PATTERN,
    mobilenet_v4.BLOCK_OUTPUT_PATTERN,
    shufflenet_v1.BLOCK_OUTPUT_PATTERN,
    shufflenet_v2.BLOCK_OUTPUT_PATTERN,
)
