"""One way to time exported files against each other: one process, interleaved rounds.

Latency on a shared or throttling CPU drifts over seconds, so timing one file after the
other can make either look faster. ``time_in_rounds`` warms every runner up, then times all
of them in each round (the order reversed every other round), so that drift hits all files
alike; a comparison reads the **per-round ratio** of two files and its spread over the
rounds. The demo, ``finetune``, ``evaluate`` and the benchmarks all time this way.

Example:
    >>> from keras_mobilenets import export
    >>> times = export.time_in_rounds({"float32": "model.tflite", "int8": "model_int8.tflite"},
    ...                               num_threads=1)
    >>> times.median_ms("int8"), times.ratio("int8", "float32")
    (1.9, Spread(median=0.92, low=0.9, high=0.95))
"""

import dataclasses
import statistics
from typing import NamedTuple

from keras_mobilenets import _checks


class Spread(NamedTuple):
    """A median over rounds with the smallest and largest value."""

    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values):
        """The spread of a non-empty sequence of numbers."""
        values = [float(v) for v in values]
        return cls(statistics.median(values), min(values), max(values))

    def text(self, fmt=".2f"):
        """``median (low–high)``, or just the median when all three read alike.

        Example:
            >>> Spread(1.07, 1.05, 1.1).text()
            '1.07 (1.05–1.10)'
        """
        median, low, high = (format(v, fmt) for v in self)
        return median if low == high == median else f"{median} ({low}–{high})"


@dataclasses.dataclass(frozen=True)
class RoundTimes:
    """Per-round median latencies of files timed by :func:`time_in_rounds`.

    Attributes:
        rounds: ``{name: (median ms of round 1, round 2, ...)}``.
        runs: Timed invocations per file and round.
        num_threads: Interpreter threads (None where the caller passed its own runners).
    """

    rounds: dict
    runs: int
    num_threads: int = None

    def median_ms(self, name):
        """Median over the rounds of ``name``'s per-round median, in milliseconds."""
        return statistics.median(self.rounds[name])

    def spread_ms(self, name):
        """:class:`Spread` of ``name``'s per-round medians."""
        return Spread.of(self.rounds[name])

    def ratio(self, name, reference):
        """:class:`Spread` of ``name``'s latency over ``reference``'s, round by round.

        Example:
            >>> times.ratio("int8", "float32").median < 1.0  # int8 faster in most rounds
            True
        """
        for key in (name, reference):
            if key not in self.rounds:
                raise KeyError(f"no file named {key!r} was timed; timed: {sorted(self.rounds)}")
        return Spread.of(a / b for a, b in zip(self.rounds[name], self.rounds[reference]))


def time_in_rounds(files, num_threads=2, rounds=7, runs=40, warmup=10, seed=0):
    """Times files (or runners) against each other in interleaved rounds.

    Every runner first runs ``warmup`` untimed invocations; then each round times ``runs``
    invocations of every runner (``runner.latency``), in the given order in even rounds
    and the reverse order in odd ones, and keeps each runner's median.

    Args:
        files: ``{name: file}``; a file is a ``.tflite`` path or bytes (run with
            ``LiteRTModel(file, num_threads)``) or any runner with a
            ``latency(runs, warmup, seed)`` method returning a ``Latency`` (e.g. an
            ``OnnxModel`` or a ``LiteRTModel`` made by the caller).
        num_threads: Interpreter threads of the TFLite files given as paths or bytes.
        rounds: Rounds (>= 1); 7 gives a usable spread.
        runs: Timed invocations per runner and round (>= 1).
        warmup: Untimed invocations per runner before the first round (>= 0).
        seed: Seed of the random inputs.

    Returns:
        A :class:`RoundTimes`.

    Raises:
        ValueError: If ``files`` is empty, or ``rounds``, ``runs`` or ``warmup`` are out of
            range (the message names the argument).

    Example:
        >>> times = time_in_rounds({"float32": float32_bytes, "int8": int8_bytes}, rounds=5)
        >>> print(f"int8/float32 {times.ratio('int8', 'float32').text()}")
        int8/float32 0.91 (0.89–0.94)
    """
    _checks.check_positive_int("rounds", rounds)
    _checks.check_positive_int("runs", runs)
    _checks.check_int("warmup", warmup, minimum=0)
    if not files:
        raise ValueError("`files` must name at least one file to time, got none.")
    runners, opened_files = {}, False
    for name, file in files.items():
        if callable(getattr(file, "latency", None)):
            runners[name] = file
        else:
            from keras_mobilenets.export.litert import LiteRTModel

            runners[name] = LiteRTModel(file, num_threads=num_threads)
            opened_files = True
    if warmup:
        for runner in runners.values():
            runner.latency(runs=warmup, warmup=0, seed=seed)
    times = {name: [] for name in runners}
    order = list(runners)
    for index in range(rounds):
        for name in order if index % 2 == 0 else reversed(order):
            times[name].append(runners[name].latency(runs=runs, warmup=0, seed=seed).median_ms)
    return RoundTimes(rounds={name: tuple(values) for name, values in times.items()},
                      runs=runs, num_threads=num_threads if opened_files else None)
