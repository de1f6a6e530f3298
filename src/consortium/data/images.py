"""Image datasets: NPZ arrays (images + labels) and zip archives laid out one folder per class.

Profiling reads one array header or one image at a time, so memory does not grow with the file;
loading builds the (N, C, H, W) array for compute. Pickled (object) arrays are refused, and so is
a zip entry that tries to escape its folder. Uploaded archives are read through
``consortium.data.archive.LimitedZip``: entry count, uncompressed size, compression ratio and
image pixels are limited against zip and decompression bombs.

>>> import io, numpy as np, zipfile
>>> from pathlib import Path
>>> import tempfile
>>> p = Path(tempfile.mkdtemp()) / "d.npz"
>>> np.savez(p, images=np.zeros((5, 8, 8), np.uint8), labels=np.array([0, 1, 0, 1, 1]))
>>> s = profile_npz(p); s["image_shape"], s["classes"]
([1, 8, 8], {'0': 2, '1': 3})
>>> load_npz(p).images.shape
(5, 1, 8, 8)
"""

from __future__ import annotations

import io
import zipfile
from collections import Counter
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from consortium.data.archive import LimitedZip, ZipLimits
from consortium.errors import InvalidInput, PayloadTooLarge

if TYPE_CHECKING:
    from consortium.data.frame import DataFrameSet

IMAGE_KEYS = ("images", "x", "X", "data")
LABEL_KEYS = ("labels", "y", "Y", "targets", "target")
IMAGE_EXT = (".png", ".jpg", ".jpeg")
READ = 1 << 20


def is_npz(path: Path, limits: ZipLimits | None = None) -> bool:
    with LimitedZip(path, "zip archive", limits) as z:
        names = [n for n in z.namelist() if not n.endswith("/")]
    return bool(names) and all(n.endswith(".npy") for n in names)


def _image_shape(shape: tuple[int, ...]) -> tuple[int, int, int]:
    """(C, H, W) of one image, by the same rule as ``DataFrameSet.from_images``."""
    if len(shape) == 3:
        return (1, shape[1], shape[2])
    if len(shape) == 4:
        if shape[-1] in (1, 3, 4) and shape[1] not in (1, 3, 4):
            return (shape[3], shape[1], shape[2])
        return (shape[1], shape[2], shape[3])
    raise InvalidInput(f"the image array must have shape (N, H, W), (N, H, W, C) or (N, C, H, W); "
                       f"got {shape}")


def _keys(z: LimitedZip | zipfile.ZipFile) -> tuple[str, str, list[str]]:
    keys = [n[:-4] for n in z.namelist() if n.endswith(".npy")]
    img = next((k for k in IMAGE_KEYS if k in keys), None)
    lbl = next((k for k in LABEL_KEYS if k in keys), None)
    if img is None or lbl is None:
        raise InvalidInput(f"the NPZ file needs an image array and a label array; found keys {keys}",
                           hint=f"name them one of {list(IMAGE_KEYS)} and one of {list(LABEL_KEYS)}")
    return img, lbl, keys


def _header(f: Any, key: str) -> tuple[tuple[int, ...], np.dtype]:
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    except ValueError as e:
        raise InvalidInput(f"array {key!r} in the NPZ file is not a valid .npy array: {e}") from None
    if dtype.hasobject:
        raise InvalidInput(f"array {key!r} holds Python objects (pickled); refused for safety",
                           hint="save numeric arrays (e.g. uint8 images, integer labels)")
    return shape, dtype


def _read_labels(z: LimitedZip, key: str, n: int) -> np.ndarray:
    with z.open(key + ".npy") as f:
        shape, dtype = _header(f, key)  # checked before the array is read
        if len(shape) != 1 or shape[0] != n:
            raise InvalidInput(f"labels {key!r} must be one-dimensional with one label per image ({n}); "
                               f"got shape {shape}")
        try:
            data = f.read(n * dtype.itemsize)
            trailing = f.read(1)  # reaches the end, so the zip's CRC check runs
        except zipfile.BadZipFile as e:
            raise InvalidInput(f"array {key!r} in the NPZ file is damaged: {e}") from None
    if len(data) != n * dtype.itemsize or trailing:
        raise InvalidInput(f"array {key!r} does not hold the {n * dtype.itemsize} bytes its header declares")
    arr = np.frombuffer(data, dtype=dtype)
    if arr.dtype.kind not in "biuU":
        raise InvalidInput(f"labels {key!r} must be integers or strings; got {arr.dtype}")
    return arr


def _balance(labels: np.ndarray) -> dict[str, int]:
    values, counts = np.unique(labels, return_counts=True)
    return {str(v): int(c) for v, c in zip(values.tolist(), counts.tolist(), strict=True)}


def profile_npz(path: Path, limits: ZipLimits | None = None) -> dict[str, Any]:
    with LimitedZip(path, "NPZ file", limits) as z:
        img, lbl, keys = _keys(z)
        with z.open(img + ".npy") as f:
            shape, dtype = _header(f, img)
            if dtype.kind not in "biuf":
                raise InvalidInput(f"images {img!r} must be numeric; got {dtype}")
            chw = _image_shape(shape)
            expected, got = int(np.prod(shape)) * dtype.itemsize, 0
            try:
                while chunk := f.read(READ):  # reads through, so the zip's CRC check runs
                    got += len(chunk)
            except zipfile.BadZipFile as e:
                raise InvalidInput(f"array {img!r} in the NPZ file is damaged: {e}") from None
            if got != expected:
                raise InvalidInput(f"array {img!r} is truncated: {got} of {expected} bytes")
        labels = _read_labels(z, lbl, shape[0])
        if shape[0] == 0:
            raise InvalidInput("the NPZ file holds no images")
        names = ([str(c) for c in np.lib.format.read_array(z.open("class_names.npy"), allow_pickle=False)]
                 if "class_names" in keys else [])
    return {"kind": "image", "rows": int(shape[0]), "image_shape": list(chw), "channels": chw[0],
            "dtype": str(dtype), "target": "label", "classes": _balance(labels),
            "class_names": names, "keys": keys}


