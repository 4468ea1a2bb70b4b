"""Probe datasets behind one interface: the Broden reader and a plain image folder.

Both yield `Item`s (normalised image, pixel label layers, image-level labels, class) and
`make_loader` turns them into `Batch`es. Broden images are fed at their stored size, so a
loader groups images of the same size into a batch (see `make_loader`).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import DataLoader, Dataset

from .errors import DatasetError

# NetDissect-Lite feeds (rgb255 - [124.6901, 118.6897, 109.5388]) / 57.12; in 0..1 units:
NETDISSECT_MEAN = (124.6901 / 255, 118.6897 / 255, 109.5388 / 255)
NETDISSECT_STD = (57.12 / 255, 57.12 / 255, 57.12 / 255)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")
_BRODEN_FIXED_COLUMNS = ("image", "split", "ih", "iw", "sh", "sw")
# Errors PIL raises for unreadable, truncated or missing image files.
_IMAGE_READ_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError)


@dataclass(frozen=True)
class Concept:
    """One label of the probe vocabulary."""

    number: int  # global label number (Broden label.csv `number`; 0 is "unlabelled")
    name: str
    category: str  # primary category: largest coverage, ties -> later category


@dataclass
class Item:
    index: int
    image: torch.Tensor  # float [3, H, W], normalised with the dataset's mean/std
    pixel_labels: torch.Tensor  # long [L, sh, sw], 0 = unlabelled; L may be 0
    image_labels: torch.Tensor  # long [n] image-level label numbers (may be empty)
    target: int  # class index or -1


@dataclass
class Batch:
    """Items of one size stacked together; missing layers/labels are padded with 0."""

    indices: torch.Tensor  # long [B] dataset indices
    images: torch.Tensor  # float [B, 3, H, W]
    pixel_labels: torch.Tensor  # long [B, L, sh, sw] (L = most layers of any item; 0-padded)
    image_labels: torch.Tensor  # long [B, M] (0-padded)
    targets: torch.Tensor  # long [B], -1 where the dataset has no classes
    skipped: list[int] = field(default_factory=list)  # indices whose image was unreadable

    def __len__(self) -> int:
        return int(self.indices.numel())

    def pin_memory(self) -> Batch:
        """DataLoader(pin_memory=True) calls this on custom batch types."""
        return Batch(
            self.indices, self.images.pin_memory(), self.pixel_labels.pin_memory(),
            self.image_labels.pin_memory(), self.targets, list(self.skipped),
        )

    def to(self, device: str | torch.device) -> Batch:
        return Batch(
            self.indices,
            self.images.to(device),
            self.pixel_labels.to(device),
            self.image_labels.to(device),
            self.targets.to(device),
            list(self.skipped),
        )


class ProbeDataset(Dataset):
    """What every probe dataset offers (see tasks/engine/README.md)."""

    root: Path
    categories: list[str]
    concepts: list[Concept]
    has_pixel_labels: bool
    class_names: list[str] | None
    skipped: list[str]  # names of images found unreadable so far (filled by make_loader)

    def __init__(self, root: Path, mean: Sequence[float], std: Sequence[float]) -> None:
        self.root = Path(root)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise DatasetError(
                f"Normalisation needs 3 means and 3 positive stds (0..1 units), got mean={mean} std={std}."
            )
        self.mean = tuple(float(m) for m in mean)
        self.std = tuple(float(s) for s in std)
        self._mean_t = torch.tensor(self.mean).view(3, 1, 1)
        self._std_t = torch.tensor(self.std).view(3, 1, 1)
        self.categories = []
        self.concepts = []
        self.has_pixel_labels = False
        self.class_names = None
        self.skipped = []
        self._skipped_names: set[str] = set()

    # -- to be provided by subclasses -------------------------------------------------
    def __len__(self) -> int:
        raise NotImplementedError

    def __getitem__(self, i: int) -> Item | None:
        raise NotImplementedError

    def image_name(self, i: int) -> str:
        raise NotImplementedError

    def load_rgb(self, i: int) -> Image.Image:
        raise NotImplementedError

    def size_key(self, i: int) -> tuple[int, ...]:
        """Images with equal keys stack into one batch (their tensors have equal shapes)."""
        raise NotImplementedError

    def image_level_presence(self) -> np.ndarray | None:
        return None

    def label_counts(self, i: int) -> tuple[int, int]:
        """(pixel label layers, image-level labels) of item i, without decoding anything."""
        return (0, 0)

    def targets(self) -> np.ndarray | None:
        return None

    # -- shared helpers ---------------------------------------------------------------
    def normalise(self, rgb: Image.Image) -> torch.Tensor:
        arr = np.asarray(rgb, dtype=np.float32) / 255.0
        image = torch.from_numpy(arr).permute(2, 0, 1)
        return (image - self._mean_t) / self._std_t

    def label_to_concept(self) -> np.ndarray:
        """int [max label number + 1]: position in `concepts`, -1 for 0 and unknown numbers."""
        top = max((c.number for c in self.concepts), default=0)
        table = np.full(top + 1, -1, dtype=np.int64)
        for pos, concept in enumerate(self.concepts):
            table[concept.number] = pos
        return table

    def label_to_category(self) -> np.ndarray:
        """int [max label number + 1]: index into `categories` of each label's primary category."""
        top = max((c.number for c in self.concepts), default=0)
        table = np.full(top + 1, -1, dtype=np.int64)
        where = {name: k for k, name in enumerate(self.categories)}
        for concept in self.concepts:
            table[concept.number] = where[concept.category]
        return table

    def record_skipped(self, indices: Sequence[int]) -> None:
        """Note unreadable images once each, however many passes over the data see them."""
        for i in indices:
            name = self.image_name(i)
            if name not in self._skipped_names:
                self._skipped_names.add(name)
                self.skipped.append(name)


