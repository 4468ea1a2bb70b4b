"""Streaming per-unit statistics over a sweep of feature maps: top-k images and thresholds.

Each statistic is a small class with ``add(batch)``, ``result()``, ``state_dict()`` /
``load_state_dict()`` and ``merge(other)``, so a long sweep can be resumed and shards
computed on several workers can be combined into exactly the single-pass answer.

Every method that computes runs under ``torch.inference_mode()`` whatever mode its caller is
in: a sweep adds batches inside inference mode, while ``state_dict``, ``merge`` and a resume
often run outside it, and torch refuses an in-place update of a tensor made in inference mode
once outside it. So the statistics' own tensors may be inference tensors: they are changed
only here, and what ``result()`` hands out is an ordinary tensor.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import EngineError


_computing = torch.inference_mode  # decorator: the statistics' work, in the one mode that can change their tensors


def _handed_out(t: torch.Tensor) -> torch.Tensor:
    """A result for the caller: an ordinary tensor outside inference mode (a copy of a small result)."""
    return t if torch.is_inference_mode_enabled() else t.clone()


def _as_unit_values(acts: torch.Tensor) -> torch.Tensor:
    """[B, U, *spatial] -> [U, B * prod(spatial)] (every value a unit took on)."""
    if acts.dim() < 2:
        raise ValueError(f"expected activations shaped [batch, units, ...], got {tuple(acts.shape)}")
    return acts.transpose(0, 1).reshape(acts.shape[1], -1)


class RunningTopK:
    """Per unit, the k images with the largest spatial maximum, ties broken by image index.

    ``add(acts, indices)`` takes activations [B, U, H, W] (or per-image scores [B, U]) and
    the dataset index of each row. ``result()`` gives ``(scores [U, k], indices [U, k])``
    in rank order (fewer than k columns when fewer images were seen).
    """

    def __init__(self, k: int = 10) -> None:
        if k < 1:
            raise ValueError("k must be at least 1")
        self.k = k
        self.scores: torch.Tensor | None = None  # [U, <=k] float
        self.indices: torch.Tensor | None = None  # [U, <=k] long
        self.count = 0

    @_computing()
    def add(self, acts: torch.Tensor, indices: torch.Tensor | np.ndarray | list[int]) -> None:
        acts = acts.detach()
        scores = acts.flatten(2).amax(dim=2) if acts.dim() > 2 else acts
        scores = scores.float()
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long, device=scores.device)
        if idx.shape[0] != scores.shape[0]:
            raise ValueError("one dataset index per row of activations is needed")
        cand_scores = scores.t()  # [U, B]
        cand_idx = idx.unsqueeze(0).expand_as(cand_scores)
        self._keep_best(cand_scores, cand_idx)
        self.count += scores.shape[0]

    def _keep_best(self, cand_scores: torch.Tensor, cand_idx: torch.Tensor) -> None:
        if self.scores is not None and self.indices is not None:
            cand_scores = torch.cat([self.scores.to(cand_scores.device), cand_scores], dim=1)
            cand_idx = torch.cat([self.indices.to(cand_idx.device), cand_idx], dim=1)
        # Order by image index first, then a *stable* descending sort by score keeps the lower
        # image index in front among equal scores: a deterministic tie rule.
        by_index = cand_idx.argsort(dim=1, stable=True)
        cand_idx = cand_idx.gather(1, by_index)
        cand_scores = cand_scores.gather(1, by_index)
        order = cand_scores.argsort(dim=1, descending=True, stable=True)[:, : self.k]
        self.scores = cand_scores.gather(1, order)
        self.indices = cand_idx.gather(1, order)

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.scores is None or self.indices is None:
            raise ValueError("RunningTopK saw no data")
        return _handed_out(self.scores.cpu()), _handed_out(self.indices.cpu())

    @_computing()
    def merge(self, other: RunningTopK) -> None:
        """Fold in a shard computed on other images (image indices must not overlap)."""
        if other.scores is None or other.indices is None:
            return
        if other.k != self.k:
            raise ValueError(f"cannot merge top-{other.k} into top-{self.k}")
        device = self.scores.device if self.scores is not None else other.scores.device
        self._keep_best(other.scores.to(device), other.indices.to(device))
        self.count += other.count

    def state_dict(self) -> dict:
        return {
            "kind": "RunningTopK",
            "k": self.k,
            "count": self.count,
            "scores": None if self.scores is None else self.scores.cpu(),
            "indices": None if self.indices is None else self.indices.cpu(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.k = int(state["k"])
        self.count = int(state["count"])
        self.scores = state["scores"]
        self.indices = state["indices"]

    @classmethod
    def from_state_dict(cls, state: dict) -> RunningTopK:
        stat = cls(int(state["k"]))
        stat.load_state_dict(state)
        return stat


class RunningQuantile:
    """Exact per-unit ``1 - quantile`` quantile (torch.quantile, linear interpolation).

    Memory stays bounded by keeping, per unit, only the largest
    ``m = ceil(quantile * total) + 2`` values seen (one more than NetDissect-Lite's ``+1`` as a
    margin for float32 rank rounding). ``total`` must be known up front to drop values safely:
    pass ``expected_images`` (rows the *whole* run will add, over all shards); each row brings
    ``H * W`` values per unit. Without it every value is kept (exact, but unbounded).

    The kept values live in one buffer of ``m`` columns allocated once; newcomers are
    buffered until they pass an eighth of ``m`` and then replace the smallest kept values in
    place, a few units at a time, so the peak is about ``1.125 m`` values per unit plus one
    batch (``memory_bytes``), not a second copy of the kept set.
    """

    PENDING_FRACTION = 8  # newcomers are merged in once they pass capacity / 8
    _CHUNK_VALUES = 1 << 20  # values per unit chunk in a merge or a final selection (bounds the temporaries)

    def __init__(self, quantile: float = 0.005, *, expected_images: int | None = None,
                 values_per_image: int = 0) -> None:
        if not 0.0 <= quantile < 1.0:
            raise ValueError("quantile must lie in [0, 1)")
        self.quantile = quantile
        self.expected_images = expected_images
        # Largest H*W seen; sizes the capacity. Known up front (the planner probes every image
        # size), a dataset of mixed sizes never grows it after values were dropped.
        self.values_per_image = values_per_image
        self.count = 0  # values seen per unit
        self.dropped = False  # whether any value was ever discarded
        self.exact = True
        # [U, capacity] (or [U, filled] unbounded); first `filled` columns hold values
        self._buf: torch.Tensor | None = None
        self.filled = 0
        self._pending: list[torch.Tensor] = []  # values added since the last merge
        self._pending_cols = 0
        self._floor: torch.Tensor | None = None  # [U] smallest kept value once the kept set is full
        self._borrowed = False  # the buffer came from load_state_dict: copied before it is changed

    @staticmethod
    def memory_bytes(units: int, capacity: int, batch_values: int = 0, element_size: int = 4,
                     threads: int | None = None) -> int:
        """Peak bytes of the statistic for ``units`` units: the kept set, the newcomers buffered
        before a merge (an eighth of it plus one batch's values), and the largest temporaries of
        one step. torch's CPU topk copies each row it works on as (value, int64 index) pairs, one
        row per thread at a time, so a selection over a unit's kept values costs 16 bytes per value
        on top of its results."""
        threads = threads or torch.get_num_threads()
        pending = capacity // RunningQuantile.PENDING_FRACTION + 1 + batch_values
        k = min(pending, capacity)
        # add(): the batch as [U, values], its comparison with the floor, and when under a quarter
        # passes, topk's values and indices of those (at most 3 bytes per value in)
        add = units * batch_values * (element_size + 1 + 3) + min(units, threads) * batch_values * 16
        # a merge: per chunk of units the k smallest kept values
        # (row copies, values, positions), the candidates, and topk over them
        step = min(units, max(1, RunningQuantile._CHUNK_VALUES // max(1, pending + k)))
        rows = min(step, threads)
        merge = (rows * capacity * 16
                 + step * (k * (element_size + 8) + (pending + k) * (element_size + 16) + k * (element_size + 8)))
        # result(): kthvalue copies each row it selects in (value + int64 index), a few units at a time
        step = min(units, max(1, RunningQuantile._CHUNK_VALUES // max(1, capacity)))
        final = step * capacity * (element_size + 8) + step * element_size
        return units * (capacity + pending) * element_size + max(add, merge, final)

    @property
    @_computing()
    def top(self) -> torch.Tensor | None:
        """The kept values [U, filled] (a view of the buffer; unordered)."""
        self._flush()
        return None if self._buf is None else self._buf[:, : self.filled]

    def capacity(self) -> int | None:
        if self.expected_images is None or self.values_per_image == 0:
            return None
        total = self.expected_images * self.values_per_image
        return math.ceil(self.quantile * total) + 2

    @_computing()
    def add(self, acts: torch.Tensor) -> None:
        acts = acts.detach()
        per_image = int(np.prod(acts.shape[2:])) if acts.dim() > 2 else 1
        if per_image > self.values_per_image:
            if self.dropped:
                # Values already thrown away could now belong in the larger top set.
                self.exact = False
                warnings.warn("feature map size grew after values were dropped: threshold may be inexact", stacklevel=2)
            self.values_per_image = per_image
            self._update_floor()  # a larger capacity: the kept set is no longer full
        values = _as_unit_values(acts)
        self.count += values.shape[1]
        if self.expected_images is not None and self.count > self.expected_images * self.values_per_image:
            raise ValueError(
                f"RunningQuantile got more values ({self.count}) than expected_images="
                f"{self.expected_images} allows; pass the size of the whole dataset"
            )
        self._keep_top(values)

    def _keep_top(self, values: torch.Tensor) -> None:
        # Values not above the smallest kept one cannot change the top set (an equal value
        # would only stand in for an equal value), so only the few above it are buffered.
        if self._floor is not None:
            above = int((values > self._floor.to(values.device)[:, None]).sum(dim=1).max())
            if above == 0:
                return
            if 4 * above < values.shape[1]:
                # Few pass: keep those (topk's int64 indices cost 3x the values they select, so a
                # batch most of whose values pass is kept whole; the merge drops the rest).
                values = values.topk(above, dim=1, sorted=False).values
        self._pending.append(values)
        self._pending_cols += values.shape[1]
        cap = self.capacity()
        # Merged once they pass an eighth of the capacity, also while the kept set fills up (holding a
        # whole capacity of newcomers before the first merge would double the peak).
        if cap is None or self._pending_cols > max(1, cap // self.PENDING_FRACTION):
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        parts, self._pending, self._pending_cols = self._pending, [], 0
        device, dtype = parts[-1].device, parts[-1].dtype
        units = parts[-1].shape[0]
        cap = self.capacity()
        if cap is None:
            # Unbounded (no expected size): every value is kept.
            kept = [] if self._buf is None else [self._buf[:, : self.filled].to(device, dtype)]
            self._buf = torch.cat(kept + [p.to(device, dtype) for p in parts], dim=1)
            self.filled = self._buf.shape[1]
            return
        self._reserve(cap, units, device, dtype)
        assert self._buf is not None  # _reserve made it
        overflow = []
        for part in parts:
            part = part.to(device, dtype)
            room = cap - self.filled
            if room > 0:
                take = min(room, part.shape[1])
                self._buf[:, self.filled : self.filled + take] = part[:, :take]
                self.filled += take
                part = part[:, take:]
            if part.shape[1]:
                overflow.append(part)
        if overflow:
            self._replace_smallest(overflow)
            self.dropped = True
        self._update_floor()

    def _reserve(self, cap: int, units: int, device, dtype) -> None:
        """The kept-value buffer at full capacity (kept values copied over once, on resume)."""
        if self._buf is not None and self._buf.shape[1] >= cap and not self._borrowed:
            return
        buf = torch.empty((units, cap), dtype=dtype, device=device)
        if self._buf is not None and self.filled:
            buf[:, : self.filled] = self._buf[:, : self.filled].to(device, dtype)
        self._buf, self._borrowed = buf, False

    def _replace_smallest(self, newcomers: list[torch.Tensor]) -> None:
        """Keep the largest ``capacity`` of kept values and ``newcomers`` (parts [U, *]), in place.

        Only the P smallest kept values can lose their place (each other kept value has at most
        P newcomers and fewer than capacity - P kept values above it), so the new kept set is the
        kept set less those P, plus the largest P of those P and the newcomers.
        """
        assert self._buf is not None  # only called once the buffer is full
        units, p = newcomers[0].shape[0], sum(part.shape[1] for part in newcomers)
        k = min(p, self._buf.shape[1])  # more newcomers than kept values: every kept value may go
        step = max(1, self._CHUNK_VALUES // max(1, p + k))
        for u in range(0, units, step):
            rows = self._buf[u : u + step]
            low, where = rows.topk(k, dim=1, largest=False, sorted=False)
            # the newcomers of these units only: no copy of all of them at once
            best = torch.cat([low] + [part[u : u + step] for part in newcomers],
                             dim=1).topk(k, dim=1, sorted=False).values
            rows.scatter_(1, where, best)

    def _update_floor(self) -> None:
        cap = self.capacity()
        if cap is not None and self._buf is not None and self.filled >= cap:
            self._floor = self._buf[:, : self.filled].amin(dim=1)
        else:
            self._floor = None

    @_computing()
    def merge(self, other: RunningQuantile) -> None:
        """Fold in a shard (which must have been sized with the same ``expected_images``)."""
        other._flush()
        if other._buf is None or other.filled == 0:
            return
        if other.quantile != self.quantile or other.expected_images != self.expected_images:
            raise ValueError("merged RunningQuantile shards must share quantile and expected_images")
        self.values_per_image = max(self.values_per_image, other.values_per_image)
        self._update_floor()
        self.count += other.count
        self.dropped = self.dropped or other.dropped
        self.exact = self.exact and other.exact
        self._keep_top(other._buf[:, : other.filled])
        self._flush()

    def result(self) -> torch.Tensor:
        """Threshold per unit, equal to ``torch.quantile(A[:, u].flatten(), 1 - quantile)``."""
        return _handed_out(self._result())

    @_computing()
    def _result(self) -> torch.Tensor:
        self._flush()
        if self._buf is None or self.count == 0:
            raise ValueError("RunningQuantile saw no data")
        n = self.count
        kept = self._buf[:, : self.filled]
        # Same arithmetic as torch.quantile: q is taken in the input dtype, the rank
        # q * (n - 1) in double, the weight cast back for lerp. Positions count from the top
        # here: ascending position i is descending position n-1-i.
        q = float(torch.tensor(1.0 - self.quantile, dtype=kept.dtype).double())
        rank = q * (n - 1)
        below, above = math.floor(rank), math.ceil(rank)
        weight = torch.tensor(rank - below, dtype=kept.dtype, device=kept.device)
        d_below, d_above = n - 1 - below, n - 1 - above
        if d_below >= kept.shape[1]:
            raise ValueError("RunningQuantile kept too few values for an exact answer")
        # The (d+1)-th largest value is the (kept - d)-th smallest: kthvalue, a few units at a time
        # (a sort would hold the kept set twice more, with int64 positions).
        lo, hi = [], []
        size = kept.shape[1]
        step = max(1, self._CHUNK_VALUES // max(1, size))
        for u in range(0, kept.shape[0], step):
            rows = kept[u : u + step]
            lo.append(rows.kthvalue(size - d_below, dim=1).values)
            hi.append(lo[-1] if d_above == d_below else rows.kthvalue(size - d_above, dim=1).values)
        return torch.lerp(torch.cat(lo), torch.cat(hi), weight).cpu()

    @_computing()
    def state_dict(self) -> dict:
        """The statistic's state. Once the kept set is full its tensor is the live buffer (no
        second copy of the largest part of a sweep's memory): save it before adding more."""
        self._flush()
        top = None
        if self._buf is not None:
            full = self.filled == self._buf.shape[1]
            top = self._buf.cpu() if full else self._buf[:, : self.filled].cpu().clone()
        return {
            "kind": "RunningQuantile",
            "quantile": self.quantile,
            "expected_images": self.expected_images,
            "values_per_image": self.values_per_image,
            "count": self.count,
            "dropped": self.dropped,
            "exact": self.exact,
            "top": top,
        }

    def load_state_dict(self, state: dict, *, own: bool = False) -> None:
        """``own=True``: the state's tensor becomes the buffer and is changed in place (a resume
        from a stage file nobody else reads); otherwise it is copied before the first change."""
        self.quantile = float(state["quantile"])
        self.expected_images = state["expected_images"]
        self.values_per_image = int(state["values_per_image"])
        self.count = int(state["count"])
        self.dropped = bool(state["dropped"])
        self.exact = bool(state["exact"])
        self._buf = state["top"]
        self.filled = 0 if self._buf is None else self._buf.shape[1]
        self._borrowed = self._buf is not None and not own  # the caller's tensor: never changed in place
        self._pending, self._pending_cols = [], 0
        self._update_floor()

    @classmethod
    def from_state_dict(cls, state: dict, *, own: bool = False) -> RunningQuantile:
        stat = cls(float(state["quantile"]), expected_images=state["expected_images"])
        stat.load_state_dict(state, own=own)
        return stat


_HALF = 1 << 16  # bins per radix level: 16 bits of a 32-bit key


def _key_halves(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The 16 high and 16 low bits of each float32's sortable key (an unsigned 32-bit number whose
    order is the floats' order: bits + 2**31 for bits >= 0, ~bits otherwise), as int32: the high
    half is bits >> 16 plus 2**15, or (~bits) >> 16, the low half the low 16 bits of bits or ~bits.
    (Computed in int32, 3.4x faster than through int64 keys on a resnet18 layer1 batch.)"""
    bits = values.float().contiguous().view(torch.int32)
    positive = bits >= 0
    magnitude = torch.where(positive, bits, ~bits)  # >= 0
    high = (magnitude >> 16) + positive.to(torch.int32) * (1 << 15)
    return high, magnitude & (_HALF - 1)


def _key_values(keys: torch.Tensor) -> torch.Tensor:
    bits = torch.where(keys >= (1 << 31), keys - (1 << 31), -1 - keys)
    return bits.to(torch.int32).view(torch.float32)


class RadixQuantile:
    """Exact per-unit quantile (torch.quantile's answer) in memory that does not grow with
    the data, for layers whose running top-m would not fit: two sweeps over the same values.

    The first sweep counts each value's 16 high key bits per unit (a radix histogram); that
    locates the bins holding the two order statistics torch.quantile interpolates between.
    After ``start_refine()`` a second sweep over the same values counts the 16 low bits of the
    values in those bins, which pins both order statistics exactly. Memory: 3 x 2**16 counts
    per unit (1.5 MB), whatever the number of images.
    """

    def __init__(self, quantile: float = 0.005) -> None:
        if not 0.0 <= quantile < 1.0:
            raise ValueError("quantile must lie in [0, 1)")
        self.quantile = quantile
        self.count = 0
        self.hist: torch.Tensor | None = None  # [U, 2**16] high-bit counts
        self.refining = False
        self.refined = 0  # values seen per unit in the second sweep
        self.bins: torch.Tensor | None = None  # [U, 2] high bins of the lower/upper order statistic
        self.ranks: torch.Tensor | None = None  # [U, 2] their ranks inside those bins
        self.low: torch.Tensor | None = None  # [2, U, 2**16] low-bit counts inside the two bins

    @staticmethod
    def memory_bytes(units: int) -> int:
        return units * 3 * _HALF * 8

    def _positions(self) -> tuple[int, int, torch.Tensor]:
        # torch.quantile's arithmetic: q in float32, rank q * (n - 1) in double.
        q = float(torch.tensor(1.0 - self.quantile, dtype=torch.float32).double())
        rank = q * (self.count - 1)
        return math.floor(rank), math.ceil(rank), torch.tensor(rank - math.floor(rank), dtype=torch.float32)

    @_computing()
    def add(self, acts: torch.Tensor) -> None:
        values = _as_unit_values(acts.detach())
        units, n = values.shape
        dev = values.device
        offsets = torch.arange(units, dtype=torch.int32, device=dev)[:, None] * _HALF  # units * 2**16 < 2**31
        step = max(1, (1 << 23) // max(1, units))  # columns per chunk: bounds the temporaries
        if not self.refining:
            if self.hist is None:
                self.hist = torch.zeros((units, _HALF), dtype=torch.int64, device=dev)
            for c in range(0, n, step):
                high, _ = _key_halves(values[:, c : c + step])
                self.hist.view(-1).add_(torch.bincount((high + offsets).flatten(), minlength=units * _HALF))
            self.count += n
            return
        if self.refined + n > self.count:
            raise ValueError("RadixQuantile's second sweep saw more values than its first")
        assert self.bins is not None and self.low is not None  # start_refine set them
        for c in range(0, n, step):
            high, low = _key_halves(values[:, c : c + step])
            for side in range(2):
                hit = high == self.bins[:, side : side + 1].to(dev)
                flat = (low + offsets)[hit]
                self.low[side].view(-1).add_(torch.bincount(flat, minlength=units * _HALF).to(self.low.device))
        self.refined += n

    @_computing()
    def start_refine(self) -> None:
        """After the first sweep: locate the bins; the next ``add`` calls are the second sweep."""
        if self.hist is None or self.count == 0:
            raise ValueError("RadixQuantile saw no data")
        below, above, _ = self._positions()
        cum = self.hist.cumsum(dim=1)
        targets = torch.tensor([below, above], dtype=torch.int64,
                               device=cum.device).expand(cum.shape[0], 2).contiguous()
        bins = torch.searchsorted(cum, targets, right=True)  # first bin whose cumulative count > position
        before = torch.where(bins > 0, cum.gather(1, (bins - 1).clamp(min=0)), torch.zeros_like(bins))
        self.bins, self.ranks = bins, targets - before
        self.low = torch.zeros((2, cum.shape[0], _HALF), dtype=torch.int64, device=cum.device)
        self.refining = True

    @property
    def needs_refine(self) -> bool:
        return not self.refining or self.refined < self.count

    def result(self) -> torch.Tensor:
        return _handed_out(self._result())

    @_computing()
    def _result(self) -> torch.Tensor:
        if not self.refining or self.refined != self.count:
            raise ValueError("RadixQuantile needs its second sweep over the same values before result()")
        _, _, weight = self._positions()
        assert self.bins is not None and self.ranks is not None and self.low is not None  # start_refine set them
        cum = self.low.cumsum(dim=2)  # [2, U, 2**16]
        low = torch.searchsorted(cum, self.ranks.t()[:, :, None].contiguous(), right=True)[:, :, 0].t()
        values = _key_values((self.bins << 16) | low)  # [U, 2]: the two order statistics
        return torch.lerp(values[:, 0], values[:, 1], weight.to(values.device)).cpu()

    def state_dict(self) -> dict:
        cpu = lambda t: None if t is None else t.cpu()  # noqa: E731
        return {
            "kind": "RadixQuantile", "quantile": self.quantile, "count": self.count, "hist": cpu(self.hist),
            "refining": self.refining, "refined": self.refined, "bins": cpu(self.bins), "ranks": cpu(self.ranks),
            "low": cpu(self.low),
        }

    def load_state_dict(self, state: dict) -> None:
        self.quantile = float(state["quantile"])
        self.count, self.refining, self.refined = int(state["count"]), bool(state["refining"]), int(state["refined"])
        self.hist, self.bins, self.ranks, self.low = state["hist"], state["bins"], state["ranks"], state["low"]

    @classmethod
    def from_state_dict(cls, state: dict) -> RadixQuantile:
        stat = cls(float(state["quantile"]))
        stat.load_state_dict(state)
        return stat


def quantile_from_state(state: dict, *, own: bool = False) -> RunningQuantile | RadixQuantile:
    """The quantile statistic a state_dict came from (either kind); ``own``: see RunningQuantile.load_state_dict."""
    if state.get("kind") == "RadixQuantile":
        return RadixQuantile.from_state_dict(state)
    return RunningQuantile.from_state_dict(state, own=own)


def load_thresholds(path: str | Path, layers: list[str], num_units: dict[str,
                                                                         int] | None = None) -> dict[str, np.ndarray]:
    """Thresholds from a file instead of a sweep: ``.npy`` (one layer) or ``.npz`` (per layer).

    A ``.npy`` file can serve several layers only as a 2-D array with one row per layer;
    ``.npz`` keys are layer names. ``num_units`` (when known) checks each array's length.
    """
    path = Path(path)
    if not path.is_file():
        raise EngineError(f"thresholds file {path} does not exist; give a .npy or .npz written by a dissection")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy raises several kinds for a damaged file
        raise EngineError(f"cannot read thresholds file {path} ({exc}); give a .npy or .npz array file") from exc
    out: dict[str, np.ndarray] = {}
    if isinstance(loaded, np.lib.npyio.NpzFile):
        missing = [layer for layer in layers if layer not in loaded.files]
        if missing:
            raise EngineError(
                f"thresholds file {path} has no array for layer(s) {', '.join(missing)}; "
                f"it holds {', '.join(loaded.files) or 'nothing'}"
            )
        out = {layer: np.asarray(loaded[layer], dtype=np.float32) for layer in layers}
    else:
        arr = np.asarray(loaded, dtype=np.float32)
        if arr.ndim == 1 and len(layers) == 1:
            out = {layers[0]: arr}
        elif arr.ndim == 2 and arr.shape[0] == len(layers):
            out = {layer: arr[i] for i, layer in enumerate(layers)}
        else:
            raise EngineError(
                f"thresholds file {path} holds an array shaped {arr.shape}; for {len(layers)} layer(s) "
                "give a 1-D .npy per layer or an .npz keyed by layer name"
            )
    for layer, arr in out.items():
        if arr.ndim != 1:
            raise EngineError(f"thresholds for layer {layer} in {path} must be 1-D, got shape {arr.shape}")
        if num_units is not None and layer in num_units and arr.shape[0] != num_units[layer]:
            raise EngineError(
                f"thresholds for layer {layer} in {path} have {arr.shape[0]} values but the layer has "
                f"{num_units[layer]} units"
            )
    return out
