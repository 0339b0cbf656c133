"""Reads a perfq phantom dataset (`perfq phantom -o ROOT`) for the peer scripts: the ASL
series and M0 of sub-01, the control/label pairing and timing from the BIDS sidecar and
aslcontext, and the truth maps. Needs numpy and nibabel."""
import json
from pathlib import Path
from types import SimpleNamespace

import nibabel as nib
import numpy as np


def load(root: Path) -> SimpleNamespace:
    """Fields: asl (x, y, z, volumes), affine, m0, plds (per volume), tau, delays (distinct
    label PLDs, ascending), pairs[d] (control, label) indices at delay d, mask, true_cbf,
    true_att."""
    perf = root / "sub-01" / "perf"
    truth = root / "derivatives" / "truth" / "sub-01" / "perf"
    asl_img = nib.load(perf / "sub-01_asl.nii.gz")
    sidecar = json.loads((perf / "sub-01_asl.json").read_text())
    context = (perf / "sub-01_aslcontext.tsv").read_text().split()[1:]
    plds = np.asarray(sidecar["PostLabelingDelay"], dtype=float)
    control = [i for i, c in enumerate(context) if c == "control"]
    label = [i for i, c in enumerate(context) if c == "label"]
    delays = sorted(set(plds[label]))
    return SimpleNamespace(
        asl=asl_img.get_fdata(dtype=np.float32),
        affine=asl_img.affine,
        m0=nib.load(perf / "sub-01_m0scan.nii.gz").get_fdata(dtype=np.float32),
        plds=plds,
        tau=float(np.atleast_1d(sidecar["LabelingDuration"])[0]),
        delays=delays,
        pairs={d: [(c, l) for c, l in zip(control, label) if plds[l] == d] for d in delays},
        mask=nib.load(truth / "sub-01_mask.nii.gz").get_fdata() > 0,
        true_cbf=nib.load(truth / "sub-01_cbf.nii.gz").get_fdata(),
        true_att=nib.load(truth / "sub-01_att.nii.gz").get_fdata(),
    )
