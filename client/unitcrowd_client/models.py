"""Typed results: one dataclass per API object; fields the server adds later are kept in `raw`."""
from __future__ import annotations

import csv
import dataclasses
import io
import sys
import time
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeVar

from .errors import JobFailed

if TYPE_CHECKING:
    from .client import UnitCrowd

T = TypeVar("T")


_FIELD_NAMES: dict[type, frozenset[str]] = {}


def _field_names(cls: type) -> frozenset[str]:
    names = _FIELD_NAMES.get(cls)
    if names is None:
        names = _FIELD_NAMES[cls] = frozenset(f.name for f in dataclasses.fields(cls) if f.name != "raw")
    return names


def build(cls: type[T], data: dict[str, Any], **extra: Any) -> T:
    """A dataclass from an API body: known fields set, the whole body kept in `raw`."""
    names = _field_names(cls)  # read once per class: a layer's labels build hundreds of rows
    values = {k: v for k, v in data.items() if k in names}
    return cls(**values, raw=data, **extra)  # type: ignore[call-arg]  # every dataclass here has `raw`


@dataclass
class Network:
    id: int
    name: str
    architecture: str = ""
    kind: str = ""
    num_classes: int | None = None
    created_at: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass
class Dataset:
    id: int
    name: str
    kind: str = ""
    num_images: int | None = None
    num_concepts: int | None = None
    created_at: str | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass
class Layer:
    id: int
    job: int
    name: str
    num_units: int = 0
    raw: dict = field(default_factory=dict, repr=False)


@dataclass
class Unit:
    """A unit; `unit` counts from 1 as the pages and tally.csv do, `index` from 0 (the tensor's channel)."""

    id: int
    layer: int
    layer_name: str
    index: int
    iou_label: str = ""
    iou_category: str = ""
    iou_score: float | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def unit(self) -> int:
        return self.index + 1


@dataclass
class Label:
    """The crowd's label of one unit next to the IoU label (unit counts from 1; unit_index from 0).

    `crowd_word` and `category` are the published label, each with its calibrated probability;
    `category_mv` is the plain vote beside it."""

    unit: int
    unit_index: int
    layer_name: str
    crowd_word: str = ""
    word_probability: float | None = None
    concept: str = ""
    category: str = ""
    category_probability: float | None = None
    method: str = ""
    category_mv: str = ""
    agreement: float | None = None
    interpretable: bool | None = None
    n_annotations: int = 0
    iou_label: str = ""
    iou_category: str = ""
    iou_score: float | None = None
    word_match: bool | None = None
    category_match: bool | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_api(cls, data: dict) -> Label:
        # The API's `unit` field is the unit's row id; the number counted from 1 is `unit_number`.
        names = _field_names(cls)
        values = {k: v for k, v in data.items() if k in names and k != "unit"}
        return cls(unit=data.get("unit_number", data["unit_index"] + 1), **values, raw=data)


COLUMNS = [f.name for f in dataclasses.fields(Label) if f.name != "raw"]


@dataclass
class LabelTable:
    """A layer's labels, one row per labelled unit, in unit order."""

    job: int
    layer: str
    rows: list[Label]

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def to_dicts(self) -> list[dict[str, Any]]:
        return [{c: getattr(r, c) for c in COLUMNS} for r in self.rows]

    def to_pandas(self):
        """A DataFrame indexed by unit (from 1); needs the `pandas` extra: pip install 'unitcrowd-client[pandas]'."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install 'unitcrowd-client[pandas]'") from None
        return pd.DataFrame(self.to_dicts(), columns=COLUMNS).set_index("unit")

    def to_csv(self, out: IO[str] | None = None) -> str:
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(self.to_dicts())
        text = buffer.getvalue()
        if out is not None:
            out.write(text)
        return text


@dataclass
class Job:
    id: int
    network: int
    dataset: int
    layers: list[str]
    status: str = ""
    stage: str = ""
    progress: float = 0.0
    error_message: str = ""
    created_at: str | None = None
    raw: dict = field(default_factory=dict, repr=False)
    client: UnitCrowd | None = field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        return self.status in ("succeeded", "failed", "cancelled")

    def refresh(self) -> Job:
        assert self.client is not None, "a Job made by hand has no client; get it with uc.jobs.get(id)"
        fresh = self.client.jobs.get(self.id)
        for f in dataclasses.fields(self):
            if f.name != "client":
                setattr(self, f.name, getattr(fresh, f.name))
        return self

    def wait(self, *, progress: bool = False, timeout: float | None = None, poll: float = 1.0) -> Job:
        """Poll the job's status until it finishes; raise JobFailed with the server's message if it failed.
        progress=True prints stage and percentage to stderr."""
        assert self.client is not None, "a Job made by hand has no client; get it with uc.jobs.get(id)"
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            state = self.client.get(f"jobs/{self.id}/status/")
            self.status, self.stage, self.progress = state["status"], state.get("stage", ""), state["progress"]
            if progress:
                print(f"\rjob {self.id}: {self.status} {self.stage} {self.progress:4.0%}", end="", file=sys.stderr)
            if state.get("finished") or self.status in ("succeeded", "failed", "cancelled"):
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"Job {self.id} is still {self.status} after {timeout} s; call wait() again "
                                   f"or raise timeout=")
            time.sleep(poll)
        if progress:
            print(file=sys.stderr)
        self.refresh()
        if self.status != "succeeded":
            raise JobFailed(f"Job {self.id} {self.status}: {self.error_message or state.get('error', '')}",
                            body=state)
        return self


@dataclass
class HitBatch:
    id: int
    name: str = ""
    layers: list[int] = field(default_factory=list)
    assignments_per_hit: int = 0
    hits: int = 0
    channel: str = "site"  # site, mturk_sandbox, mturk_live (real money) or prolific (real money)
    # One more answer while a unit's label is less probable than this, up to redundancy_cap answers per unit;
    # None: the site's defaults.
    redundancy_probability: float | None = None
    redundancy_cap: int | None = None
    raw: dict = field(default_factory=dict, repr=False)


@dataclass
class Export:
    id: int
    kind: str
    status: str = ""
    progress: float = 0.0
    filename: str = ""
    download_url: str | None = None
    error_message: str = ""
    raw: dict = field(default_factory=dict, repr=False)
