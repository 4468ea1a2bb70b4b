"""Checks on uploaded files before anything is kept: size, zip member paths, decodable images.

A dataset zip is extracted into a fresh temporary folder; the caller moves that folder into
its project's upload folder only once the whole dataset checked out, so a bad upload leaves
nothing behind.
"""
from __future__ import annotations

import shutil
import stat
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from django.conf import settings
from PIL import Image, UnidentifiedImageError

from .errors import UploadError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
# Files a dataset may carry besides its images (Broden CSVs, the mixture's meta.json, notes).
_IGNORED_NAMES = ("__MACOSX", ".DS_Store")
_COPY_CHUNK = 1024 * 1024
# Uploads are kept per project, under DATASETS_ROOT/projects/<project id>/: two projects may name
# their datasets alike without sharing a folder, and deleting a project removes its own uploads only.
PROJECT_UPLOADS = "projects"


def project_upload_dir(project_id: int) -> Path:
    """A project's upload folder, relative to DATASETS_ROOT (what `ProbeDataset.path` stores under it)."""
    return Path(PROJECT_UPLOADS) / str(int(project_id))


def in_other_projects_uploads(path: Path, project_id: int | None) -> bool:
    """Whether `path` (resolved) lies in the upload folder of a project other than `project_id`: no
    project registers another's uploads by path."""
    uploads = (Path(settings.DATASETS_ROOT) / PROJECT_UPLOADS).resolve()
    real = path.resolve()
    if not real.is_relative_to(uploads) or real == uploads:
        return False
    return real.relative_to(uploads).parts[0] != str(project_id)


def human_bytes(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


def check_upload_size(size: int, *, what: str) -> None:
    limit = settings.UPLOAD_MAX_BYTES
    if size > limit:
        raise UploadError(
            f"The {what} is {human_bytes(size)}, more than the {human_bytes(limit)} allowed "
            "(UPLOAD_MAX_BYTES); register it by path with the management command instead."
        )


def _member_parts(name: str) -> tuple[str, ...]:
    """The entry's path parts; refuses absolute paths and `..` so nothing lands outside the target."""
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":"):
        raise UploadError(f"The zip entry {name!r} has an absolute path; zips must hold relative paths only.")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if ".." in parts:
        raise UploadError(f"The zip entry {name!r} points outside the dataset folder ('..'); nothing was extracted.")
    return parts


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    return stat.S_ISLNK(info.external_attr >> 16)


def _planned_members(archive: zipfile.ZipFile) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Every file entry with its relative path, after all checks that need no extraction."""
    planned: list[tuple[zipfile.ZipInfo, tuple[str, ...]]] = []
    total = 0
    limit = settings.DATASET_ZIP_MAX_UNPACKED_BYTES
    for info in archive.infolist():
        parts = _member_parts(info.filename)
        if not parts or any(p in _IGNORED_NAMES for p in parts):
            continue
        if _is_symlink(info):
            raise UploadError(f"The zip entry {info.filename!r} is a symbolic link; zips must hold plain files only.")
        if info.is_dir():
            continue
        if "images" in parts[:-1] and not parts[-1].lower().endswith(IMAGE_SUFFIXES):
            raise UploadError(
                f"The zip entry {info.filename!r} is in images/ but is not an image "
                f"({', '.join(IMAGE_SUFFIXES)}); remove it and upload again."
            )
        total += info.file_size
        if total > limit:
            raise UploadError(
                f"The zip unpacks to more than {human_bytes(limit)} (DATASET_ZIP_MAX_UNPACKED_BYTES); "
                "register a dataset this large by path instead."
            )
        planned.append((info, parts))
    if not planned:
        raise UploadError("The zip is empty.")
    return planned


def _common_top(planned: list[tuple[zipfile.ZipInfo, tuple[str, ...]]]) -> int:
    """1 when every entry sits under one folder (a zipped dataset folder), else 0."""
    tops = {parts[0] for _, parts in planned}
    return 1 if len(tops) == 1 and all(len(parts) > 1 for _, parts in planned) else 0


def _copy_bounded(src: BinaryIO, dst: BinaryIO, declared: int, name: str) -> None:
    """Copy at most the declared size: a zip that lies about sizes (a zip bomb) is refused."""
    written = 0
    while chunk := src.read(_COPY_CHUNK):
        written += len(chunk)
        if written > declared:
            raise UploadError(f"The zip entry {name!r} holds more data than its header says; the zip is corrupt.")
        dst.write(chunk)


def check_images_decode(root: Path) -> int:
    """Decode every image file under root with Pillow; returns how many there are.

    The size in the header is checked before decoding: a few KiB of PNG can claim gigapixels
    (a decompression bomb) and would take the memory of the process with it.
    """
    count = 0
    max_pixels = settings.UPLOAD_IMAGE_MAX_PIXELS
    for path in sorted(root.rglob("*")):
        if not path.is_file() or not path.name.lower().endswith(IMAGE_SUFFIXES):
            continue
        try:
            with Image.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise UploadError(
                        f"The image {path.relative_to(root)} is {width}x{height} pixels, more than the "
                        f"{max_pixels:,} allowed (UPLOAD_IMAGE_MAX_PIXELS); resize it and upload again."
                    )
                im.load()
        except Image.DecompressionBombError:
            raise UploadError(
                f"The image {path.relative_to(root)} claims more pixels than an image may have (a decompression "
                "bomb?); nothing was kept."
            ) from None
        except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as exc:
            raise UploadError(
                f"The image {path.relative_to(root)} cannot be decoded ({exc}); fix or remove it and upload again."
            ) from None
        count += 1
    return count


def extract_dataset_zip(fileobj: BinaryIO, *, size: int) -> Path:
    """Check and extract a dataset zip into a new temporary folder under DATASETS_ROOT; returns it.

    The caller owns the folder: move it into place or delete it. Any refusal deletes it here.
    """
    check_upload_size(size, what="dataset zip")
    try:
        archive = zipfile.ZipFile(fileobj)
    except (zipfile.BadZipFile, OSError) as exc:
        raise UploadError(f"The file is not a readable zip archive ({exc}).") from None
    with archive:
        planned = _planned_members(archive)
        strip = _common_top(planned)
        staging_parent = Path(settings.DATASETS_ROOT)
        staging_parent.mkdir(parents=True, exist_ok=True)
        # Same filesystem as the final place, so moving it in is a rename.
        target = Path(tempfile.mkdtemp(prefix=".incoming-", dir=staging_parent))
        try:
            for info, parts in planned:
                dest = target.joinpath(*parts[strip:])
                dest.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, dest.open("wb") as dst:
                    _copy_bounded(src, dst, info.file_size, info.filename)
            check_images_decode(target)
        except BaseException as exc:  # whatever went wrong (even an interrupt), nothing stays behind
            shutil.rmtree(target, ignore_errors=True)
            if isinstance(exc, UploadError):
                raise
            if isinstance(exc, (zipfile.BadZipFile, OSError, EOFError, ValueError, RuntimeError,
                                NotImplementedError)):
                raise UploadError(f"The zip could not be extracted ({exc}); it may be corrupt.") from None
            raise
    return target
