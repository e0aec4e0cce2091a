"""ShuffleNet spec tables against the papers' Table 1 (arXiv:1707.01083) and Table 5
(arXiv:1807.11164)."""

import pytest

from keras_mobilenets.specs import (
    ShuffleUnitSpec,
    ShuffleV2UnitSpec,
    block_spec,
    shufflenet_v1,
    shufflenet_v2,
)

TABLE1_STAGE2 = {1: 144, 2: 200, 3: 240, 4: 272, 8: 384}


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
def test_v1_table1_at_1x(groups):
    spec = shufflenet_v1.spec(groups, 1.0)
    assert spec.stem.filters == 24 and spec.stem.stride == 2 and spec.stem_stride == 4
    widths = [row.out for row in spec.blocks]
    stage2 = TABLE1_STAGE2[groups]
    assert widths == [stage2] * 4 + [2 * stage2] * 8 + [4 * stage2] * 4
    assert [row.stride for row in spec.blocks] == ([2, 1, 1, 1] + [2] + [1] * 7 + [2, 1, 1, 1])
    assert all(row.bottleneck * 4 == row.out and row.groups == groups for row in spec.blocks)
    assert [row.group_first for row in spec.blocks] == [False] + [True] * 15
    assert all(row.downsample == (row.stride == 2) for row in spec.blocks)
    assert spec.block_prefixes[:5] == (
        "stage2_1_", "stage2_2_", "stage2_3_", "stage2_4_", "stage3_1_"
    )
    assert spec.last_conv is None


@pytest.mark.parametrize("groups", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("scale", [0.25, 0.5, 1.5, 2.0])
def test_v1_scaled_widths_stay_divisible(groups, scale):
    spec = shufflenet_v1.spec(groups, scale)
    assert spec.stem.filters % groups == 0 and spec.stem.filters >= 12
    for row in spec.blocks:
        assert row.out % (4 * groups) == 0
        assert row.out >= 0.9 * scale * TABLE1_STAGE2[groups]
    assert spec.blocks[0].out == shufflenet_v1.stage_width(2, groups, scale)


def test_v2_table5():
    for scale, (c2, c3, c4, c5) in {
        0.5: (48, 96, 192, 1024), 1.0: (116, 232, 464, 1024),
        1.5: (176, 352, 704, 1024), 2.0: (244, 488, 976, 2048),
    }.items():
        spec = shufflenet_v2.spec(scale)
        assert [row.out for row in spec.blocks] == [c2] * 4 + [c3] * 8 + [c4] * 4
        assert [row.split for row in spec.blocks] == ([False, True, True, True]
                                                      + [False] + [True] * 7
                                                      + [False, True, True, True])
        assert spec.last_conv.filters == c5 and spec.stem.filters == 24
        assert (spec.bn.epsilon, spec.bn.momentum) == (1e-5, 0.9)


def test_bad_values():
    with pytest.raises(ValueError, match=r"`groups` must be one of \(1, 2, 3, 4, 8\), got 6"):
        shufflenet_v1.spec(6, 1.0)
    with pytest.raises(ValueError, match=r"`scale` must be one of \(0.5, 1.0, 1.5, 2.0\)"):
        shufflenet_v2.spec(0.25)
    with pytest.raises(ValueError, match=r"`out` \(100\) must be divisible by `groups` \(3\)"):
        ShuffleUnitSpec(out=100, groups=3, bottleneck=24)
    with pytest.raises(ValueError, match="must be `downsample`"):
        ShuffleUnitSpec(out=96, groups=3, bottleneck=24, stride=2)
    with pytest.raises(ValueError, match="cannot `split`"):
        ShuffleV2UnitSpec(out=96, stride=2, split=True)
    with pytest.raises(ValueError, match="`out` must be even"):
        block_spec.shuffle_v2(97)
