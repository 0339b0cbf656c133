#!/usr/bin/env python3
"""The Bayesian peer: fabber's `aslrest` model (BASIL's engine), non-spatial variational Bayes,
run on a perfq phantom the way oxasl/BASIL runs its first fitting step for multi-delay PCASL.

Runs an already-built fabber through its array C API (fabber_capi.h, as pyfab and oxasl load
it: libfabbercore_shared and the ASL model library, numpy arrays through ctypes); this script
does not build fabber. The whole fabber call (options, data, run, outputs) is timed; fabber is
single-threaded. ftiss is calibrated as oxasl does with a voxelwise M0 (M0b = M0/λ, inversion
efficiency α, ×6000): CBF = 6000 λ ftiss / (α M0). Prints voxels/s and the median absolute
CBF (relative) and ATT errors against the phantom's truth on all brain voxels and on the same
random subset of brain voxels that curve_fit_loop.py scores (same seed, same count).

usage: fabber_aslrest.py <phantom_root> [--voxels N] [--t1 S] [-o DIR]
        [--core-lib PATH] [--models-lib PATH]
env:   FABBER_CORE_LIB (libfabbercore_shared.so), FABBER_ASL_LIB (libfabber_models_asl.so)
needs: numpy, nibabel (pip)
"""
import argparse
import ctypes
import os
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np

import phantom_data

# The phantom's physics (perfq's Physiology defaults, 3 T PCASL): the constants that turn
# fabber's ftiss into ml/100 g/min.
LAMBDA, ALPHA = 0.9, 0.85


class Fabber:
    """Minimal ctypes binding of fabber_capi.h."""

    def __init__(self, core_lib, models_lib, log_bytes=1 << 20):
        self.lib = ctypes.CDLL(str(core_lib))
        self.models_lib = str(models_lib).encode()
        self.err = ctypes.create_string_buffer(256)
        self.log = ctypes.create_string_buffer(log_bytes)
        lib, vp, cp, ui = self.lib, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint
        ints = np.ctypeslib.ndpointer(dtype=np.int32, ndim=1, flags="C_CONTIGUOUS")
        floats = np.ctypeslib.ndpointer(dtype=np.float32, ndim=1, flags="C_CONTIGUOUS")
        self.progress_type = ctypes.CFUNCTYPE(None, ctypes.c_int, ctypes.c_int)
        lib.fabber_new.argtypes, lib.fabber_new.restype = [cp], vp
        lib.fabber_load_models.argtypes = [vp, cp, cp]
        lib.fabber_set_extent.argtypes = [vp, ui, ui, ui, ints, cp]
        lib.fabber_set_opt.argtypes = [vp, cp, cp, cp]
        lib.fabber_set_data.argtypes = [vp, cp, ui, floats, cp]
        lib.fabber_get_data_size.argtypes = [vp, cp, cp]
        lib.fabber_get_data.argtypes = [vp, cp, floats, cp]
        lib.fabber_dorun.argtypes = [vp, ui, cp, cp, self.progress_type]
        lib.fabber_destroy.argtypes = [vp]

    def check(self, ret, what):
        if ret < 0:
            raise RuntimeError(f"fabber {what}: {self.err.value.decode()}\n"
                               f"{self.log.value.decode()[-4000:]}")
        return ret

    def run(self, options, data, mask, outputs, extra_data=None):
        """options: {key: str or True}; data: 4D float array (x, y, z, t); mask: 3D bool;
        extra_data: {name: array (x, y, z[, n])} set after the data (e.g. continue-from-mvn).
        Returns {output: 3D (or 4D) float32 array} and fabber's log."""
        handle = self.lib.fabber_new(self.err)
        if not handle:
            raise RuntimeError(f"fabber_new: {self.err.value.decode()}")
        try:
            self.check(self.lib.fabber_load_models(handle, self.models_lib, self.err), "models")
            for key, value in options.items():
                value = "" if value is True else str(value)  # a flag is given with no value
                self.check(self.lib.fabber_set_opt(handle, key.encode(), value.encode(),
                                                   self.err), f"option {key}")
            nx, ny, nz, nt = data.shape
            flat_mask = np.ascontiguousarray(mask.flatten(order="F"), dtype=np.int32)
            self.check(self.lib.fabber_set_extent(handle, nx, ny, nz, flat_mask, self.err),
                       "extent")
            flat = np.ascontiguousarray(data.flatten(order="F"), dtype=np.float32)
            self.check(self.lib.fabber_set_data(handle, b"data", nt, flat, self.err), "data")
            for name, array in (extra_data or {}).items():
                array = array.reshape(array.shape[:3] + (-1,))
                flat = np.ascontiguousarray(array.flatten(order="F"), dtype=np.float32)
                self.check(self.lib.fabber_set_data(handle, name.encode(), array.shape[3], flat,
                                                    self.err), f"data {name}")
            self.check(self.lib.fabber_dorun(handle, len(self.log), self.log, self.err,
                                             self.progress_type(0)), "run")
            result = {}
            for name in outputs:
                size = self.check(self.lib.fabber_get_data_size(handle, name.encode(), self.err),
                                  f"size of {name}")
                out = np.empty(nx * ny * nz * size, dtype=np.float32)
                self.check(self.lib.fabber_get_data(handle, name.encode(), out, self.err),
                           f"output {name}")
                shape = (nx, ny, nz) if size == 1 else (nx, ny, nz, size)
                result[name] = out.reshape(shape, order="F")
            return result, self.log.value.decode(errors="replace")
        finally:
            self.lib.fabber_destroy(handle)


