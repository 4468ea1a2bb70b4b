"""The whole run's on-disk state: named stage files for resuming, and the feature-map spill.

Everything lives in one folder (``<out_dir>/.dissect-cache`` by default), one named file
per stage as davidbau/dissect does (``plan.json``, ``sweep.pt``, ``counts.pt``), so a run
killed mid-sweep restarts from its last finished chunk. A stage file is written to a
temporary name and renamed, so a kill while saving leaves the previous chunk intact.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from .datasets import Batch, ProbeDataset
from .plan import DissectPlan

CACHE_DIR_NAME = ".dissect-cache"


def model_fingerprint(model: torch.nn.Module) -> str:
    """Hash of the weights: a resumed run must use the model the cache was made with."""
    h = hashlib.sha1()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous().reshape(-1)
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


class StageCache:
    """Named stage files under one folder; ``fingerprint`` decides whether they can be reused."""

    def __init__(self, root: Path, fingerprint: dict, *, resume: bool) -> None:
        self.root = Path(root)
        self.fingerprint = fingerprint
        self.resumed = False
        stamp = self.root / "plan.json"
        if resume and stamp.is_file():
            try:
                self.resumed = json.loads(stamp.read_text()).get("fingerprint") == fingerprint
            except (OSError, ValueError):
                self.resumed = False
        if not self.resumed:
            shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)

    def write_plan(self, plan: DissectPlan) -> None:
        self._atomic_text("plan.json", json.dumps({"fingerprint": self.fingerprint, "plan": plan.to_json()}, indent=1))

    def load(self, stage: str) -> dict | None:
        path = self.root / f"{stage}.pt"
        if not self.resumed or not path.is_file():
            return None
        # weights_only: the stage files hold tensors, lists and numbers; the full unpickler would run
        # whatever code a file under the job's folder carried.
        return torch.load(path, map_location="cpu", weights_only=True)

    def save(self, stage: str, state: dict) -> None:
        path = self.root / f"{stage}.pt"
        tmp = path.with_name(f".{path.name}.tmp")
        torch.save(state, tmp)
        os.replace(tmp, path)

    def _atomic_text(self, name: str, text: str) -> None:
        tmp = self.root / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, self.root / name)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


class FeatureSpill:
    """Spilled layers' maps for every swept image (one .npy file per layer and image size),
    plus, when no layer is recomputed, the labels of each batch for the counting pass.

    Rows are laid out by the planned batches, so batch ``pos`` always lands in the same rows
    and a resumed sweep writes on where the killed one stopped.
    """

    def __init__(self, root: Path, dataset: ProbeDataset, batches: Sequence[Sequence[int]], plan: DissectPlan, *,
                 resume_state: dict | None) -> None:
        self.root = Path(root)
        self.dataset = dataset
        self.layers = plan.spilled
        self.keys: list[tuple] = []
        self.start: list[int] = []  # first row of each planned batch in its size group
        sizes: dict[tuple, int] = {}
        for batch in batches:
            key = dataset.size_key(int(batch[0]))
            if key not in sizes:
                self.keys.append(key)
            self.start.append(sizes.get(key, 0))
            sizes[key] = sizes.get(key, 0) + len(batch)
        self.batch_key = [dataset.size_key(int(b[0])) for b in batches]
        self.maps: dict[tuple[str, tuple], _RowFile] = {}
        for name in self.layers:
            lp = plan.layer(name)
            for g, key in enumerate(self.keys):
                h, w = lp.map_shapes[g]
                path = self.root / f"maps-{name}-{g}.npy"
                shape = (sizes[key], lp.units, h, w)
                self.maps[(name, key)] = _RowFile(path, np.dtype(lp.dtype), shape, create=resume_state is None)
        # pos -> (dataset indices of the rows written, byte offset of its label records)
        self.written: dict[int, tuple[list[int], int]] = {} if resume_state is None else dict(resume_state["written"])
        self.spills_labels = plan.spills_labels
        self.labels_path = self.root / "labels.npy-records"
        self._labels = None
        if self.spills_labels:
            end = 0 if resume_state is None else int(resume_state["labels_bytes"])
            # Open for the spill's lifetime: records are appended batch by batch; close() closes it.
            fh = open(self.labels_path, "r+b" if resume_state is not None else "wb")  # noqa: SIM115
            fh.truncate(end)  # drop records written after the chunk we resume from
            fh.seek(end)
            self._labels = fh

    def add(self, pos: int, batch: Batch, outputs: dict[str, torch.Tensor]) -> None:
        key, start = self.batch_key[pos], self.start[pos]
        for name in self.layers:
            self.maps[(name, key)].write(start, outputs[name].cpu().numpy())
        offset = -1
        if self._labels is not None:
            offset = self._labels.tell()
            pix = batch.pixel_labels
            small = pix.numel() == 0 or int(pix.max()) < 32768
            np.save(self._labels, pix.numpy().astype(np.int16 if small else np.int32))
            np.save(self._labels, batch.image_labels.numpy())
        self.written[pos] = (batch.indices.tolist(), offset)

    def state(self) -> dict:
        """What a checkpoint needs (rows written with pwrite survive the process in any case)."""
        labels_bytes = 0
        if self._labels is not None:
            self._labels.flush()
            labels_bytes = self._labels.tell()
        return {"written": dict(self.written), "labels_bytes": labels_bytes}

    def read(self, pos: int, layers: list[str], device) -> dict[str, torch.Tensor]:
        key, start = self.batch_key[pos], self.start[pos]
        n = len(self.written[pos][0])
        return {name: torch.from_numpy(self.maps[(name, key)].read(start, n)).to(device) for name in layers}

    def read_labels(self, pos: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self._labels is not None and not self._labels.closed:
            self._labels.close()
        with open(self.labels_path, "rb") as fh:
            fh.seek(self.written[pos][1])
            pix = torch.from_numpy(np.load(fh).astype(np.int64))
            img = torch.from_numpy(np.load(fh))
        return pix, img

    def get_map(self, name: str, topk_indices: np.ndarray) -> Callable[[int, int, int], torch.Tensor]:
        """Maps of each unit's top images, read once per image in file order."""
        where = {}
        for pos, (indices, _) in self.written.items():
            for row, index in enumerate(indices):
                where[index] = (self.batch_key[pos], self.start[pos] + row)
        wanted: dict[int, list[tuple[int, int]]] = {}
        for u in range(topk_indices.shape[0]):
            for r in range(topk_indices.shape[1]):
                wanted.setdefault(int(topk_indices[u, r]), []).append((u, r))
        maps: dict[tuple[int, int], torch.Tensor] = {}
        for index in sorted(wanted, key=lambda i: (self.keys.index(where[i][0]), where[i][1])):
            key, row = where[index]
            units = self.maps[(name, key)].read(row, 1)[0]  # [U, h, w]
            for u, r in wanted[index]:
                maps[(u, r)] = torch.from_numpy(units[u].copy())
        return lambda u, r, index: maps[(u, r)]

    def disk_bytes(self) -> int:
        """Bytes the spill takes on disk (allocated blocks, so sparse files count what was written)."""
        return sum(p.stat().st_blocks * 512 for p in self.root.iterdir() if p.name.startswith(("maps-", "labels.")))

    def close(self) -> None:
        if self._labels is not None and not self._labels.closed:
            self._labels.close()
        for f in self.maps.values():
            f.close()
        self.maps.clear()


