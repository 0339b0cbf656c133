"""The building blocks on arrays: single-delay CBF, the multi-delay fit, distance maps,
border zones and regional statistics.

Images are arrays indexed [x, y, z(, t)] or nibabel images; see perfq._geometry for the
layout (Fortran-ordered arrays of the right dtype pass without a copy). The grid comes from
``affine`` (RAS+, as nibabel's), else from the first nibabel image given, else from
``spacing`` (1 mm by default). Results are arrays on that grid, in a ``Maps`` dictionary
that knows the affine.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from . import _perfq
from ._errors import InvalidArgumentError
from ._geometry import affine_from_grid, grid_for, image_array
from ._options import arguments


class Maps(dict):
    """Arrays by name (and "backend": where the computation ran), with the affine of their
    grid."""

    def __init__(self, values: Dict[str, Any], affine: np.ndarray) -> None:
        super().__init__(values)
        self.affine = affine  #: the voxel-to-RAS+ affine of every map (mm)

    def to_nibabel(self, name: str):
        """The map ``name`` as a ``nibabel.Nifti1Image`` with the grid's affine."""
        import nibabel

        return nibabel.Nifti1Image(np.asarray(self[name]), self.affine)


def _sidecar(protocol: Any) -> tuple:
    """(JSON text, name for messages) of a protocol given as a BIDS sidecar: a dict of its
    fields, or the path of a .json file."""
    if isinstance(protocol, dict):
        try:
            return json.dumps(protocol), "protocol"
        except (TypeError, ValueError) as error:
            raise InvalidArgumentError(f"protocol: not JSON-serialisable ({error})") from None
    if isinstance(protocol, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(protocol))
        with open(path, encoding="utf-8") as f:
            return f.read(), path
    raise InvalidArgumentError(
        "protocol: expected a dict of BIDS sidecar fields or the path of an _asl.json, got "
        f"{type(protocol).__name__}")


def _m0(m0: Any):
    if m0 is None:
        raise InvalidArgumentError("m0: expected an image or a positive number, got None")
    if isinstance(m0, (int, float, np.number)) and not isinstance(m0, bool):
        return None, float(m0)
    array, _ = image_array(m0, np.float32, "m0")
    return array, 0.0


def _quantify(kinetic, delta_m, m0, protocol, mask, affine, spacing, backend, device, threads,
              options) -> Maps:
    dm, image_affine = image_array(delta_m, np.float32, "delta_m")
    grid = grid_for(dm, affine, spacing, image_affine)
    m0_image, m0_value = _m0(m0)
    mask_array = None if mask is None else image_array(mask, np.uint8, "mask")[0]
    text, source = _sidecar(protocol)
    with arguments(options) as args:
        out = _perfq.quantify(kinetic, dm, m0_image, m0_value, mask_array, *grid, text, source,
                              args, backend, int(device), int(threads))
    return Maps(out, affine_from_grid(grid))


def quantify_cbf(delta_m, m0, protocol, *, mask=None, affine=None, spacing=None,
                 backend: str = "auto", device: int = 0, threads: int = 0, **options) -> Maps:
    """Single-delay CBF (the white paper's model) from one mean ΔM image.

    Args:
        delta_m: mean control - label, 3D (or one volume per delay for a check).
        m0: the M0 image on the same grid, or one value (fully relaxed).
        protocol: the BIDS sidecar's fields (a dict) or its path: ArterialSpinLabelingType,
            PostLabelingDelay, LabelingDuration or BolusCutOffDelayTime, M0Type, ...
        mask: compute inside it only.
        options: perfq cbf's constants with Python names (``t1b``, ``lambda_``, ``alpha``,
            ``t1t``, ``bs_pulse_efficiency``).

    Returns:
        Maps with "cbf" (ml/100 g/min) and "status".
    """
    return _quantify(False, delta_m, m0, protocol, mask, affine, spacing, backend,
                     device, threads, options)


def fit_kinetic(delta_m, m0, protocol, *, mask=None, affine=None, spacing=None,
                backend: str = "auto", device: int = 0, threads: int = 0, **options) -> Maps:
    """The multi-delay kinetic fit (CBF and ATT, voxel by voxel) of a ΔM series with one
    volume per delay (the protocol's PostLabelingDelay lists them).

    Options are perfq cbf's fit and constant options with Python names (``att_prior=True``,
    ``arterial=True``, ``model="whitepaper"``, ``att_min``, ``att_max``, ``dispersion``, ...).

    Returns:
        Maps with "cbf", "att", "cbf_se", "att_se", "residual_rms", "iterations", "status"
        (and "abv", "abv_se", "arterial_att" with ``arterial=True``).
    """
    return _quantify(True, delta_m, m0, protocol, mask, affine, spacing, backend,
                     device, threads, options)


