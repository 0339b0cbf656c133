#!/usr/bin/env python3
"""Scores perfq's CBF and ATT maps against a perfq phantom's truth as fabber_spatial.py and
bench/bench_spatial.cpp do: median |CBF error| (relative, and its signed median) and median
|ATT error| over the truth mask's voxels with true CBF > 0.

usage: score_maps.py <phantom_root> <output_folder> <name>   (needs numpy, nibabel)
"""
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

import phantom_data

root, folder, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
d = phantom_data.load(root)
scored = d.mask & (d.true_cbf > 0)
cbf = nib.load(folder / "sub-01_cbf.nii.gz").get_fdata()[scored]
att = nib.load(folder / "sub-01_att.nii.gz").get_fdata()[scored]
relative = (cbf - d.true_cbf[scored]) / d.true_cbf[scored]
print(f"  {name}: median |CBF error| {np.median(np.abs(relative)) * 100:.2f} % (signed "
      f"{np.median(relative) * 100:+.2f} %), median |ATT error| "
      f"{np.median(np.abs(att - d.true_att[scored])):.3f} s")