def _read_rgb(path: Path) -> Image.Image:
    """Fully decode an image (so truncation shows now) as RGB; raises PIL/OS errors."""
    with Image.open(path) as im:
        im.load()
        return im.convert("RGB")


def _read_csv(path: Path, required: Sequence[str]) -> list[dict[str, str]]:
    if not path.is_file():
        raise DatasetError(f"{path} is missing; a Broden dataset needs it (see the Broden format of NetDissect).")
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise DatasetError(f"{path} lacks the column(s) {', '.join(missing)}; its header is {','.join(header)}.")
        return list(reader)


def _decode_label_png(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """Label numbers of a Broden segmentation PNG: R + 256 * G (blue unused)."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGB", "RGBA"):
                arr = np.asarray(im, dtype=np.int64)
                labels = arr[..., 0] + 256 * arr[..., 1]
            elif im.mode in ("L", "I", "I;16"):  # tolerated: the value is the label number
                labels = np.asarray(im, dtype=np.int64)
            else:
                labels = np.asarray(im.convert("RGB"), dtype=np.int64)
                labels = labels[..., 0] + 256 * labels[..., 1]
    except _IMAGE_READ_ERRORS as exc:
        raise DatasetError(f"Cannot read the label image {path}: {exc}. Fix or remove that row of index.csv.") from exc
    if labels.shape != shape:
        raise DatasetError(
            f"The label image {path} is {labels.shape[1]}x{labels.shape[0]} (w x h) but index.csv says "
            f"sw x sh = {shape[1]}x{shape[0]}; fix the image or its sh/sw cells."
        )
    return labels


def _primary_categories(
    root: Path, categories: list[str], label_rows: list[dict[str, str]]
) -> dict[int, str]:
    """label number -> primary category among `categories`.

    Coverage comes from c_<cat>.csv; the largest wins and ties go to the later category in
    category.csv order (NetDissect-Lite's rule). Where no c_<cat>.csv mentions a label, the
    counts of label.csv's `category` field (e.g. ``material(36);object(3)``) decide instead.
    """
    best: dict[int, tuple[float, int]] = {}
    for order, cat in enumerate(categories):
        path = root / f"c_{cat}.csv"
        if not path.is_file():
            continue
        for row in _read_csv(path, ("number", "coverage")):
            try:
                number, coverage = int(row["number"]), float(row["coverage"] or 0)
            except ValueError as exc:
                raise DatasetError(f"{path}: bad number/coverage in row {row}: {exc}") from exc
            if number == 0:
                continue
            # (coverage, order) compared as a tuple: equal coverage -> later category wins.
            if number not in best or (coverage, order) >= best[number]:
                best[number] = (coverage, order)
    primary = {n: categories[order] for n, (_, order) in best.items()}
    for row in label_rows:
        number = int(row["number"])
        if number == 0 or number in primary:
            continue
        counts: list[tuple[float, int]] = []
        for part in (row.get("category") or "").split(";"):
            name, _, count = part.strip().partition("(")
            if name in categories:
                counts.append((float(count.rstrip(")") or 0), categories.index(name)))
        if counts:
            primary[number] = categories[max(counts)[1]]
    return primary


class BrodenDataset(ProbeDataset):
    """Reader for the Broden format of Network Dissection (Bau et al., CVPR 2017).

    `categories` selects columns (default: every category of category.csv found in
    index.csv); rows with no data in any selected category are skipped; `split` keeps
    only rows of that split. A `class` column (mixture datasets) gives `targets()`, and
    the class names come from meta.json's `class_names` when present.
    """

    def __init__(
        self,
        root: Path | str,
        *,
        mean: Sequence[float] = NETDISSECT_MEAN,
        std: Sequence[float] = NETDISSECT_STD,
        image_size: int | None = None,
        categories: Sequence[str] | None = None,
        split: str | None = None,
    ) -> None:
        super().__init__(Path(root), mean, std)
        self.image_size = image_size
        root = self.root
        index_path = root / "index.csv"
        rows = _read_csv(index_path, _BRODEN_FIXED_COLUMNS)
        cat_rows = _read_csv(root / "category.csv", ("name",))
        label_rows = _read_csv(root / "label.csv", ("number", "name"))
        header = list(rows[0].keys()) if rows else []
        known = [r["name"] for r in cat_rows]
        if categories is None:
            selected = [c for c in known if c in header]
        else:
            unknown = [c for c in categories if c not in known or c not in header]
            if unknown:
                raise DatasetError(
                    f"{root}: categories {unknown} are not both in category.csv and index.csv; "
                    f"available: {[c for c in known if c in header]}."
                )
            selected = [c for c in known if c in categories]  # keep category.csv order
        self.categories = selected
        primary = _primary_categories(root, selected, label_rows)
        names = {int(r["number"]): r["name"] for r in label_rows}
        self.concepts = [Concept(n, names.get(n, str(n)), primary[n]) for n in sorted(primary) if n in names]

        self._rows: list[tuple[str, tuple[int, int], tuple[int, int], list[str], list[int], int]] = []
        has_class = "class" in header
        for line, row in enumerate(rows, start=2):
            if split is not None and row["split"] != split:
                continue
            pngs: list[str] = []
            numbers: list[int] = []
            for cat in selected:
                for part in (row.get(cat) or "").split(";"):
                    part = part.strip()
                    if not part:
                        continue
                    if part.isdigit():
                        numbers.append(int(part))
                    else:
                        pngs.append(part)
            if not pngs and not numbers:
                continue  # no data in any selected category: Broden says skip the row
            try:
                ih, iw, sh, sw = (int(row[k]) for k in ("ih", "iw", "sh", "sw"))
                target = int(row["class"]) if has_class and row["class"] != "" else -1
            except ValueError as exc:
                raise DatasetError(f"{index_path} line {line}: ih/iw/sh/sw/class must be whole numbers "
                                   f"({exc}).") from exc
            self._rows.append((row["image"], (ih, iw), (sh, sw), pngs, numbers, target))
        if not self._rows:
            raise DatasetError(
                f"{index_path} has no image with data in the categories {selected}"
                + (f" in split {split!r}" if split else "")
                + "; check the dataset path and the category selection."
            )
        self.has_pixel_labels = any(r[3] for r in self._rows)
        self._has_class = has_class
        meta = root / "meta.json"
        if has_class and meta.is_file():
            self.class_names = json.loads(meta.read_text()).get("class_names")
        self._presence: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._rows)

    def image_name(self, i: int) -> str:
        return self._rows[i][0]

    def size_key(self, i: int) -> tuple[int, ...]:
        _, (ih, iw), (sh, sw), *_ = self._rows[i]
        if self.image_size:
            ih = iw = self.image_size
        return (ih, iw, sh, sw)

    def _image(self, i: int) -> Image.Image:
        name, (ih, iw), *_ = self._rows[i]
        path = self.root / "images" / name
        rgb = _read_rgb(path)
        if self.image_size:
            return rgb.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)
        if rgb.size != (iw, ih):
            # Not "corrupt": the index is wrong, and stacking would fail later anyway.
            raise DatasetError(
                f"The image {path} is {rgb.size[0]}x{rgb.size[1]} (w x h) but index.csv says "
                f"iw x ih = {iw}x{ih}; fix the image or its ih/iw cells."
            )
        return rgb

    def load_rgb(self, i: int) -> Image.Image:
        try:
            return self._image(i)
        except _IMAGE_READ_ERRORS as exc:
            raise DatasetError(f"Cannot read the image {self.root / 'images' / self.image_name(i)}: {exc}") from exc

    def label_counts(self, i: int) -> tuple[int, int]:
        return (len(self._rows[i][3]), len(self._rows[i][4]))

    def _label_layers(self, i: int) -> list[np.ndarray]:
        _, _, (sh, sw), pngs, _, _ = self._rows[i]
        return [_decode_label_png(self.root / "images" / p, (sh, sw)) for p in pngs]

    def __getitem__(self, i: int) -> Item | None:
        try:
            rgb = self._image(i)
        except _IMAGE_READ_ERRORS:
            return None  # unreadable image: the loader counts it and the run goes on
        _, _, (sh, sw), _, numbers, target = self._rows[i]
        layers = self._label_layers(i)
        pixel = torch.from_numpy(np.stack(layers)) if layers else torch.zeros((0, sh, sw), dtype=torch.long)
        return Item(i, self.normalise(rgb), pixel, torch.tensor(numbers, dtype=torch.long), target)

    def image_level_presence(self) -> np.ndarray:
        """bool [N, n_concepts]: concept appears in image i (any pixel layer or image-level).

        Reads every label PNG once, then keeps the answer.
        """
        if self._presence is None:
            lookup = self.label_to_concept()
            presence = np.zeros((len(self), len(self.concepts)), dtype=bool)
            for i in range(len(self)):
                found = [np.asarray(self._rows[i][4], dtype=np.int64)]
                found += [np.unique(layer) for layer in self._label_layers(i)]
                numbers = np.unique(np.concatenate(found))
                numbers = numbers[(numbers > 0) & (numbers < len(lookup))]
                cols = lookup[numbers]
                presence[i, cols[cols >= 0]] = True
            self._presence = presence
        return self._presence

    def targets(self) -> np.ndarray | None:
        if not self._has_class:
            return None
        return np.array([r[5] for r in self._rows], dtype=np.int64)


class ImageFolderDataset(ProbeDataset):
    """Every .jpg/.jpeg/.png/.webp under `root` (recursive, sorted by relative path),
    resized to `image_size` x `image_size`; no labels, so only top images can be found."""

    def __init__(
        self,
        root: Path | str,
        *,
        mean: Sequence[float] = NETDISSECT_MEAN,
        std: Sequence[float] = NETDISSECT_STD,
        image_size: int | None = None,
    ) -> None:
        super().__init__(Path(root), mean, std)
        if not self.root.is_dir():
            raise DatasetError(f"The image folder {self.root} does not exist.")
        self.image_size = image_size or 224
        self._files = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
        )
        if not self._files:
            raise DatasetError(f"The folder {self.root} holds no {'/'.join(IMAGE_SUFFIXES)} image.")

    def __len__(self) -> int:
        return len(self._files)

    def image_name(self, i: int) -> str:
        return self._files[i]

    def size_key(self, i: int) -> tuple[int, ...]:
        return (self.image_size, self.image_size)

    def _image(self, i: int) -> Image.Image:
        rgb = _read_rgb(self.root / self._files[i])
        return rgb.resize((self.image_size, self.image_size), Image.Resampling.BILINEAR)

    def load_rgb(self, i: int) -> Image.Image:
        try:
            return self._image(i)
        except _IMAGE_READ_ERRORS as exc:
            raise DatasetError(f"Cannot read the image {self.root / self._files[i]}: {exc}") from exc

    def __getitem__(self, i: int) -> Item | None:
        try:
            rgb = self._image(i)
        except _IMAGE_READ_ERRORS:
            return None
        s = self.image_size
        return Item(i, self.normalise(rgb), torch.zeros((0, s, s), dtype=torch.long), torch.zeros(0, dtype=torch.long),
                    -1)


def open_dataset(
    spec: str | Path,
    *,
    mean: Sequence[float] = NETDISSECT_MEAN,
    std: Sequence[float] = NETDISSECT_STD,
    image_size: int | None = None,
    categories: Sequence[str] | None = None,
    split: str | None = None,
) -> ProbeDataset:
    """Open "broden:PATH", "folder:PATH" or a bare path (Broden when it holds index.csv).

    mean/std are in 0..1 units (default: NetDissect-Lite's). Broden images keep their
    stored size unless `image_size` is given; folder images are resized (default 224).
    """
    text = str(spec)
    kind, sep, rest = text.partition(":")
    if sep and kind in ("broden", "folder"):
        path = Path(rest)
    else:
        kind, path = ("broden" if (Path(text) / "index.csv").is_file() else "folder"), Path(text)
    if not path.exists():
        raise DatasetError(f"The dataset path {path} does not exist.")
    if kind == "broden":
        return BrodenDataset(path, mean=mean, std=std, image_size=image_size, categories=categories, split=split)
    return ImageFolderDataset(path, mean=mean, std=std, image_size=image_size)


# -- loading in batches -----------------------------------------------------------------


class _Indexed(Dataset):
    """Pairs each item with its index so collate knows which images were unreadable."""

    def __init__(self, dataset: ProbeDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> tuple[int, Item | None]:
        return i, self.dataset[i]


def collate_items(pairs: list[tuple[int, Item | None]]) -> Batch:
    """Stack the readable items; unreadable ones (None) are listed in `Batch.skipped`."""
    items = [item for _, item in pairs if item is not None]
    skipped = [i for i, item in pairs if item is None]
    if not items:
        empty = torch.zeros(0, dtype=torch.long)
        return Batch(empty, torch.zeros((0, 3, 0, 0)), torch.zeros((0, 0, 0, 0), dtype=torch.long),
                     torch.zeros((0, 0), dtype=torch.long), empty, skipped)
    layers = max(it.pixel_labels.shape[0] for it in items)
    numbers = max(it.image_labels.shape[0] for it in items)
    seg_shape = items[0].pixel_labels.shape[1:]
    pixel = torch.zeros((len(items), layers, *seg_shape), dtype=torch.long)
    image_labels = torch.zeros((len(items), numbers), dtype=torch.long)
    for k, it in enumerate(items):
        pixel[k, : it.pixel_labels.shape[0]] = it.pixel_labels
        image_labels[k, : it.image_labels.shape[0]] = it.image_labels
    return Batch(
        torch.tensor([it.index for it in items], dtype=torch.long),
        torch.stack([it.image for it in items]),
        pixel,
        image_labels,
        torch.tensor([it.target for it in items], dtype=torch.long),
        skipped,
    )


def size_grouped_batches(dataset: ProbeDataset, indices: Sequence[int], batch_size: int) -> list[list[int]]:
    """Split `indices` into batches whose images share one size.

    Groups keep the order in which their first image appears and each group keeps the
    given order, so a dataset of one size is batched in plain index order.
    """
    groups: dict[tuple[int, ...], list[int]] = {}
    for i in indices:
        groups.setdefault(dataset.size_key(int(i)), []).append(int(i))
    return [g[s : s + batch_size] for g in groups.values() for s in range(0, len(g), batch_size)]


class ProbeLoader:
    """Iterable of `Batch`es; records unreadable images in `dataset.skipped` as it goes.

    Recording happens here, in the main process, so it works with worker processes too.
    Batches whose images were all unreadable are not yielded.
    """

    def __init__(self, dataset: ProbeDataset, batches: list[list[int]], num_workers: int,
                 pin_memory: bool = False) -> None:
        self.dataset = dataset
        self.batches = batches
        # Pinned batches let a CUDA copy run with non_blocking=True, overlapping the next load.
        self._loader = DataLoader(
            _Indexed(dataset), batch_sampler=batches, collate_fn=collate_items, num_workers=num_workers,
            pin_memory=pin_memory, prefetch_factor=4 if num_workers else None, persistent_workers=False,
        )

    def __len__(self) -> int:
        return len(self.batches)

    @property
    def num_images(self) -> int:
        return sum(len(b) for b in self.batches)

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.every_batch():
            if len(batch):
                yield batch

    def every_batch(self) -> Iterator[Batch]:
        """One Batch per planned batch, empty ones included: a resumable sweep counts positions."""
        for batch in self._loader:
            if batch.skipped:
                self.dataset.record_skipped(batch.skipped)
            yield batch


def make_loader(
    dataset: ProbeDataset,
    *,
    batch_size: int,
    indices: Sequence[int] | None = None,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> ProbeLoader:
    """Batches of `dataset` (or of `indices`, e.g. one shard), grouped by image size."""
    if batch_size < 1:
        raise DatasetError(f"batch_size must be at least 1, got {batch_size}.")
    chosen = range(len(dataset)) if indices is None else indices
    return ProbeLoader(dataset, size_grouped_batches(dataset, chosen, batch_size), num_workers, pin_memory)