def basil_options(tis, repeats, tau, t1, t1b, bat, batsd):
    """oxasl's first BASIL step for multi-delay PCASL (basil/multistep_fit.py: fitting_steps
    with infertiss and inferbat, no prefit with one repeat per delay), non-spatial VB."""
    options = {
        "model": "aslrest", "disp": "none", "exch": "mix", "method": "vb", "noise": "white",
        "allow-bad-voxels": True, "max-iterations": 20, "convergence": "trialmode",
        "max-trials": 10, "save-mean": True, "save-mvn": True, "save-std": True,
        "save-noise-mean": True, "save-model-fit": True,
        "tau": tau, "casl": True, "t1": t1, "t1b": t1b, "bat": bat, "batsd": batsd,
        "inctiss": True, "incbat": True, "inferbat": True, "infertiss": True,
    }
    for i, (ti, rpt) in enumerate(zip(tis, repeats), start=1):
        options[f"ti{i}"] = ti
        options[f"rpt{i}"] = rpt
    return options


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("--voxels", type=int, default=2000,
                        help="size of the scored subset shared with curve_fit_loop.py")
    parser.add_argument("--t1", type=float, default=1.65,
                        help="fabber's tissue T1 (s): 1.65 = the phantom's physics (T1app = "
                             "T1 blood, as oxasl's white-paper mode); 1.3 = oxasl's default")
    parser.add_argument("--t1b", type=float, default=1.65)
    parser.add_argument("--bat", type=float, default=1.3, help="ATT prior mean (oxasl, PCASL)")
    parser.add_argument("--batsd", type=float, default=1.0,
                        help="ATT prior SD (oxasl's default for multi-delay data)")
    parser.add_argument("--core-lib", default=os.environ.get("FABBER_CORE_LIB"))
    parser.add_argument("--models-lib", default=os.environ.get("FABBER_ASL_LIB"))
    parser.add_argument("-o", "--output", type=Path, help="write fabber's CBF and ATT here")
    parser.add_argument("--name", default="fabber aslrest")
    parser.add_argument("--fit-subset", action="store_true",
                        help="fit only the scored subset (a large dataset: fabber's rate per "
                             "voxel does not depend on how many it fits)")
    args = parser.parse_args()
    if not args.core_lib or not args.models_lib:
        sys.exit("fabber_aslrest.py: set FABBER_CORE_LIB and FABBER_ASL_LIB (or --core-lib, "
                 "--models-lib) to an already-built fabber")

    d = phantom_data.load(args.root)
    asl, m0, tau, delays = d.asl, d.m0, d.tau, d.delays
    mask, true_cbf, true_att = d.mask, d.true_cbf, d.true_att
    # Differenced data in blocks of repeats per delay (fabber's order), control − label.
    volumes, repeats = [], []
    for delay in delays:
        volumes += [asl[..., c] - asl[..., l] for c, l in d.pairs[delay]]
        repeats.append(len(d.pairs[delay]))
    data = np.stack(volumes, axis=-1)

    # The subset curve_fit_loop.py fits: same selection, same generator and seed.
    index = np.argwhere(mask)
    rng = np.random.default_rng(0)
    index = index[rng.choice(len(index), size=min(args.voxels, len(index)), replace=False)]
    subset = tuple(index.T)
    if args.fit_subset:
        mask = np.zeros_like(mask)
        mask[subset] = True

    fabber = Fabber(args.core_lib, args.models_lib)
    options = basil_options([tau + d for d in delays], repeats, tau, args.t1, args.t1b,
                            args.bat, args.batsd)
    voxels = int(mask.sum())
    start = time.perf_counter()
    out, _log = fabber.run(options, data, mask, ["mean_ftiss", "mean_delttiss"])
    elapsed = time.perf_counter() - start

    cbf = np.zeros(mask.shape, dtype=np.float32)
    valid = mask & (m0 > 0)
    cbf[valid] = 6000.0 * LAMBDA * out["mean_ftiss"][valid] / (ALPHA * m0[valid])
    att = np.where(mask, out["mean_delttiss"], 0.0).astype(np.float32)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        for name, image in (("cbf", cbf), ("att", att)):
            nib.save(nib.Nifti1Image(image, d.affine), args.output / f"fabber_{name}.nii.gz")

    def errors(index):
        t_cbf, t_att = true_cbf[index], true_att[index]
        cbf_error = np.median(np.abs(cbf[index] - t_cbf) / t_cbf) * 100
        signed = np.median((cbf[index] - t_cbf) / t_cbf) * 100
        att_error = np.median(np.abs(att[index] - t_att))
        return cbf_error, signed, att_error

    all_cbf, all_signed, all_att = errors(mask)
    sub_cbf, sub_signed, sub_att = errors(subset)
    print(f"{args.name} (t1 {args.t1:g}, bat {args.bat:g} ± {args.batsd:g}): {voxels} voxels "
          f"in {elapsed:.2f} s = {voxels / elapsed:.0f} voxels/s (1 thread, whole fabber call)")
    if not args.fit_subset:
        print(f"  all brain voxels: median |CBF error| {all_cbf:.2f} % (signed "
              f"{all_signed:+.2f} %), median |ATT error| {all_att:.3f} s")
    print(f"  same {len(index)} voxels as curve_fit: median |CBF error| {sub_cbf:.2f} % "
          f"(signed {sub_signed:+.2f} %), median |ATT error| {sub_att:.3f} s")


if __name__ == "__main__":
    main()
