"""The course's one yardstick for "is this difference real?".

Every notebook that claims one method beats another compares them **per seed**: the two
students of a seed share their initial weights and data order, so the difference of each pair
is one measurement of the method's effect. From the n paired differences d_1 … d_n:

    mean   m = (1/n) Σ d_i
    spread s = sample standard deviation of the d_i (n − 1 in the denominator, everywhere)
    uncertainty of the mean  u = sqrt(s²/n + b²)

where b is the **between-run spread**: how much the mean itself moved when the same comparison
was re-run on another CPU instruction set, with another teacher retrained from the same seed, or
on other seeds (measured by ``experiments/headline_robustness.py``; 0 when not measured). The seeds
of one run do not sample that variation, so without b the interval is too narrow for a learner's
machine.

The 95 % interval is m ± t·u, with t Student's 97.5 % quantile for n − 1 degrees of freedom
(2.78 for 5 seeds, 4.30 for 3). The declared rule, the only source of the words the prose uses:

- **clear gain**: the whole interval is above zero;
- **clear loss**: the whole interval is below zero;
- **within the noise**: the interval contains zero.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

CLEAR_GAIN, WITHIN_NOISE, CLEAR_LOSS = "clear gain", "within the noise", "clear loss"
VERDICTS = (CLEAR_GAIN, WITHIN_NOISE, CLEAR_LOSS)

# Student's t, 97.5 % quantile, by degrees of freedom (two-sided 95 % interval); 1.96 beyond 30.
_T_975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
          11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
          20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
          29: 2.045, 30: 2.042}


def t_quantile(degrees_of_freedom: int) -> float:
    """Return Student's t 97.5 % quantile (the multiplier of a two-sided 95 % interval)."""
    if degrees_of_freedom < 1:
        raise ValueError(f"degrees_of_freedom must be >= 1, got {degrees_of_freedom}")
    return _T_975.get(degrees_of_freedom, 1.96)


def sample_std(values: Sequence[float]) -> float:
    """Return the sample standard deviation (n − 1 in the denominator), the course's one convention."""
    values = _checked(values, "values")
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Return (mean, sample standard deviation) of at least two finite values."""
    values = _checked(values, "values")
    return sum(values) / len(values), sample_std(values)


@dataclass(frozen=True)
class Comparison:
    """The paired comparison of a method with its baseline, seed by seed, and the verdict of the declared rule."""

    differences: tuple[float, ...]
    mean: float
    std: float
    between_run_std: float
    half_width: float
    verdict: str
    unit: str = "pp"
    digits: int = 2

    @property
    def seeds(self) -> int:
        return len(self.differences)

    @property
    def low(self) -> float:
        return self.mean - self.half_width

    @property
    def high(self) -> float:
        return self.mean + self.half_width

    def per_seed(self) -> str:
        """Return the per-seed differences as text, e.g. '+0.65, +0.69, +0.80'."""
        return ", ".join(f"{d:+.{self.digits}f}" for d in self.differences)

    def interval(self) -> str:
        """Return the 95 % interval as text, e.g. '+0.21 to +1.39 pp'."""
        return f"{self.low:+.{self.digits}f} to {self.high:+.{self.digits}f} {self.unit}".rstrip()

    def estimate(self) -> str:
        """Return the mean gain and its 95 % half-width as text, e.g. '+0.80 ± 0.59 pp'."""
        return f"{self.mean:+.{self.digits}f} ± {self.half_width:.{self.digits}f} {self.unit}".rstrip()

    def __str__(self) -> str:
        source = "seeds and machines" if self.between_run_std > 0 else "seeds"
        return f"{self.estimate()} (95 % interval over {source}, {self.seeds} seeds): {self.verdict}"


def compare(method: Sequence[float], baseline: Sequence[float], *, between_run_std: float = 0.0,
            seeds: Sequence[int] | None = None, unit: str = "pp", digits: int = 2) -> Comparison:
    """Return the paired comparison of `method` with `baseline`: per-seed differences, interval, verdict.

    Args:
        method, baseline: one result per seed (e.g. test accuracy in %), in the same seed order.
        between_run_std: the measured spread of the mean across machines and seed sets (same unit), added
            to the seeds' standard error; 0 when it has not been measured.
        seeds: the seeds behind the results, checked to be distinct and as many as the results.
        unit: printed after the numbers ("pp" for percentage points, "bits/char", ...).
        digits: decimals printed (2 for pp; 3 for bits per character).
    """
    method = _checked(method, "method")
    baseline = _checked(baseline, "baseline")
    if len(method) != len(baseline):
        raise ValueError(f"a paired comparison needs one baseline result per seed: got {len(method)} results for the "
                         f"method and {len(baseline)} for the baseline; train both from the same seeds")
    if seeds is not None:
        check_seeds(seeds)
        if len(seeds) != len(method):
            raise ValueError(f"{len(seeds)} seeds were given for {len(method)} paired results: one result per seed")
    if not (isinstance(between_run_std, (int, float)) and math.isfinite(between_run_std) and between_run_std >= 0):
        raise ValueError(f"between_run_std must be a finite number >= 0, got {between_run_std!r}")
    differences = [m - b for m, b in zip(method, baseline)]
    mean, std = mean_std(differences)
    uncertainty = math.sqrt(std**2 / len(differences) + between_run_std**2)
    half_width = t_quantile(len(differences) - 1) * uncertainty
    if mean - half_width > 0:
        verdict = CLEAR_GAIN
    elif mean + half_width < 0:
        verdict = CLEAR_LOSS
    else:
        verdict = WITHIN_NOISE
    return Comparison(tuple(differences), mean, std, float(between_run_std), half_width, verdict, unit, digits)


def check_seeds(seeds: Sequence[int]) -> list[int]:
    """Return `seeds` as a list after checking that it is not empty and repeats no seed."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("the seed list is empty: give at least two seeds, e.g. [0, 1, 2, 3, 4]")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise ValueError(f"the seed list {seeds} repeats {repeated}: a repeated seed trains the same student twice and "
                         "counts one measurement as two; give distinct seeds")
    return seeds


def _checked(values: Sequence[float], name: str) -> list[float]:
    values = [float(v) for v in values]
    if len(values) < 2:
        raise ValueError(f"{name} has {len(values)} result(s): a spread needs at least 2 seeds")
    bad = [v for v in values if not math.isfinite(v)]
    if bad:
        raise ValueError(f"{name} holds {bad[0]}: every result must be a finite number (did a training run diverge?)")
    return values
