"""Spatial transforms and resampling: label atlases, probability maps and masks brought onto
another grid (e.g. an MNI atlas into ASL space).

Transforms are the files ITK, ANTs, fMRIPrep and ``perfq register`` write (``.txt``,
``.tfm``, ``.mat``, ``.h5``). A transform's ``map`` takes a point of the target space (the
grid resampled onto) to the point of the source space whose value it takes, as ITK's and
fMRIPrep's ``from-A_to-B_mode-image_xfm`` files do (A: source, B: target). In Python, points
and matrices are RAS+ millimetres, as nibabel's affines (the files hold LPS; the conversion is
done here); ``lps=True`` gives the files' convention.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

import numpy as np

from . import _perfq
from ._errors import InvalidArgumentError
from ._geometry import fspath, grid_for, grid_from_affine, image_array, is_nibabel_image

_FLIP = np.array([-1.0, -1.0, 1.0])  # RAS <-> LPS
_FLIP4 = np.diag([-1.0, -1.0, 1.0, 1.0])


class Transform:
    """A transform or a chain of them (read_transform, compose_transforms, affine_transform)."""

    def __init__(self, handle) -> None:
        self._handle = handle

    def map(self, points, *, lps: bool = False) -> np.ndarray:
        """The source points of target ``points`` (an (N, 3) array or one point), RAS+ mm (LPS
        with ``lps=True``)."""
        p = np.asarray(points, dtype=float)
        one = p.ndim == 1
        p = np.atleast_2d(p)
        if p.ndim != 2 or p.shape[1] != 3:
            raise InvalidArgumentError(f"points: expected an (N, 3) array, got shape {p.shape}")
        if not lps:
            p = p * _FLIP
        out = np.asarray(self._handle.map(np.ascontiguousarray(p)))
        if not lps:
            out = out * _FLIP
        return out[0] if one else out

    @property
    def linear(self) -> bool:
        """Whether every part is linear (rigid or affine): the whole is one matrix."""
        return bool(self._handle.linear)

    @property
    def matrix(self) -> np.ndarray:
        """The 4 x 4 matrix of a linear transform on RAS+ points (raises for a field)."""
        return _FLIP4 @ self.matrix_lps @ _FLIP4

    @property
    def matrix_lps(self) -> np.ndarray:
        """The 4 x 4 matrix on LPS points, as ITK's files hold it."""
        return np.asarray(self._handle.matrix(), dtype=float).reshape(4, 4)

    @property
    def parts(self) -> list:
        """The ITK class name of each part, in the order map applies them."""
        return list(self._handle.parts())

    def inverse(self) -> "Transform":
        """The inverse of a linear transform (the opposite direction); raises for a
        displacement field (use the file of the other direction)."""
        return Transform(self._handle.inverse())

    def __repr__(self) -> str:
        return f"perfq.Transform({' -> '.join(self.parts) or 'identity'})"


def read_transform(path) -> Transform:
    """Reads a transform file (an ITK composite, as fMRIPrep's .h5, becomes one chain)."""
    return Transform(_perfq.read_transform(fspath(path, "path")))


def compose_transforms(steps: Sequence[Transform]) -> Transform:
    """Chains transforms in image-mode order: ``steps[0]`` resamples space A onto B,
    ``steps[1]`` B onto C, ...; the result resamples A onto the last space in one step."""
    handles = []
    for k, step in enumerate(steps):
        if not isinstance(step, Transform):
            raise InvalidArgumentError(f"steps[{k}]: expected a perfq.Transform")
        handles.append(step._handle)
    return Transform(_perfq.compose_transforms(handles))


def affine_transform(matrix, *, lps: bool = False) -> Transform:
    """A transform from a 4 x 4 matrix acting on RAS+ points (LPS with ``lps=True``)."""
    m = np.asarray(matrix, dtype=float)
    if m.shape != (4, 4) or not np.all(np.isfinite(m)):
        raise InvalidArgumentError("matrix: expected a finite 4 x 4 matrix")
    if not lps:
        m = _FLIP4 @ m @ _FLIP4
    return Transform(_perfq.affine_transform(tuple(m[:3, :3].ravel()), tuple(m[:3, 3])))


