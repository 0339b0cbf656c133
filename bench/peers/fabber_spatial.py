#!/usr/bin/env python3
"""BASIL's spatial mode as oxasl runs it for multi-delay PCASL (its default, spatial on), on a
perfq phantom, through an already-built fabber (bench/peers/build_fabber.sh):

  step 1  non-spatial VB, the options of fabber_aslrest.basil_options (model aslrest, ATT
          prior, 20 iterations, trial mode);
  step 2  the same options with method spatialvb, the adaptive Markov random field prior
          ("M") on ftiss by name and the default ("N") on the rest, convergence maxits, 20
          iterations, started from step 1's posterior (continue-from-mvn, passed as float32
          as oxasl passes it through a NIfTI file).

Both steps are timed as whole fabber library calls (options, data, run, outputs; fabber is
single-threaded). Scored as perfq's bench/bench_spatial.cpp: median |CBF error| (relative)
and |ATT error| over the mask's voxels with true CBF > 0; CBF = 6000 λ ftiss / (α M0) as in
fabber_aslrest.py. Also prints fabber's final spatial precision of ftiss (aK, from its log).

usage: fabber_spatial.py <phantom_root> [--t1 S] [--t1b S] [--bat S] [--batsd S]
        [--spatial-iterations N] [--spatial-only] [--core-lib PATH] [--models-lib PATH]
        [-o DIR]
env:   FABBER_CORE_LIB, FABBER_ASL_LIB (as fabber_aslrest.py)
needs: numpy, nibabel (pip)
"""
import argparse
import os
import re
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

import fabber_aslrest
import phantom_data


def spatial_options(step1, iterations):
    """oxasl's spatial step: step 1's options with its spatial-VB settings."""
    options = dict(step1)
    options.update({
        "method": "spatialvb",
        "param-spatial-priors": "N+",
        "PSP_byname1": "ftiss",
        "PSP_byname1_type": "M",
        "convergence": "maxits",
        "max-iterations": iterations,
    })
    del options["max-trials"]
    return options


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--t1", type=float, default=1.65,
                        help="tissue T1 (s): 1.65 = the phantom's physics (T1app = T1 blood)")
    parser.add_argument("--t1b", type=float, default=1.65)
    parser.add_argument("--bat", type=float, default=1.3, help="ATT prior mean (oxasl, PCASL)")
    parser.add_argument("--batsd", type=float, default=1.0, help="ATT prior SD (oxasl)")
    parser.add_argument("--spatial-iterations", type=int, default=20,
                        help="step 2's iterations (oxasl: 20)")
    parser.add_argument("--core-lib", default=os.environ.get("FABBER_CORE_LIB"))
    parser.add_argument("--models-lib", default=os.environ.get("FABBER_ASL_LIB"))
    parser.add_argument("--spatial-only", action="store_true",
                        help="also run spatialvb alone from the priors (fabber's "
                             "--method=spatialvb without the VB step before it)")
    parser.add_argument("-o", "--output", type=Path, help="write the maps of both steps here")
    args = parser.parse_args()
    if not args.core_lib or not args.models_lib:
        sys.exit("fabber_spatial.py: set FABBER_CORE_LIB and FABBER_ASL_LIB (or --core-lib, "
                 "--models-lib) to an already-built fabber (bench/peers/build_fabber.sh)")

    d = phantom_data.load(args.root)
    mask, m0 = d.mask, d.m0
    volumes, repeats = [], []
    for delay in d.delays:  # control − label, in blocks of repeats per delay (fabber's order)
        volumes += [d.asl[..., c] - d.asl[..., l] for c, l in d.pairs[delay]]
        repeats.append(len(d.pairs[delay]))
    data = np.stack(volumes, axis=-1)

    fabber = fabber_aslrest.Fabber(args.core_lib, args.models_lib, log_bytes=64 << 20)
    step1 = fabber_aslrest.basil_options([d.tau + p for p in d.delays], repeats, d.tau,
                                         args.t1, args.t1b, args.bat, args.batsd)
    step2 = spatial_options(step1, args.spatial_iterations)
    outputs = ["mean_ftiss", "mean_delttiss"]
    voxels = int(mask.sum())
    start = time.perf_counter()
    first, _ = fabber.run(step1, data, mask, outputs + ["finalMVN"])
    middle = time.perf_counter()
    second, log = fabber.run(step2, data, mask, outputs,
                             extra_data={"continue-from-mvn": first["finalMVN"]})
    end = time.perf_counter()

    scored = mask & (d.true_cbf > 0)
    valid = mask & (m0 > 0)
    scale = 6000.0 * fabber_aslrest.LAMBDA / fabber_aslrest.ALPHA

    def maps(out):
        cbf = np.zeros(mask.shape, dtype=np.float32)
        cbf[valid] = scale * out["mean_ftiss"][valid] / m0[valid]
        return cbf, np.where(mask, out["mean_delttiss"], 0.0).astype(np.float32)

    def report(name, out, seconds):
        cbf, att = maps(out)
        truth = d.true_cbf[scored]
        relative = (cbf[scored] - truth) / truth
        print(f"  {name}: {seconds:.2f} s = {voxels / seconds:.0f} voxels/s; median |CBF error| "
              f"{np.median(np.abs(relative)) * 100:.2f} % (signed "
              f"{np.median(relative) * 100:+.2f} %), median |ATT error| "
              f"{np.median(np.abs(att[scored] - d.true_att[scored])):.3f} s")
        return cbf, att

    print(f"fabber aslrest, BASIL's spatial mode (t1 {args.t1:g}, bat {args.bat:g} ± "
          f"{args.batsd:g}): {voxels} voxels, {int(scored.sum())} scored, 1 thread")
    vb = report("step 1, VB              ", first, middle - start)
    report("step 2, spatialvb alone ", second, end - middle)
    spatial = report("both steps (BASIL)      ", second, end - start)
    if args.spatial_only:
        start = time.perf_counter()
        alone, _ = fabber.run(step2, data, mask, outputs)
        report("spatialvb from the priors", alone, time.perf_counter() - start)
    ak = re.findall(r"SpatialPrior::Calculate aK 0: New aK: (\S+)", log)
    if ak:
        # aK: the precision of ftiss between neighbours; as a CBF SD at the median M0:
        sd = scale / float(np.median(m0[valid])) / np.sqrt(float(ak[-1]))
        print(f"  spatial precision of ftiss (final aK): {float(ak[-1]):.4g}, i.e. an SD "
              f"between neighbours of {sd:.3g} ml/100 g/min at the median M0")
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        for step, (cbf, att) in (("vb", vb), ("spatialvb", spatial)):
            nib.save(nib.Nifti1Image(cbf, d.affine), args.output / f"fabber_{step}_cbf.nii.gz")
            nib.save(nib.Nifti1Image(att, d.affine), args.output / f"fabber_{step}_att.nii.gz")


if __name__ == "__main__":
    main()
