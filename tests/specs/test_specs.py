import pytest

from keras_mobilenets import specs
from keras_mobilenets.specs import block_spec, make_divisible, scale_width


@pytest.mark.parametrize(
    "value, expected",
    [(72 * 0.75, 56), (4, 8), (11.2, 16), (22.4, 24), (1280 * 1.4, 1792), (33.6, 32)],
)
def test_make_divisible_rounds_to_multiples_of_8_within_10_percent(value, expected):
    assert make_divisible(value) == expected


def test_scale_width_policies_differ_as_the_families_do():
    assert scale_width(32, 0.25, "truncate") == 8
    assert scale_width(1024, 0.75, "truncate") == 768
    assert scale_width(16, 0.35, "truncate_then_divisible") == 8
    assert scale_width(24, 0.75, "divisible") == 24
    with pytest.raises(ValueError, match="rounding"):
        scale_width(16, 1.0, "round")


def test_v3_tables_transcribe_the_paper():
    large = specs.mobilenet_v3.LARGE_BLOCKS
    small = specs.mobilenet_v3.SMALL_BLOCKS
    assert len(large) == 15 and len(small) == 11
    assert [r.exp for r in large] == [16, 64, 72, 72, 120, 120, 240, 200, 184, 184, 480, 672,
                                      672, 960, 960]
    assert sum(r.se_ratio > 0 for r in large) == 8 and sum(r.se_ratio > 0 for r in small) == 9
    assert [r.stride for r in small].count(2) == 4  # stride 32 with the stem


def test_v3_spec_scales_expansions_like_keras_applications():
    blocks = specs.mobilenet_v3.spec("small", alpha=0.75).blocks
    assert [b.out for b in blocks] == [16, 24, 24, 32, 32, 32, 40, 40, 72, 72, 72]
    assert [b.exp for b in blocks][:4] == [16, 72, 88, 96]


def test_minimalistic_removes_se_hard_swish_and_5x5():
    blocks = specs.mobilenet_v3.spec("large", minimalistic=True).blocks
    assert all(b.kernel == 3 and b.act == "relu" and b.se_ratio == 0 for b in blocks)


def test_v2_table_and_widths():
    spec = specs.mobilenet_v2.spec(1.0)
    assert len(spec.blocks) == 17
    assert [b.out for b in spec.blocks][-4:] == [160, 160, 160, 320]
    assert spec.blocks[1].exp == 96
    assert specs.mobilenet_v2.spec(1.4).last_conv.filters == 1792
    assert specs.mobilenet_v2.spec(0.5).last_conv.filters == 1280


def test_names_resolve_per_block_index():
    names = specs.mobilenet_v2.NAMES.resolve(0)
    assert names["depthwise"] == "expanded_conv_depthwise"
    assert specs.mobilenet_v2.NAMES.resolve(3)["project_bn"] == "block_3_project_BN"
    assert specs.mobilenet_v3.NAMES.resolve(12)["se_multiply"] == "expanded_conv_12_squeeze_excite_mul"
    assert specs.mobilenet_v1.NAMES.resolve(7)["pad"] == "conv_pad_7"


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: block_spec.ir(k=3, exp=0, out=16, act="relu"), "exp"),
        (lambda: block_spec.ir(k=3, exp=16, out=16, act="mish"), "act"),
        (lambda: block_spec.dws(64, s=0), "stride"),
        (lambda: block_spec.InvertedResidualSpec(3, 16, 16, "relu", stride=2, dilation=2),
         "dilation"),
        (lambda: block_spec.InvertedResidualSpec(3, 16, 16, "relu", se_ratio=1.5), "se_ratio"),
        (lambda: block_spec.TopSpec(kind="mlp", logits_name="x"), "kind"),
    ],
)
def test_rows_validate_their_fields(make, message):
    with pytest.raises(ValueError, match=message):
        make()
