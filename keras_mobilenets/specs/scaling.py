"""Channel rounding and width scaling: the only channel-rounding code in the package.

MobileNet V1 scales widths by truncation (``int(c * alpha)``, Howard et al. 2017,
arXiv:1704.04861); MobileNetV2 (arXiv:1801.04381) truncates and then rounds to a
multiple of 8; MobileNetV3 (arXiv:1905.02244) rounds the scaled value to a multiple of 8;
ShuffleNet V1 (arXiv:1707.01083) rounds to a multiple of what its grouped convolutions
need (``divisor``). Every rounding keeps at least 90% of the requested channels.
"""

import dataclasses

WIDTH_ROUNDING = ("truncate", "truncate_then_divisible", "divisible")


def make_divisible(value, divisor=8, min_value=None):
    """Rounds ``value`` to the nearest multiple of ``divisor`` without losing > 10%.

    Args:
        value: Number of channels requested (may be fractional).
        divisor: The result is a multiple of this.
        min_value: Lower bound of the result; defaults to ``divisor``.

    Returns:
        An int, a multiple of ``divisor``.

    Example:
        >>> make_divisible(72 * 0.75)
        56
    """
    if min_value is None:
        min_value = divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def scale_width(channels, alpha, rounding, divisor=8):
    """Scales a channel count by the width multiplier ``alpha``.

    Args:
        channels: Channels at width 1.0 (the paper's table value).
        alpha: Width multiplier, > 0.
        rounding: One of ``WIDTH_ROUNDING``: ``"truncate"`` (MobileNet V1),
            ``"truncate_then_divisible"`` (MobileNetV2) or ``"divisible"`` (MobileNetV3,
            ShuffleNet V1).
        divisor: The multiple the two divisible roundings round to.

    Returns:
        The scaled channel count as an int.

    Raises:
        ValueError: If ``rounding`` is unknown.

    Example:
        >>> scale_width(32, 0.35, "truncate_then_divisible")
        16
    """
    if rounding == "truncate":
        return int(channels * alpha)
    if rounding == "truncate_then_divisible":
        return make_divisible(int(channels * alpha), divisor)
    if rounding == "divisible":
        return make_divisible(channels * alpha, divisor)
    raise ValueError(f"`rounding` must be one of {WIDTH_ROUNDING}, got {rounding!r}.")


EXPANSION_ROUNDING = ("ratio", "scaled")


def scale_inverted_residuals(rows, stem_in, alpha, rounding, expansion="ratio"):
    """Scales paper rows to width ``alpha``.

    Args:
        rows: ``InvertedResidualSpec`` rows at width 1.0.
        stem_in: (paper input width of the first row, its scaled width).
        alpha: Width multiplier.
        rounding: Rounding of the output widths (see ``scaling.scale_width``).
        expansion: ``"ratio"``: expansions keep the paper's ratio exp / input
            (keras.applications); ``"scaled"``: the paper's exp size scaled and rounded to
            a multiple of 8 (torchvision's MobileNetV3). Equal at ``alpha=1``.

    Returns:
        A tuple of rows with absolute widths.

    Example:
        >>> from keras_mobilenets.specs.mobilenet_v3 import SMALL_BLOCKS
        >>> scale_inverted_residuals(SMALL_BLOCKS, (16, 8), 0.25, "divisible", "scaled")[1].exp
        16
    """
    if expansion not in EXPANSION_ROUNDING:
        raise ValueError(
            f"`expansion` must be one of {EXPANSION_ROUNDING}, got {expansion!r}."
        )
    paper_in, scaled_in = stem_in
    scaled = []
    for row in rows:
        out = scale_width(row.out, alpha, rounding)
        if expansion == "scaled":
            exp = make_divisible(row.exp * alpha)
        else:
            exp = make_divisible(scaled_in * (row.exp / paper_in))
        scaled.append(dataclasses.replace(row, exp=exp, out=out))
        paper_in, scaled_in = row.out, out
    return tuple(scaled)
