"""Significance tests for comparing runs, in numpy and the standard library only.

* :func:`mcnemar_exact`: two models scored on the *same* records. Only the discordant records
  count: ``b`` (the first right, the second wrong) and ``c`` (the reverse). Under "no difference"
  each discordant record is a fair coin, so the two-sided p-value is
  ``min(1, 2 * P(X <= min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)``: the exact test, as
  ``statsmodels.stats.contingency_tables.mcnemar(exact=True)`` computes it.
* :func:`two_proportion` : two models scored on *different* records: the pooled two-proportion
  z-test (normal approximation), two-sided.
* :func:`holm`: Holm's step-down correction of a family of p-values (every cell of a comparison):
  it controls the chance of *any* false "better" mark at the level, and is uniformly more
  powerful than Bonferroni.
"""

from __future__ import annotations

import math

import numpy as np

#: A difference is called significant when its corrected p-value is below this.
ALPHA = 0.05


def _binom_half_cdf(k: int, n: int) -> float:
    """P(X <= k) for X ~ Binomial(n, 1/2), summed in log space (exact to float precision)."""
    if k >= n:
        return 1.0
    i = np.arange(k + 1, dtype=np.float64)
    log_pmf = math.lgamma(n + 1) - np.array([math.lgamma(x + 1) + math.lgamma(n - x + 1) for x in i.tolist()]) - n * math.log(2.0)
    top = log_pmf.max()
    return float(math.exp(top) * np.exp(log_pmf - top).sum())


def mcnemar_exact(b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Two-sided exact McNemar p-value per entry of the discordant counts ``b`` and ``c``; 1 where
    there is no discordant pair."""
    b = np.asarray(b, dtype=np.int64).reshape(-1)
    c = np.asarray(c, dtype=np.int64).reshape(-1)
    # one tail per entry: the entries are cells (a few dozen), the sum inside is vectorised
    return np.array([min(1.0, 2.0 * _binom_half_cdf(int(min(x, y)), int(x + y))) for x, y in zip(b.tolist(), c.tolist())])


def two_proportion(k1: np.ndarray, n1: np.ndarray, k2: np.ndarray, n2: np.ndarray) -> np.ndarray:
    """Two-sided pooled z-test p-value of k1/n1 against k2/n2, elementwise; 1 where undefined."""
    k1, n1, k2, n2 = (np.asarray(a, dtype=np.float64) for a in (k1, n1, k2, n2))
    with np.errstate(divide="ignore", invalid="ignore"):
        pooled = (k1 + k2) / (n1 + n2)
        se = np.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        z = np.abs(k1 / n1 - k2 / n2) / se
    valid = (n1 > 0) & (n2 > 0) & (se > 0)
    erfc = np.vectorize(math.erfc, otypes=[np.float64])
    return np.where(valid, erfc(np.where(valid, z, 0.0) / math.sqrt(2.0)), 1.0)


def holm(p_values: np.ndarray) -> np.ndarray:
    """Holm-adjusted p-values (same order as given): the i-th smallest is multiplied by
    ``m - i`` (i from 0), made non-decreasing, and capped at 1."""
    p = np.asarray(p_values, dtype=np.float64).reshape(-1)
    m = p.size
    if m == 0:
        return p
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted
    return out