class _RowFile:
    """A .npy file of [rows, ...] written and read by row with pwrite/pread.

    Not a memmap on purpose: pages of a memmap count in the process's resident memory, so a
    2 GB spill would add 2 GB to the peak RSS; the page cache behind pread/pwrite does not.
    """

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...], *, create: bool) -> None:
        self.dtype, self.shape = dtype, shape
        self.row_items = int(np.prod(shape[1:]))
        self.row_bytes = self.row_items * dtype.itemsize
        if create:
            with open(path, "wb") as fh:
                np.lib.format.write_array_header_1_0(fh, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                          "fortran_order": False, "shape": shape})
                self.offset = fh.tell()
                fh.truncate(self.offset + shape[0] * self.row_bytes)  # sparse until written
        else:
            with open(path, "rb") as fh:
                np.lib.format.read_magic(fh)
                np.lib.format.read_array_header_1_0(fh)
                self.offset = fh.tell()
        self.fd = os.open(path, os.O_RDWR)

    def write(self, row: int, values: np.ndarray) -> None:
        data = np.ascontiguousarray(values, dtype=self.dtype)
        os.pwrite(self.fd, data.data.cast("B"), self.offset + row * self.row_bytes)

    def read(self, row: int, rows: int) -> np.ndarray:
        """float32 [rows, ...] (float16 spills are widened)."""
        raw = os.pread(self.fd, rows * self.row_bytes, self.offset + row * self.row_bytes)
        values = np.frombuffer(raw, dtype=self.dtype).reshape(rows, *self.shape[1:])
        return values.astype(np.float32)  # a writable copy torch can own

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
