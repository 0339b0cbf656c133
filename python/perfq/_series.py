"""The pipeline on one ASL-BIDS series, as ``perfq cbf`` runs it."""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

import numpy as np

from . import _perfq
from ._geometry import affine_from_grid
from ._options import arguments, path_of

_OPTIONAL_MAPS = ("att", "cbf_se", "att_se", "abv", "abv_se", "arterial_att", "cbf_gm",
                  "cbf_wm", "scanner_cbf")


def _quality_row(tsv: str) -> Dict[str, Optional[float]]:
    header, row = tsv.splitlines()[:2]
    return {name: (None if value == "n/a" else float(value))
            for name, value in zip(header.split("\t"), row.split("\t"))}


class Result:
    """The maps of one series and how they were made.

    Maps are NumPy arrays indexed [x, y, z] (float32; ``status`` uint8), read-only views of
    the library's memory (no copy), kept alive by this object and by the arrays themselves.
    Maps a series does not have are None (``att`` of a single-delay series, ``abv`` without
    the arterial component, ``cbf_gm``/``cbf_wm`` without partial-volume correction).
    """

    def __init__(self, maps: "_perfq.SeriesMaps") -> None:
        self._maps = maps
        self.cbf: np.ndarray = maps.cbf  #: CBF, ml/100 g/min (0 where status is not 0)
        self.status: np.ndarray = maps.status  #: voxel status codes (0: fitted)
        self.att: Optional[np.ndarray] = None  #: arterial transit time, s (multi-delay)
        self.cbf_se: Optional[np.ndarray] = None  #: standard error of CBF (multi-delay)
        self.att_se: Optional[np.ndarray] = None  #: standard error of ATT, s (multi-delay)
        self.abv: Optional[np.ndarray] = None  #: arterial blood volume, % (arterial=True)
        self.abv_se: Optional[np.ndarray] = None  #: its standard error
        self.arterial_att: Optional[np.ndarray] = None  #: arterial arrival time, s
        self.cbf_gm: Optional[np.ndarray] = None  #: grey-matter CBF (partial-volume corrected)
        self.cbf_wm: Optional[np.ndarray] = None  #: white-matter CBF (likewise)
        self.scanner_cbf: Optional[np.ndarray] = None  #: the scanner's CBF volumes, averaged
        for name in _OPTIONAL_MAPS:
            setattr(self, name, maps.optional_map(name))
        #: the voxel-to-RAS+ affine of the maps (mm), as nibabel gives it
        self.affine: np.ndarray = affine_from_grid(maps.grid)
        self.prefix: str = maps.prefix  #: the series' name before _asl (output names)
        self.asl_path: str = maps.asl_path  #: the series quantified
        self.delays: int = maps.delays  #: ΔM volumes quantified
        self.backend: str = maps.backend  #: where it ran ("cpu" or "cuda")
        self.median_cbf: float = maps.median_cbf  #: over the brain region's fitted voxels
        self.median_att: float = maps.median_att  #: likewise (multi-delay)
        #: no M0 (M0Type Absent): cbf is relative to the brain's median
        self.relative_cbf: bool = maps.relative_cbf
        self.check_region: str = maps.check_region  #: the mask, or the automatic brain mask
        self.warnings: List[str] = list(maps.warnings)  #: what perfq cbf prints as warnings
        self.notes: List[str] = list(maps.notes)  #: remarks of the preparation
        #: the provenance record perfq cbf writes as <prefix>_cbf.json
        self.provenance: Dict[str, Any] = json.loads(maps.provenance_json)
        #: the quality indices (<prefix>_desc-qualitycontrol_cbf.tsv): value by name, None
        #: where not defined (why: ``quality_sidecar["NotDefined"]``)
        self.quality: Dict[str, Optional[float]] = _quality_row(maps.quality_tsv)
        #: the table's sidecar: every index described, with its reference
        self.quality_sidecar: Dict[str, Any] = json.loads(maps.quality_json)

    def maps(self) -> Dict[str, np.ndarray]:
        """Every map this series has, by name."""
        out = {"cbf": self.cbf, "status": self.status}
        out.update({n: getattr(self, n) for n in _OPTIONAL_MAPS if getattr(self, n) is not None})
        return out

    def to_nifti(self, out_dir, overwrite: bool = False, compressed: bool = True) -> List[str]:
        """Writes the files ``perfq cbf`` writes into ``out_dir`` (all of them or none);
        returns their paths. Existing outputs are replaced only with ``overwrite``. With
        ``compressed=False`` the images are ``.nii`` (``perfq cbf --uncompressed``): the same
        header and voxel values, faster to write, larger."""
        return self._maps.write(path_of(out_dir, "out_dir"), overwrite, compressed)

    def to_nibabel(self, name: str = "cbf"):
        """One map as a ``nibabel.Nifti1Image`` with the series' affine (needs nibabel)."""
        import nibabel

        array = self.maps().get(name)
        if array is None:
            raise KeyError(f"this series has no map {name!r} (it has {sorted(self.maps())})")
        return nibabel.Nifti1Image(np.asarray(array), self.affine)


def quantify_series(path, *, backend: str = "auto", device: int = 0, threads: int = 0,
                    config=None, **options: Any) -> Result:
    """Quantifies one ASL-BIDS series (its ``_asl.nii[.gz]``, with the sidecar, the
    aslcontext and the M0 BIDS puts beside it) as ``perfq cbf`` does.

    Options are perfq cbf's with Python names (see ``perfq.series_options()``): flags take
    True (``att_prior=True``), the others a value (``t1b=1.6``, ``model="whitepaper"``,
    ``lambda_=0.9``, ``delays`` lists as Python lists); files (``mask``, ``ref_mask``,
    ``pvc_gm``, ``pvc_wm``) a path or a nibabel image. ``backend`` is "auto", "cpu" or
    "cuda"; ``threads`` 0 uses every processor. ``config``: a configuration file of options
    per series (``perfq bids --config``'s format, docs/cli.md): the options of its entries
    that match the series apply first, those given here beat them, and the result's
    provenance records what applied (``Configuration``). The computation releases the GIL.

    Raises:
        InputError: bad data or metadata (its ``file`` and ``field`` say where).
        InvalidArgumentError: an unknown option, a value out of range, a bad combination.
        BackendError: the requested backend cannot run.
    """
    asl = path_of(path, "path")
    with arguments(options) as args:
        return Result(_perfq.quantify_series(asl, args, backend, int(device), int(threads),
                                             "" if config is None else path_of(config, "config")))


def series_options() -> Dict[str, bool]:
    """perfq cbf's options ``quantify_series`` takes, by Python name: whether each takes a
    value (False: a flag)."""
    from ._options import _KNOWN, python_name

    return {python_name(name): takes for name, takes in _KNOWN.items()}
