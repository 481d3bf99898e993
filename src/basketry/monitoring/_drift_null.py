"""The no-change law of the data-drift statistics, at a window's sample size.

The null hypothesis is "the window's baskets are drawn independently from the training
distribution". Under it the number of the window's ``n`` baskets holding item ``i`` is exactly
``Binomial(n, pi_i)`` (``pi_i`` the share of training baskets holding it), whatever the
within-basket structure; the items of a basket are distinct, so a multinomial over ``N``
occurrences would be the wrong law for frequent items. The detectors compare occurrence
shares, so the calibration conditions on the window's occurrence count ``N`` too:
``lambda_i = N q_i`` expected occurrences (``q`` the training shares) out of ``n`` baskets.

- Item distributions (thousands of categories): items expected fewer than
  :data:`MIN_EXPECTED` times at the window's size are pooled into bands (in training rank
  order, :data:`BAND_EXPECTED` each); the Jensen-Shannon divergence is then a sum of one
  bounded term per category, so its null mean and variance are the sums of each category's,
  computed exactly from the binomial law (categories of equal share computed once). The
  threshold is the ``1 - false_alarm_rate`` quantile of a gamma law with that mean and
  variance, widened by a dispersion factor for the co-occurrence of items the law leaves out
  (the chi-square shape the divergence takes at large counts, close to normal when many
  categories add up). Resampling 16k binomials a few hundred times costs seconds; this
  costs milliseconds.
- Basket sizes (a few bins, sizes of independent baskets are exactly multinomial) and the
  items entering the top k (a rank statistic): resampled, seeded.

Calibrations are cached per reference and size bucket. The item divergence's mean moves with
``N`` by many of its standard deviations, so its moments are computed at the two edges of
``N``'s bucket (powers of 2^(1/16)) and interpolated; the basket-size quantile, resampled at
the lower edge of ``n``'s bucket (2^(1/16)), is scaled by ``n_edge / n`` (a multinomial
divergence falls as 1 / n); the top-k quantile is taken at the lower edges of ``n`` and
``N`` (2^(1/8)), where it is the larger, so it errs on fewer alarms. The detectors' tests
check the false alarm rates against windows of baskets drawn from a population.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from basketry.model.profile import ReferenceProfile

#: Resamples of the basket-size and top-k statistics.
SIZE_RESAMPLES = 2000
TOP_RESAMPLES = 500
#: An item expected fewer times than this in a window is pooled with others as rare, in
#: bands expected about BAND_EXPECTED times each: the divergence then measures changes, not
#: the sampling noise of thousands of rare items. Bands stay small: a basket's mix depends on
#: its size (large baskets hold more rare items), so all rare items' shares move together
#: with the window's size mix, beyond the independent law; bands of 50 made that visible
#: (retail: 16% false alarms at a 1% setting), bands of 5 keep it within the noise.
MIN_EXPECTED = 5.0
BAND_EXPECTED = 5.0
#: Items with more expected occurrences than this use a normal law for their count.
_EXACT_LAMBDA = 30.0
_HERMITE_NODES = 24
#: References kept prepared (one per model version in use is typical).
_CACHE_SIZE = 8
#: Calibrations kept per reference (windows of similar sizes need a handful).
CALIBRATIONS_KEPT = 256


def size_bucket(x: int, per_octave: int = 8) -> int:
    """``x`` rounded down to a power of 2^(1 / per_octave) (exact while the powers are
    closer than 1)."""
    if x <= 2 * per_octave:
        return x
    return min(x, math.floor(2.0 ** (math.floor(per_octave * math.log2(x)) / per_octave)))


def next_bucket(x: int, per_octave: int = 8) -> int:
    """The bucket edge above ``x``."""
    if x <= 2 * per_octave:
        return x + 1
    return math.floor(2.0 ** ((math.floor(per_octave * math.log2(x)) + 1) / per_octave))


def size_bucket_float(x: float) -> float:
    """``x`` rounded to the nearest power of 2^(1/8)."""
    return float(2.0 ** (round(8 * math.log2(max(x, 1e-9))) / 8))


@dataclass
class Prepared:
    """A reference made ready for the detectors, with the thresholds computed for it."""

    reference: ReferenceProfile
    shares: np.ndarray              # q: training occurrence shares
    groups: np.ndarray              # the distinct training counts (> 0)
    group_of: np.ndarray            # each item's index into groups (-1 for a count of 0)
    multiplicity: np.ndarray        # items per group
    rank: np.ndarray                # training rank (count desc, then item), 0 = most frequent
    by_rank: np.ndarray             # the items in training rank order
    _index: dict[str, int] | None = None
    cache: OrderedDict[tuple[Any, ...], Any] = field(default_factory=OrderedDict)

    def recall(self, key: tuple[Any, ...]) -> Any:
        """A calibration computed before, or None."""
        with _LOCK:  # a schedule's thread and a request's may share a reference
            found = self.cache.get(key)
            if found is not None:
                self.cache.move_to_end(key)
            return found

    def remember(self, key: tuple[Any, ...], value: Any) -> None:
        """Keeps a calibration, forgetting the least recently used past
        :data:`CALIBRATIONS_KEPT` (some hold an array per item)."""
        with _LOCK:
            self.cache[key] = value
            while len(self.cache) > CALIBRATIONS_KEPT:
                self.cache.popitem(last=False)

    @property
    def index(self) -> dict[str, int]:
        if self._index is None:
            self._index = {item: i for i, item in enumerate(self.reference.items)}
        return self._index


_PREPARED: OrderedDict[tuple[Any, ...], Prepared] = OrderedDict()
_LOCK = threading.Lock()


def prepared(reference: ReferenceProfile) -> Prepared:
    """The reference prepared once (an LRU keyed by its version and content digest)."""
    digest = hashlib.blake2b(np.ascontiguousarray(reference.item_counts).tobytes(),
                             digest_size=16)
    digest.update(np.ascontiguousarray(reference.size_edges).tobytes())
    digest.update(np.ascontiguousarray(reference.size_counts).tobytes())
    key = (reference.model_version, reference.n_baskets, len(reference.items),
           digest.hexdigest())
    with _LOCK:
        found = _PREPARED.get(key)
        if found is not None:
            _PREPARED.move_to_end(key)
            return found
    counts = np.asarray(reference.item_counts, dtype=np.int64)
    positive = counts > 0
    groups, inverse, multiplicity = np.unique(counts[positive], return_inverse=True,
                                              return_counts=True)
    group_of = np.full(counts.shape[0], -1, dtype=np.int64)
    group_of[positive] = inverse
    order = np.lexsort((np.array(reference.items, dtype=object).astype(str), -counts))
    rank = np.empty(counts.shape[0], dtype=np.int64)
    rank[order] = np.arange(counts.shape[0])
    made = Prepared(reference, reference.item_shares, groups, group_of, multiplicity, rank,
                    order)
    with _LOCK:
        _PREPARED[key] = made
        while len(_PREPARED) > _CACHE_SIZE:
            _PREPARED.popitem(last=False)
    return made


def js_terms(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Each category's term of the Jensen-Shannon divergence (nats) of ``p`` and ``q``: all
    >= 0, summing to the divergence."""
    m = 0.5 * (p + q)
    with np.errstate(divide="ignore", invalid="ignore"):
        tp = np.where(p > 0, p * np.log(p / m), 0.0)
        tq = np.where(q > 0, q * np.log(q / m), 0.0)
    return 0.5 * (tp + tq)


