#!/usr/bin/env python3
"""The naive peer: a per-voxel bounded scipy curve_fit loop over multi-delay PCASL data, the
way script-based pipelines (e.g. ASLPrep) fit the kinetic model. Reads a perfq phantom
dataset, fits a random subset of brain voxels, and prints voxels/s and the median absolute
CBF (relative) and ATT errors against the phantom's truth; given perfq's CBF map, prints
perfq's errors on the same voxels (ATT from the sub-01_att.nii.gz beside it).

usage: curve_fit_loop.py <phantom_root> [--voxels N] [--perfq-cbf FILE]
needs: numpy, scipy, nibabel (pip)
"""
import argparse
import time
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy.optimize import curve_fit

import phantom_data

LAMBDA, T1B, ALPHA = 0.9, 1.65, 0.85


def model(plds, cbf, att, tau):
    """White-paper-variant Buxton PCASL signal ΔM/M0 (T1app = T1 blood), CBF in ml/100g/min."""
    f = cbf / 6000.0
    t = tau + plds
    amp = 2 * ALPHA * f / LAMBDA * T1B * np.exp(-att / T1B)
    rising = amp * (1 - np.exp(-(t - att) / T1B))
    decaying = amp * np.exp(-(t - tau - att) / T1B) * (1 - np.exp(-tau / T1B))
    return np.where(t < att, 0.0, np.where(t < att + tau, rising, decaying))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--voxels", type=int, default=2000)
    parser.add_argument("--perfq-cbf", type=Path, action="append", default=[],
                        help="perfq CBF map(s) to score on the same voxels")
    args = parser.parse_args()
    d = phantom_data.load(args.root)
    asl, m0, tau, delays = d.asl, d.m0, d.tau, d.delays
    mask, true_cbf, true_att = d.mask, d.true_cbf, d.true_att
    dm = np.stack([np.mean([asl[..., c] - asl[..., l] for c, l in d.pairs[delay]], axis=0)
                   for delay in delays], axis=-1)
    index = np.argwhere(mask)
    rng = np.random.default_rng(0)
    index = index[rng.choice(len(index), size=min(args.voxels, len(index)), replace=False)]
    x = np.asarray(delays)

    start = time.perf_counter()
    estimates, arrivals = [], []
    for i, j, k in index:
        y = dm[i, j, k] / m0[i, j, k]
        try:
            p, _ = curve_fit(lambda p_, c, a: model(p_, c, a, tau), x, y, p0=(60.0, 1.2),
                             bounds=([0.0, 0.0], [200.0, 3.0]))
            estimates.append(p[0])
            arrivals.append(p[1])
        except RuntimeError:  # no convergence: counted as a failed voxel
            estimates.append(np.nan)
            arrivals.append(np.nan)
    elapsed = time.perf_counter() - start
    estimates = np.asarray(estimates)
    truth_values = np.asarray([true_cbf[i, j, k] for i, j, k in index])
    error = np.nanmedian(np.abs(estimates - truth_values) / truth_values) * 100
    truth_att = np.asarray([true_att[i, j, k] for i, j, k in index])
    att_error = np.nanmedian(np.abs(np.asarray(arrivals) - truth_att))
    print(f"curve_fit loop: {len(index)} voxels in {elapsed:.2f} s = {len(index) / elapsed:.0f} "
          f"voxels/s, median |CBF error| {error:.2f} %, median |ATT error| {att_error:.3f} s")
    for path in args.perfq_cbf:
        ours = nib.load(path).get_fdata()
        ours = np.asarray([ours[i, j, k] for i, j, k in index])
        ours_error = np.median(np.abs(ours - truth_values) / truth_values) * 100
        att_path = path.with_name(path.name.replace("_cbf.", "_att."))
        att_text = ""
        if att_path != path and att_path.exists():
            ours_att = nib.load(att_path).get_fdata()
            ours_att = np.asarray([ours_att[i, j, k] for i, j, k in index])
            att_text = f", median |ATT error| {np.median(np.abs(ours_att - truth_att)):.3f} s"
        print(f"{path.parent.name}, same voxels: median |CBF error| {ours_error:.2f} %{att_text}")


if __name__ == "__main__":
    main()
