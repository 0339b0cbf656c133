"""perfq's digital phantom written as an ASL-BIDS dataset."""

from __future__ import annotations

from typing import Sequence

from . import _perfq
from ._geometry import fspath


def write_phantom(root, *, subject: str = "01", delays: Sequence[float] = (1.8,),
                  repeats: int = 4, snr: float = 0.0, seed: int = 1, pasl: bool = False,
                  time_encoded: int = 0, dims: Sequence[int] = (60, 72, 56),
                  voxel_mm: float = 3.0) -> str:
    """Writes the phantom (a brain with grey and white matter, three arterial territories and
    known CBF and ATT) as an ASL-BIDS dataset under ``root``, its ground truth in
    ``root/derivatives/truth``; returns the path of the ASL series. ``snr`` 0 is noise-free;
    several ``delays`` make a multi-delay series; ``time_encoded`` 4, 8 or 12 a
    Hadamard-encoded one."""
    return _perfq.write_phantom(fspath(root, "root"), subject, [float(d) for d in delays],
                                int(repeats), float(snr), int(seed), bool(pasl),
                                int(time_encoded), [int(n) for n in dims], float(voxel_mm))
