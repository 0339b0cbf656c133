"""Arrays and grids: how perfq's images meet NumPy and nibabel.

Arrays are indexed [x, y, z(, t)], as nibabel's ``get_fdata()`` gives them. perfq stores x
fastest, which for such an array is Fortran (column-major) order: a Fortran-ordered array of
the dtype a function takes (float32 for images, uint8 for masks, int32 for labels) reaches the
library without a copy; any other array is converted once (``numpy.asfortranarray``), which
keeps its indexing. Grids are given as a NIfTI affine (RAS+ millimetres, as nibabel's); perfq
works in LPS internally.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Tuple

import numpy as np

from ._errors import InvalidArgumentError

_RAS_FROM_LPS = np.diag([-1.0, -1.0, 1.0])
_RAS_FROM_LPS_4 = np.diag([-1.0, -1.0, 1.0, 1.0])


def is_nibabel_image(value: Any) -> bool:
    """Whether ``value`` is a nibabel spatial image (without importing nibabel)."""
    return hasattr(value, "affine") and hasattr(value, "dataobj") and hasattr(value, "header")


def affine_from_grid(grid) -> np.ndarray:
    """The RAS+ affine (4 x 4) of a perfq grid (dims, spacing, origin, direction)."""
    _, spacing, origin, direction = grid
    lps = np.asarray(direction, dtype=float).reshape(3, 3) * np.asarray(spacing, dtype=float)
    affine = np.eye(4)
    affine[:3, :3] = _RAS_FROM_LPS @ lps
    affine[:3, 3] = _RAS_FROM_LPS @ np.asarray(origin, dtype=float)
    return affine


def grid_from_affine(affine, shape) -> Tuple[tuple, tuple, tuple, tuple]:
    """perfq's grid (dims, spacing, origin, direction) of an array of ``shape`` with ``affine``."""
    a = np.asarray(affine, dtype=float)
    if a.shape != (4, 4) or not np.all(np.isfinite(a)):
        raise InvalidArgumentError("affine: expected a finite 4 x 4 matrix")
    m = _RAS_FROM_LPS @ a[:3, :3]
    spacing = np.linalg.norm(m, axis=0)
    if not np.all(spacing > 0):
        raise InvalidArgumentError("affine: a voxel axis has zero length")
    direction = m / spacing
    if not np.allclose(direction.T @ direction, np.eye(3), atol=1e-4):
        raise InvalidArgumentError(
            "affine: the voxel axes are not perpendicular (a sheared grid), which perfq "
            "cannot represent")
    origin = _RAS_FROM_LPS @ a[:3, 3]
    dims = tuple(int(n) for n in shape[:3])
    return dims, tuple(spacing.tolist()), tuple(origin.tolist()), tuple(direction.ravel().tolist())


def image_array(value: Any, dtype, what: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(array in perfq's layout, the image's affine or None) from an array or a nibabel image.

    Masks (dtype uint8) are 1 where the input is nonzero and finite.
    """
    affine = None
    if is_nibabel_image(value):
        affine = np.asarray(value.affine, dtype=float)
        value = np.asanyarray(value.dataobj)
    if value is None:
        raise InvalidArgumentError(f"{what}: expected an array or a nibabel image, got None")
    try:
        array = np.asarray(value)
    except Exception as error:  # e.g. ragged lists
        raise InvalidArgumentError(f"{what}: not an array ({error})") from None
    if array.ndim not in (3, 4):
        raise InvalidArgumentError(
            f"{what}: expected a 3D or 4D array indexed [x, y, z(, t)], got {array.ndim} "
            f"dimension(s), shape {array.shape}")
    if array.dtype.kind not in "biuf":
        raise InvalidArgumentError(f"{what}: expected numbers, got dtype {array.dtype}")
    dtype = np.dtype(dtype)
    if dtype == np.uint8 and array.dtype != np.uint8:
        array = (np.isfinite(array) & (array != 0)) if array.dtype.kind == "f" else array != 0
    if dtype == np.int32 and array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise InvalidArgumentError(f"{what}: a label image must hold integers")
    if array.dtype == dtype and array.flags.f_contiguous:
        return array, affine
    return np.asfortranarray(array, dtype=dtype), affine


def grid_for(array: np.ndarray, affine, spacing, image_affine) -> tuple:
    """The grid of ``array``: the given affine, else the image's, else ``spacing`` (mm) on
    the identity axes at the origin, else 1 mm voxels."""
    if affine is None:
        affine = image_affine
    if affine is None:
        a = np.eye(4)
        if spacing is not None:
            s = np.broadcast_to(np.asarray(spacing, dtype=float), (3,))
            a[:3, :3] = np.diag(s)
        affine = _RAS_FROM_LPS_4 @ a  # identity LPS axes, as perfq's own default grid
    return grid_from_affine(affine, array.shape)



def fspath(value: Any, what: str) -> str:
    """A path as text (str, bytes or os.PathLike)."""
    try:
        path = os.fsdecode(os.fspath(value))
    except TypeError:
        raise InvalidArgumentError(
            f"{what}: expected a path, got {type(value).__name__}") from None
    return path