def gamma_quantile(mean: float, var: float, level: float) -> float:
    """The ``level`` quantile of the gamma law with this mean and variance."""
    if mean <= 0.0:
        return 0.0
    if var <= 0.0:
        return mean
    from scipy.special import gammaincinv, ndtri

    shape, scale = mean * mean / var, var / mean
    quantile = float(gammaincinv(shape, level) * scale)
    if not math.isfinite(quantile):  # out of the function's range: the normal law's
        quantile = mean + float(ndtri(level)) * math.sqrt(var)
    return quantile


@dataclass(frozen=True)
class Categories:
    """The categories of the item distribution at one window size: the items expected at
    least :data:`MIN_EXPECTED` times each on their own (a prefix of the training ranks), the
    rarer ones pooled, in training rank order, into bands expected about
    :data:`BAND_EXPECTED` times each."""

    of_item: np.ndarray             # each item's category
    shares: np.ndarray              # training share per category
    singles: int                    # categories [0, singles) are single items


@dataclass(frozen=True)
class ItemNull:
    """The null law of the item Jensen-Shannon divergence for one window size."""

    categories: Categories
    mean: float
    var: float
    threshold: float                # on the divergence
    group_mean: np.ndarray          # each training count's expected term as a single item


def categories(prep: Prepared, n_entries: int) -> Categories:
    """The categories for windows of ``n_entries`` known occurrences (cached)."""
    key = ("categories", n_entries)
    found = prep.recall(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    q = prep.shares[prep.by_rank]
    lam = n_entries * q
    singles = int(np.count_nonzero(lam >= MIN_EXPECTED))  # q is descending: a prefix
    rest = lam[singles:]
    before = np.cumsum(rest) - rest
    n_bands = max(1, int(rest.sum() // BAND_EXPECTED)) if rest.shape[0] else 0
    band = np.minimum((before // BAND_EXPECTED).astype(np.int64), max(n_bands - 1, 0))
    of_rank = np.concatenate([np.arange(singles, dtype=np.int64), singles + band])
    of_item = np.empty_like(of_rank)
    of_item[prep.by_rank] = of_rank
    made = Categories(of_item, np.bincount(of_item, weights=prep.shares,
                                           minlength=singles + n_bands), singles)
    prep.remember(key, made)
    return made


def item_null(prep: Prepared, n: int, n_entries: int, false_alarm_rate: float,
              dispersion: float = 1.0) -> ItemNull:
    """The divergence's null law for ``n`` baskets holding ``n_entries`` known occurrences.

    Most of the divergence of a sparse window is its noise floor, whose mean moves with
    ``n_entries`` by many of its standard deviations: a threshold computed for a bucket's edge
    would not do for the whole bucket. The moments are computed at the two edges of the
    occurrence count's bucket (a power of 2^(1/16) apart, for the window's mean basket size
    to 2^(1/8)), on the categories of the lower edge, cached, and interpolated in log-log
    between them. ``dispersion`` widens the law's standard deviation (for the threshold;
    ``mean`` and ``var`` are the law's own)."""
    size = size_bucket_float(n_entries / max(n, 1))
    lo = size_bucket(n_entries, 16)
    hi = max(lo + 1, next_bucket(n_entries, 16))
    cats = categories(prep, lo)
    low = _category_moments(prep, cats, lo, lo, size)
    high = _category_moments(prep, cats, lo, hi, size) if lo != n_entries else low
    t = 0.0 if lo == n_entries else math.log(n_entries / lo) / math.log(hi / lo)
    mean = _log_interp(low[0], high[0], t)
    var = _log_interp(low[1], high[1], t)
    threshold = gamma_quantile(mean, var * dispersion * dispersion, 1.0 - false_alarm_rate)
    return ItemNull(cats, mean, var, threshold,
                    _item_means(prep, lo, size) * (lo / n_entries))


def _log_interp(a: float, b: float, t: float) -> float:
    if a <= 0.0 or b <= 0.0:
        return a + (b - a) * t
    return math.exp(math.log(a) + (math.log(b) - math.log(a)) * t)


def _category_moments(prep: Prepared, cats: Categories, defined_at: int, n_entries: int,
                      size: float) -> tuple[float, float]:
    """The divergence's null mean and variance over ``cats`` at ``n_entries``."""
    key = ("moments", defined_at, n_entries, size)
    found = prep.recall(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    n = max(1, round(n_entries / size))
    values, multiplicity = np.unique(cats.shares[cats.shares > 0], return_counts=True)
    mean, second = _term_moments(n_entries * values, n, float(n_entries))
    var_each = np.maximum(second - mean * mean, 0.0)
    made = (float((multiplicity * mean).sum()), float((multiplicity * var_each).sum()))
    prep.remember(key, made)
    return made


def _item_means(prep: Prepared, n_entries: int, size: float) -> np.ndarray:
    """Each training count's expected term of an item-level divergence (to tell which items
    deviate beyond sampling noise)."""
    key = ("item-means", n_entries, size)
    found = prep.recall(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    n = max(1, round(n_entries / size))
    lam = n_entries * prep.groups / max(prep.reference.n_entries, 1)
    made = _term_moments(lam, n, float(n_entries))[0]
    prep.remember(key, made)
    return made


def _term(x: np.ndarray, lam: np.ndarray, n_entries: float) -> np.ndarray:
    """An item's divergence term when it occurs ``x`` times where ``lam`` were expected."""
    with np.errstate(divide="ignore", invalid="ignore"):
        tx = np.where(x > 0, x * np.log(2.0 * x / (x + lam)), 0.0)
        tl = lam * np.log(2.0 * lam / (x + lam))
    return (tx + tl) / (2.0 * n_entries)


def _term_moments(lam: np.ndarray, n: int, n_entries: float) -> tuple[np.ndarray, np.ndarray]:
    """E[term] and E[term^2] per expected count ``lam``, the count ~ Binomial(n, lam / n)."""
    p = np.minimum(lam / max(n, 1), 1.0 - 1e-12)
    mean = np.empty_like(lam)
    second = np.empty_like(lam)
    exact = lam <= _EXACT_LAMBDA
    if exact.any():
        from scipy.special import gammaln

        ls, ps = lam[exact], p[exact]
        top = float(ls.max())
        x = np.arange(min(n, math.ceil(top + 8.0 * math.sqrt(top) + 10.0)) + 1,
                      dtype=np.float64)
        log_pmf = (gammaln(n + 1.0) - gammaln(x + 1.0) - gammaln(n - x + 1.0)
                   + x * np.log(ps)[:, None] + (n - x) * np.log1p(-ps)[:, None])
        pmf = np.exp(log_pmf)
        pmf /= pmf.sum(axis=1, keepdims=True)
        t = _term(x[None, :], ls[:, None], n_entries)
        mean[exact] = (pmf * t).sum(axis=1)
        second[exact] = (pmf * t * t).sum(axis=1)
    if (~exact).any():
        nodes, weights = _hermite()
        ll, pl = lam[~exact], p[~exact]
        x = np.maximum(ll[:, None] + np.sqrt(ll * (1.0 - pl))[:, None] * nodes[None, :], 0.0)
        t = _term(x, ll[:, None], n_entries)
        mean[~exact] = t @ weights
        second[~exact] = (t * t) @ weights
    return mean, second


@functools.cache
def _hermite() -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Hermite nodes and weights for an expectation under the standard normal law."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(_HERMITE_NODES)
    return nodes, weights / weights.sum()


def size_bins(reference: ReferenceProfile, sizes: np.ndarray) -> np.ndarray:
    """Baskets per bin of the training histogram; the last bin is open-ended and sizes below
    the first edge count in the first bin."""
    edges = reference.size_edges
    nb = reference.size_counts.shape[0]
    where = np.clip(np.searchsorted(edges, sizes, side="right") - 1, 0, nb - 1)
    return np.bincount(where, minlength=nb)


def size_threshold(prep: Prepared, n: int, false_alarm_rate: float, seed: int) -> float:
    """The (1 - false_alarm_rate) quantile of the size divergence for ``n`` baskets drawn
    from the training histogram (multinomial, resampled at the bucket's edge and scaled to
    ``n``)."""
    n_c = size_bucket(n, 16)
    key = ("sizes", n_c, false_alarm_rate, seed)
    found = prep.recall(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    shares = prep.reference.size_shares
    rng = np.random.default_rng([seed, n_c, 1])
    draws = rng.multinomial(n_c, shares, size=SIZE_RESAMPLES) / n_c
    divergences = js_terms(draws, shares[None, :]).sum(axis=1)
    made = float(np.quantile(divergences, 1.0 - false_alarm_rate, method="inverted_cdf"))
    prep.remember(key, made)
    # the divergence of a multinomial sample falls as 1 / n: from the bucket's edge to n
    return made * n_c / n


def entrant_weight(window_rank: int, k: int) -> float:
    """An entrant's weight in the top-k statistic: 1 at the window's first rank, 1/k at its
    k-th (churn at the top's edge weighs little, a newcomer at its head a lot)."""
    return (k + 1 - window_rank) / k


def top_threshold(prep: Prepared, n: int, n_entries: int, k: int, false_alarm_rate: float,
                  seed: int, dispersion: float = 1.0) -> float:
    """The (1 - false_alarm_rate) quantile of the weighted entrants into the top ``k`` under
    no change. The training top ``2k + 50`` are resampled, their deviations from the
    expected counts widened by ``dispersion``; the other items' chance of beating the
    window's k-th count is added as a Poisson count of entrants at the k-th rank."""
    n_c, e_c = size_bucket(n), size_bucket(n_entries)
    key = ("top", n_c, e_c, k, false_alarm_rate, seed, dispersion)
    found = prep.recall(key)
    if found is not None:
        return found  # type: ignore[no-any-return]
    n_items = prep.rank.shape[0]
    n_cand = min(n_items, 2 * k + 50)
    q = prep.shares[prep.by_rank]
    p = np.minimum(e_c * q / max(n_c, 1), 1.0)
    rng = np.random.default_rng([seed, n_c, e_c, k, 2])
    drawn = rng.binomial(n_c, np.broadcast_to(p[:n_cand], (TOP_RESAMPLES, n_cand)))
    expected = n_c * p[:n_cand]
    counts = np.round(expected + dispersion * (drawn - expected))
    # window order: count desc, then training rank (the column): a tie never makes an entrant
    score = counts * float(n_cand + 1) - np.arange(n_cand)[None, :]
    kk = min(k, n_cand)
    chosen = np.argpartition(-score, kk - 1, axis=1)[:, :kk]
    position = np.argsort(np.argsort(-np.take_along_axis(score, chosen, axis=1), axis=1),
                          axis=1)
    weights = np.where(chosen >= k, (k - position) / k, 0.0).sum(axis=1)
    if n_cand < n_items:
        kth = np.take_along_axis(counts, chosen, axis=1).min(axis=1)
        weights = weights + rng.poisson(_tail_above(p[n_cand:], n_c, kth)) / k
    made = float(np.quantile(weights, 1.0 - false_alarm_rate, method="inverted_cdf"))
    prep.remember(key, made)
    return made


def _tail_above(p_tail: np.ndarray, n: int, kth: np.ndarray) -> np.ndarray:
    """Expected number of tail items counted more than ``kth`` times, per resample."""
    from scipy.special import bdtrc

    values, inverse = np.unique(kth, return_inverse=True)
    p_vals, mult = np.unique(p_tail[p_tail > 0], return_counts=True)
    expected = np.array([float((mult * bdtrc(int(v), n, p_vals)).sum()) for v in values])
    return expected[inverse]
