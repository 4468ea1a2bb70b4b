"""Streaming per-unit statistics over a sweep of feature maps: top-k images and thresholds.

Each statistic is a small class with ``add(batch)``, ``result()``, ``state_dict()`` /
``load_state_dict()`` and ``merge(other)``, so a long sweep can be resumed and shards
computed on several workers can be combined into exactly the single-pass answer.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import EngineError


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
        if self.scores is not None:
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
        if self.scores is None:
            raise ValueError("RunningTopK saw no data")
        return self.scores.cpu(), self.indices.cpu()

    def merge(self, other: RunningTopK) -> None:
        """Fold in a shard computed on other images (image indices must not overlap)."""
        if other.scores is None:
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
    ``m = ceil(quantile * total) + 2`` values seen (one more than REFERENCES' ``+1`` as a
    margin for float32 rank rounding). ``total`` must be known up front to drop values safely:
    pass ``expected_images`` (rows the *whole* run will add, over all shards); each row brings
    ``H * W`` values per unit. Without it every value is kept (exact, but unbounded).
    """

    def __init__(self, quantile: float = 0.005, *, expected_images: int | None = None, values_per_image: int = 0) -> None:
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
        self.top: torch.Tensor | None = None  # [U, <=capacity] the largest values kept
        self._pending: list[torch.Tensor] = []  # values added since the last selection
        self._pending_cols = 0
        self._floor: torch.Tensor | None = None  # [U] smallest kept value once the top set is full

    def capacity(self) -> int | None:
        if self.expected_images is None or self.values_per_image == 0:
            return None
        total = self.expected_images * self.values_per_image
        return math.ceil(self.quantile * total) + 2

    def add(self, acts: torch.Tensor) -> None:
        acts = acts.detach()
        per_image = int(np.prod(acts.shape[2:])) if acts.dim() > 2 else 1
        if per_image > self.values_per_image:
            if self.dropped:
                # Values already thrown away could now belong in the larger top set.
                self.exact = False
                warnings.warn("feature map size grew after values were dropped: threshold may be inexact")
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
        # would only stand in for an equal value), so only the few above it are buffered;
        # selecting the top set once the buffer passes an eighth of the capacity keeps both
        # the cost per value and the memory (about 2.5 x capacity at a selection) bounded.
        if self._floor is not None:
            above = int((values > self._floor.to(values.device)[:, None]).sum(dim=1).max())
            if above == 0:
                return
            if above < values.shape[1]:
                values = values.topk(above, dim=1, sorted=False).values
        self._pending.append(values)
        self._pending_cols += values.shape[1]
        cap = self.capacity()
        kept = 0 if self.top is None else self.top.shape[1]
        if cap is not None and kept + self._pending_cols > cap + max(1, cap // 8):
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        parts = ([] if self.top is None else [self.top.to(self._pending[0].device)]) + self._pending
        device, dtype = parts[-1].device, parts[-1].dtype
        parts = [p.to(device, dtype) for p in parts]
        self._pending, self._pending_cols = [], 0
        cap = self.capacity()
        total = sum(p.shape[1] for p in parts)
        if cap is None or total <= cap:
            self.top = torch.cat(parts, dim=1)
        else:
            # A few units at a time: topk's int64 indices would otherwise double the peak.
            units = parts[0].shape[0]
            top = torch.empty((units, cap), dtype=dtype, device=device)
            step = max(1, (1 << 24) // max(1, total))
            for u in range(0, units, step):
                chunk = torch.cat([p[u : u + step] for p in parts], dim=1)
                top[u : u + step] = chunk.topk(cap, dim=1, sorted=False).values
            del parts
            self.top = top
            self.dropped = True
        self._update_floor()

    def _update_floor(self) -> None:
        cap = self.capacity()
        full = cap is not None and self.top is not None and self.top.shape[1] >= cap
        self._floor = self.top.amin(dim=1) if full else None

    def merge(self, other: RunningQuantile) -> None:
        """Fold in a shard (which must have been sized with the same ``expected_images``)."""
        other._flush()
        if other.top is None:
            return
        if other.quantile != self.quantile or other.expected_images != self.expected_images:
            raise ValueError("merged RunningQuantile shards must share quantile and expected_images")
        self.values_per_image = max(self.values_per_image, other.values_per_image)
        self._update_floor()
        self.count += other.count
        self.dropped = self.dropped or other.dropped
        self.exact = self.exact and other.exact
        self._keep_top(other.top)
        self._flush()

    def result(self) -> torch.Tensor:
        """Threshold per unit, equal to ``torch.quantile(A[:, u].flatten(), 1 - quantile)``."""
        self._flush()
        if self.top is None or self.count == 0:
            raise ValueError("RunningQuantile saw no data")
        n = self.count
        kept = self.top.sort(dim=1, descending=True).values
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
        lo = kept[:, d_below]
        hi = kept[:, d_above]
        return torch.lerp(lo, hi, weight).cpu()

    def state_dict(self) -> dict:
        self._flush()
        return {
            "kind": "RunningQuantile",
            "quantile": self.quantile,
            "expected_images": self.expected_images,
            "values_per_image": self.values_per_image,
            "count": self.count,
            "dropped": self.dropped,
            "exact": self.exact,
            "top": None if self.top is None else self.top.cpu(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.quantile = float(state["quantile"])
        self.expected_images = state["expected_images"]
        self.values_per_image = int(state["values_per_image"])
        self.count = int(state["count"])
        self.dropped = bool(state["dropped"])
        self.exact = bool(state["exact"])
        self.top = state["top"]
        self._pending, self._pending_cols = [], 0
        self._update_floor()

    @classmethod
    def from_state_dict(cls, state: dict) -> RunningQuantile:
        stat = cls(float(state["quantile"]), expected_images=state["expected_images"])
        stat.load_state_dict(state)
        return stat


_HALF = 1 << 16  # bins per radix level: 16 bits of a 32-bit key


def _sortable_keys(values: torch.Tensor) -> torch.Tensor:
    """float32 -> int64 keys in [0, 2**32) whose order is the floats' order."""
    bits = values.float().contiguous().view(torch.int32).to(torch.int64)
    return torch.where(bits >= 0, bits + (1 << 31), -1 - bits)


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

    def add(self, acts: torch.Tensor) -> None:
        values = _as_unit_values(acts.detach())
        units, n = values.shape
        dev = values.device
        offsets = torch.arange(units, device=dev)[:, None] * _HALF
        step = max(1, (1 << 23) // max(1, units))  # columns per chunk: bounds the int64 temporaries
        if not self.refining:
            if self.hist is None:
                self.hist = torch.zeros((units, _HALF), dtype=torch.int64, device=dev)
            for c in range(0, n, step):
                keys = _sortable_keys(values[:, c : c + step])
                self.hist.view(-1).add_(torch.bincount(((keys >> 16) + offsets).flatten(), minlength=units * _HALF))
            self.count += n
            return
        if self.refined + n > self.count:
            raise ValueError("RadixQuantile's second sweep saw more values than its first")
        for c in range(0, n, step):
            keys = _sortable_keys(values[:, c : c + step])
            high, low = keys >> 16, keys & (_HALF - 1)
            for side in range(2):
                hit = high == self.bins[:, side : side + 1].to(dev)
                flat = (low + offsets)[hit]
                self.low[side].view(-1).add_(torch.bincount(flat, minlength=units * _HALF).to(self.low.device))
        self.refined += n

    def start_refine(self) -> None:
        """After the first sweep: locate the bins; the next ``add`` calls are the second sweep."""
        if self.hist is None or self.count == 0:
            raise ValueError("RadixQuantile saw no data")
        below, above, _ = self._positions()
        cum = self.hist.cumsum(dim=1)
        targets = torch.tensor([below, above], dtype=torch.int64, device=cum.device).expand(cum.shape[0], 2).contiguous()
        bins = torch.searchsorted(cum, targets, right=True)  # first bin whose cumulative count > position
        before = torch.where(bins > 0, cum.gather(1, (bins - 1).clamp(min=0)), torch.zeros_like(bins))
        self.bins, self.ranks = bins, targets - before
        self.low = torch.zeros((2, cum.shape[0], _HALF), dtype=torch.int64, device=cum.device)
        self.refining = True

    @property
    def needs_refine(self) -> bool:
        return not self.refining or self.refined < self.count

    def result(self) -> torch.Tensor:
        if not self.refining or self.refined != self.count:
            raise ValueError("RadixQuantile needs its second sweep over the same values before result()")
        _, _, weight = self._positions()
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


def quantile_from_state(state: dict) -> RunningQuantile | RadixQuantile:
    """The quantile statistic a state_dict came from (either kind)."""
    if state.get("kind") == "RadixQuantile":
        return RadixQuantile.from_state_dict(state)
    return RunningQuantile.from_state_dict(state)


def load_thresholds(path: str | Path, layers: list[str], num_units: dict[str, int] | None = None) -> dict[str, np.ndarray]:
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
