"""perfq: arterial spin labeling perfusion (CBF, ATT) and watershed masks, from Python.

The pipeline on an ASL-BIDS series (``quantify_series``, as the ``perfq cbf`` command), the
building blocks on NumPy arrays or nibabel images (``quantify_cbf``, ``fit_kinetic``,
``distance_map``, ``border_zones``, ``region_stats``), transforms and resampling
(``read_transform``, ``resample``, ``resample_labels``, ``resample_mask``), rigid registration
to a T1w (``register_rigid``) and a subject's fMRIPrep anatomy (``find_anat_derivatives``),
and the digital phantom
(``write_phantom``). Arrays are indexed [x, y, z(, t)], as nibabel's ``get_fdata()`` gives
them. Computations release the GIL and run on the GPU when perfq was built with CUDA and one
is present (``backend="auto"``).
"""

from . import _perfq
from ._anatomy import Registration, find_anat_derivatives, find_m0scan, register_rigid
from ._blocks import (Maps, border_zones, distance_map, fit_kinetic, quality_indices,
                      quantify_cbf, region_stats)
from ._errors import BackendError, Error, InputError, InvalidArgumentError, OutputError
from ._phantom import write_phantom
from ._series import Result, quantify_series, series_options
from ._transforms import (Transform, affine_transform, compose_transforms, read_transform,
                          resample, resample_labels, resample_mask)

__version__: str = _perfq.__version__


def cuda_available() -> bool:
    """Whether this build of perfq has the CUDA backend and a CUDA device can be used."""
    return bool(_perfq.cuda_available())


__all__ = [
    "BackendError", "Error", "InputError", "InvalidArgumentError", "Maps", "OutputError",
    "Result", "border_zones", "cuda_available", "distance_map", "fit_kinetic",
    "quality_indices", "quantify_cbf", "quantify_series", "region_stats", "series_options", "write_phantom",
    "Transform", "affine_transform", "compose_transforms", "read_transform", "resample",
    "resample_labels", "resample_mask", "Registration", "find_anat_derivatives",
    "find_m0scan", "register_rigid",
    "__version__",
]