def load_npz(path: Path) -> DataFrameSet:
    from consortium.data.frame import DataFrameSet

    with np.load(path, allow_pickle=False) as z:
        img, lbl, keys = _keys(z.zip)
        names = [str(c) for c in z["class_names"]] if "class_names" in keys else None
        return DataFrameSet.from_images(z[img], z[lbl], names)


# --------------------------------------------------------------------------- zip of class folders
def _entries(z: LimitedZip) -> list[tuple[zipfile.ZipInfo, str]]:
    """(entry, class name) for every image; refuses paths that escape the archive's folders."""
    items: list[tuple[zipfile.ZipInfo, list[str]]] = []
    for info in z.infolist():
        name = info.filename
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
            raise InvalidInput(f"zip entry {name!r} escapes its folder", hint="remove it from the archive")
        if info.is_dir() or "__MACOSX" in parts or parts[-1].startswith("."):
            continue
        items.append((info, list(parts)))
    if not items:
        raise InvalidInput("the zip archive holds no images",
                           hint="lay images out as CLASS_NAME/IMAGE.png, one folder per class")
    roots = {p[0] for _, p in items}
    if len(roots) == 1 and all(len(p) == 3 for _, p in items):  # one top folder around the classes
        items = [(i, p[1:]) for i, p in items]
    out = []
    for info, path in items:
        if len(path) != 2:
            raise InvalidInput(f"zip entry {info.filename!r} is not inside exactly one class folder",
                               hint="lay images out as CLASS_NAME/IMAGE.png, one folder per class")
        if not path[1].lower().endswith(IMAGE_EXT):
            raise InvalidInput(f"zip entry {info.filename!r} is not a PNG or JPEG image",
                               hint="remove other files from the archive")
        out.append((info, path[0]))
    return out


def _decode(z: LimitedZip, info: zipfile.ZipInfo) -> Any:
    from PIL import Image

    try:
        img = Image.open(io.BytesIO(z.read(info)))
        if z.limits is not None:  # from the header, before any pixel is decoded
            z.limits.check_pixels(info.filename, *img.size)
        img.load()
        return img
    except Image.DecompressionBombError as e:  # Pillow's own guard, at twice its MAX_IMAGE_PIXELS
        raise PayloadTooLarge(f"image {info.filename!r} is too large to decode: {e}",
                              hint="Pillow refuses images over twice PIL.Image.MAX_IMAGE_PIXELS") from None
    except (PayloadTooLarge, InvalidInput):
        raise
    # Pillow's decoders raise OSError, SyntaxError, struct.error, IndexError, ... for a crafted file
    except Exception as e:  # noqa: BLE001 - any of them means the upload is not an image
        raise InvalidInput(f"image {info.filename!r} does not decode: {e}",
                           hint="re-export it as PNG or JPEG") from None


def _channels(img: Any) -> int:
    return 1 if img.mode in ("1", "L", "I", "I;16", "F", "LA") else 3


def profile_image_zip(path: Path, limits: ZipLimits | None = None) -> dict[str, Any]:
    with LimitedZip(path, "zip archive", limits) as z:
        entries = _entries(z)
        size: tuple[int, int] | None = None
        first = ""
        channels = 1
        counts: Counter[str] = Counter()
        for info, cls in entries:
            img = _decode(z, info)
            if size is None:
                size, first = img.size, info.filename
            elif img.size != size:
                raise InvalidInput(f"image {info.filename!r} is {img.size[0]}x{img.size[1]} but "
                                   f"{first!r} is {size[0]}x{size[1]}; all images must have the same size",
                                   hint="resize the images to one size before uploading")
            channels = max(channels, _channels(img))
            counts[cls] += 1
    if size is None:  # (_entries refuses an archive without images)
        raise InvalidInput("the zip archive holds no images",
                           hint="lay images out as CLASS_NAME/IMAGE.png, one folder per class")
    names = sorted(counts)
    return {"kind": "image", "rows": len(entries), "image_shape": [channels, size[1], size[0]],
            "channels": channels, "dtype": "uint8", "target": "label",
            "classes": {str(i): counts[c] for i, c in enumerate(names)}, "class_names": names}


def load_image_zip(path: Path, schema: dict[str, Any]) -> DataFrameSet:
    from consortium.data.frame import DataFrameSet

    names: list[str] = schema["class_names"]
    channels = schema["channels"]
    with LimitedZip(path, "zip archive", None) as z:  # checked when it was uploaded
        entries = _entries(z)
        c, h, w = schema["image_shape"]
        images = np.empty((len(entries), c, h, w), dtype=np.uint8)  # (N, C, H, W)
        labels = np.empty(len(entries), dtype=np.int64)
        for i, (info, cls) in enumerate(entries):
            img = _decode(z, info).convert("L" if channels == 1 else "RGB")
            a = np.asarray(img, dtype=np.uint8)
            images[i] = a[None, :, :] if a.ndim == 2 else a.transpose(2, 0, 1)
            labels[i] = names.index(cls)
    return DataFrameSet.from_images(images, labels, names)


def head_images(data: DataFrameSet, n: int) -> list[dict[str, Any]]:
    images, labels = data.image_arrays()
    return [{"label": labels[i].item(), "image": images[i].tolist()}
            for i in range(min(n, data.n_rows))]
