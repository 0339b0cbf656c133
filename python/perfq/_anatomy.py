"""Anatomy: rigid registration of an ASL image to its T1w, and a subject's fMRIPrep/sMRIPrep
anatomical files (docs/anatomy.md)."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import numpy as np

from . import _perfq
from ._errors import InvalidArgumentError
from ._geometry import fspath, grid_for, image_array
from ._transforms import Transform


class Registration:
    """The result of register_rigid."""

    def __init__(self, raw: Dict[str, Any]) -> None:
        #: rigid; resamples the moving image onto the fixed grid (maps fixed points to moving
        #: points): write it as ``sub-X_from-asl_to-T1w_mode-image_xfm.txt``; ``.inverse()``
        #: brings T1w-space images onto the moving grid
        self.transform: Transform = Transform(raw["transform"])
        #: ITK Euler3D parameters as the transform file holds them (LPS): rotation about
        #: x, y, z (radians), translation (mm) and centre (mm)
        self.angles = np.asarray(raw["angles"], dtype=float)
        self.translation = np.asarray(raw["translation"], dtype=float)
        self.center = np.asarray(raw["center"], dtype=float)
        #: Mattes mutual information at the start and the end (more negative: better)
        self.initial_metric: float = float(raw["initial_metric"])
        self.final_metric: float = float(raw["final_metric"])
        self.iterations: List[int] = list(raw["iterations"])  #: per level
        self.stop_condition: str = raw["stop_condition"]  #: the optimizer's last word
        self.sampled_image: str = raw["sampled_image"]  #: "moving" or "fixed"
        self.samples: int = int(raw["samples"])  #: points the metric was evaluated at

    def __repr__(self) -> str:
        degrees = ", ".join(f"{np.degrees(a):.2f}" for a in self.angles)
        return (f"Registration(metric {self.initial_metric:.4f} -> {self.final_metric:.4f}, "
                f"rotation ({degrees}) deg)")


def _mask(mask, shape, what):
    if mask is None:
        return None
    array, _ = image_array(mask, np.uint8, what)
    if array.shape != shape:
        raise InvalidArgumentError(f"{what}: shape {array.shape}, expected {shape} (its image's)")
    return np.asfortranarray(array)


def register_rigid(moving, fixed, *, moving_affine=None, fixed_affine=None, moving_mask=None,
                   fixed_mask=None, start: str = "identity", threads: int = 0) -> Registration:
    """Registers ``moving`` (an ASL M0; a 4D series: the mean of its volumes, as ``perfq
    register``) rigidly to ``fixed`` (the subject's T1w) by Mattes mutual information.

    Each image: an array with its affine (RAS+, ``moving_affine``/``fixed_affine``) or a
    nibabel image. Masks (optional) lie on their image's grid and restrict the metric.
    ``start``: "identity" (both in the scanner's coordinates), "moments" or "geometry".
    ``threads`` 1 gives the same result bit for bit on every run."""
    m, m_affine = image_array(moving, np.float32, "moving")
    if m.ndim == 4:
        m = np.where(np.isfinite(m), m, 0).mean(axis=3, dtype=np.float64).astype(np.float32)
    f, f_affine = image_array(fixed, np.float32, "fixed")
    if f.ndim == 4:
        raise InvalidArgumentError("fixed: expected a 3D image (the T1w), got 4D")
    m = np.asfortranarray(m)
    f = np.asfortranarray(f)
    mg = grid_for(m, moving_affine, None, m_affine)
    fg = grid_for(f, fixed_affine, None, f_affine)
    raw = _perfq.register_rigid(m, *mg, f, *fg, _mask(moving_mask, m.shape, "moving_mask"),
                                _mask(fixed_mask, f.shape, "fixed_mask"), str(start), int(threads))
    return Registration(raw)


def find_anat_derivatives(root, subject: str, session: str = "") -> Dict[str, Any]:
    """A subject's anatomical files in an fMRIPrep/sMRIPrep output folder: ``t1w``,
    ``brain_mask``, ``gm``/``wm``/``csf`` probability maps and ``dseg`` ("" when absent),
    ``from_template`` (template name -> the transform resampling it onto the T1w), with the
    ``folder`` and ``prefix`` they were found by. Labels without ``sub-``/``ses-``."""
    subject = str(subject)
    session = str(session)
    subject = subject[4:] if subject.startswith("sub-") else subject
    session = session[4:] if session.startswith("ses-") else session
    return dict(_perfq.find_anat_derivatives(fspath(root, "root"), subject, session))


def find_m0scan(asl_path) -> str:
    """The separate M0 image of an ASL-BIDS series, as ``quantify_series`` finds it: the
    series' own ``<prefix>_m0scan.nii[.gz]``, else the one m0scan of its folder whose sidecar's
    IntendedFor names the series; "" when there is none."""
    return str(_perfq.find_m0scan(fspath(asl_path, "asl_path")))