def distance_map(mask, *, signed: bool = False, millimetres: bool = True, affine=None,
                 spacing=None, backend: str = "auto", device: int = 0, threads: int = 0) -> Maps:
    """Exact Euclidean distance of every voxel to the mask (signed: negative inside), in mm
    (or voxels with ``millimetres=False``). Returns Maps with "distance"."""
    m, image_affine = image_array(mask, np.uint8, "mask")
    grid = grid_for(m, affine, spacing, image_affine)
    out = _perfq.distance_map(m, *grid, bool(signed), bool(millimetres), backend, int(device),
                              int(threads))
    return Maps({"distance": out}, affine_from_grid(grid))


def border_zones(territories, width_mm: float, *, brain=None, affine=None, spacing=None,
                 backend: str = "auto", device: int = 0, threads: int = 0) -> Maps:
    """Border zones of an arterial territory atlas (labels 1 to 999, 0 none): voxels of
    ``brain`` (every voxel when None) with at least two territories within ``width_mm / 2``,
    centre to centre. Returns Maps with "mask" (uint8), "pairs" (int32:
    which two territories meet) and "territories" (the labels used)."""
    t, image_affine = image_array(territories, np.int32, "territories")
    grid = grid_for(t, affine, spacing, image_affine)
    b = None if brain is None else image_array(brain, np.uint8, "brain")[0]
    out = _perfq.border_zones(t, b, float(width_mm), *grid, backend, int(device), int(threads))
    return Maps(out, affine_from_grid(grid))


def region_stats(image, labels, *, mask=None, percentiles: Sequence[float] = (5, 25, 75, 95),
                 include_background: bool = False, affine=None, spacing=None,
                 backend: str = "auto", device: int = 0, threads: int = 0) -> List[Dict[str, Any]]:
    """Statistics of ``image`` in each region of the label image ``labels`` (0 is background
    unless ``include_background``): one dict per region with label, voxels, count, nonfinite,
    volume_ml, mean, sd, median, min, max, cov, scov (None where the mean is 0) and
    percentiles (by percentile)."""
    v, image_affine = image_array(image, np.float32, "image")
    grid = grid_for(v, affine, spacing, image_affine)
    lab = image_array(labels, np.int32, "labels")[0]
    m = None if mask is None else image_array(mask, np.uint8, "mask")[0]
    return _perfq.region_stats(v, lab, m, [float(p) for p in percentiles],
                               bool(include_background), *grid, backend, int(device),
                               int(threads))


def quality_indices(cbf, *, gm=None, wm=None, csf=None, brain=None, status=None,
                    tissue_threshold: float = 0.7, fwhm_mm: float = 5.0, relative: bool = False,
                    affine=None, spacing=None) -> Dict[str, Optional[float]]:
    """The quality indices of a CBF map (ml/100 g/min; ``relative`` for relative CBF), as
    ``perfq cbf`` writes them to ``<prefix>_desc-qualitycontrol_cbf.tsv``: a dict from index
    name (``gm_mean_cbf``, ``gm_scov``, ``qei``, ...) to its value, None where it is not
    defined (e.g. the GM indices without ``gm``; the QEI needs ``gm``, ``wm`` and ``csf``).
    ``gm``/``wm``/``csf`` are probability maps in [0, 1] on the map's grid (0/1 masks serve);
    ``brain`` a 0/1 mask; ``status`` perfq's voxel status codes (voxels without a value left
    out). Definitions and references: docs/quality.md."""
    v, image_affine = image_array(cbf, np.float32, "cbf")
    grid = grid_for(v, affine, spacing, image_affine)

    def optional(x, dtype, name):
        return None if x is None else image_array(x, dtype, name)[0]

    rows = _perfq.quality_indices(
        v, optional(gm, np.float32, "gm"), optional(wm, np.float32, "wm"),
        optional(csf, np.float32, "csf"), optional(brain, np.uint8, "brain"),
        optional(status, np.uint8, "status"), float(tissue_threshold), float(fwhm_mm),
        bool(relative), *grid)
    return {name: value for name, value, _units, _about, _why in rows}