def _target_grid(reference: Any, reference_affine) -> tuple:
    """The grid to resample onto: a nibabel image, or an array / a shape with
    ``reference_affine``."""
    if is_nibabel_image(reference):
        affine = reference.affine if reference_affine is None else reference_affine
        return grid_from_affine(affine, reference.shape)
    if reference_affine is None:
        raise InvalidArgumentError(
            "reference_affine: needed when the reference is not a nibabel image")
    shape = reference.shape if hasattr(reference, "shape") else tuple(reference)
    if len(shape) < 3:
        raise InvalidArgumentError(f"reference: expected a 3D (or 4D) shape, got {shape}")
    return grid_from_affine(reference_affine, shape)


def _footprint(footprint) -> int:
    n = int(footprint)
    if n < 0:
        raise InvalidArgumentError(f"footprint: expected 0 (chosen) to 8, got {n}")
    return n


def _transform(transform: Optional[Transform]):
    if transform is None:
        return _perfq.compose_transforms([])
    if isinstance(transform, (list, tuple)):
        transform = compose_transforms(transform)
    if not isinstance(transform, Transform):
        raise InvalidArgumentError("transform: expected a perfq.Transform, a list of them or None")
    return transform._handle


def resample(image, reference, transform=None, *, affine=None, reference_affine=None,
             interpolation: str = "linear", footprint: int = 0, outside: float = 0.0,
             threads: int = 0) -> np.ndarray:
    """Resamples a map (3D or 4D; e.g. a probability map) onto the reference's grid.

    Each target voxel is the mean of ``footprint``**3 sub-points spread over it (0: about one
    per source voxel it spans, chosen per axis; 1: the centre alone), each interpolated
    (``"linear"`` or ``"nearest"``): a partial-volume average. Points outside the image take
    ``outside``.

    image: an array with ``affine`` (RAS+), or a nibabel image. reference: a nibabel image,
    or an array or shape with ``reference_affine``. transform: a Transform, a list of them (in
    image-mode order, see compose_transforms) or None (one space). Returns a float32 array on the
    reference's grid.
    """
    if interpolation not in ("linear", "nearest"):
        raise InvalidArgumentError(
            f"interpolation: expected 'linear' or 'nearest', got {interpolation!r}")
    array, image_affine = image_array(image, np.float32, "image")
    grid = grid_for(array, affine, None, image_affine)
    target = _target_grid(reference, reference_affine)
    return _perfq.resample(array, *grid, *target, _transform(transform),
                           interpolation == "nearest", _footprint(footprint), float(outside),
                           int(threads))


def resample_labels(labels, reference, transform=None, *, affine=None, reference_affine=None,
                    rule: str = "majority", footprint: int = 0, threads: int = 0) -> np.ndarray:
    """Resamples a label image (an atlas) onto the reference's grid: ``"majority"`` vote over
    each target voxel's sub-points (ties: the label at the voxel's centre when it is tied,
    else the smallest), or ``"nearest"`` (the label at the centre). Points outside the image
    are label 0. Arguments as resample's; returns an int32 array."""
    if rule not in ("majority", "nearest"):
        raise InvalidArgumentError(f"rule: expected 'majority' or 'nearest', got {rule!r}")
    array, image_affine = image_array(labels, np.int32, "labels")
    grid = grid_for(array, affine, None, image_affine)
    target = _target_grid(reference, reference_affine)
    return _perfq.resample_labels(array, *grid, *target, _transform(transform),
                                  rule == "nearest", _footprint(footprint), int(threads))


def resample_mask(mask, reference, transform=None, *, affine=None, reference_affine=None,
                  min_fraction: float = 0.5, footprint: int = 0,
                  threads: int = 0) -> np.ndarray:
    """Resamples a mask (nonzero inside) onto the reference's grid: a target voxel is inside
    when at least ``min_fraction`` of it is (the mean of its sub-points' linearly
    interpolated 0/1 values). Arguments as resample's; returns a uint8 array."""
    array, image_affine = image_array(mask, np.uint8, "mask")
    grid = grid_for(array, affine, None, image_affine)
    target = _target_grid(reference, reference_affine)
    return _perfq.resample_mask(array, *grid, *target, _transform(transform),
                                float(min_fraction), _footprint(footprint), int(threads))
