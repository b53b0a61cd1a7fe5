"""`underpaint run`'s inputs: image files or folders, and the mask of each (one file, or matched by name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MASK_SUFFIXES = ("", "_mask", "-mask", ".mask")  # a mask in a folder: the image's name plus one of these


class InputError(ValueError):
    """Inputs the run cannot start with; the message says which path and why."""


@dataclass(frozen=True)
class BatchItem:
    image: Path
    mask: Path | None = None
    problem: str = ""  # set: this item fails with this sentence (its mask is missing), the others still run

    @property
    def name(self) -> str:
        return self.image.stem


def find_images(paths: list[Path]) -> list[Path]:
    """The image files named, and those directly inside the folders named (sorted); InputError when a path
    does not exist or nothing was found."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"input {path} does not exist")
    if not found:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {', '.join(str(p) for p in paths)}")
    stems = [p.stem for p in found]
    twins = sorted({s for s in stems if stems.count(s) > 1})
    if twins:
        raise InputError(f"two inputs share the name {twins[0]!r}; their results would overwrite each other")
    return found


def _mask_in(folder: Path, image: Path) -> Path | None:
    for suffix in MASK_SUFFIXES:
        for extension in IMAGE_SUFFIXES:
            candidate = folder / f"{image.stem}{suffix}{extension}"
            if candidate.is_file() and candidate.resolve() != image.resolve():
                return candidate
    return None


def pair_masks(images: list[Path], mask: Path | None) -> list[BatchItem]:
    """Each image with its mask: ``mask`` a file (the same mask for every image) or a folder (the mask named
    like the image: ``NAME.png``, ``NAME_mask.png``, ...); None: no masks."""
    if mask is None:
        return [BatchItem(image) for image in images]
    if mask.is_file():
        return [BatchItem(image, mask) for image in images]
    if not mask.is_dir():
        raise InputError(f"mask {mask} does not exist")
    found = {image: _mask_in(mask, image) for image in images}
    used = {m.resolve() for m in found.values() if m is not None}  # masks kept beside their images are no inputs
    items = []
    for image, match in found.items():
        if image.resolve() in used:
            continue
        problem = "" if match else (f"no mask for {image.name} in {mask} (looked for "
                                    f"{image.stem}.png, {image.stem}_mask.png and the like)")
        items.append(BatchItem(image, match, problem))
    return items
