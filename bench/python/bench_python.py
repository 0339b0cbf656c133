#!/usr/bin/env python3
"""The Python package's cost beside the C++ calls it wraps, in one run on the same files.

Writes a multi-delay phantom (6 delays, 60 x 72 x 56 voxels of 3 mm: a whole brain, its
mask 0.24 of the grid), its mean ΔM per delay, M0 and mask; runs the C++ benchmark
perfq_bench_calls (bench/bench_calls.cpp, built with -DPERFQ_BUILD_BENCH=ON) on them; then
times the same calls from Python (medians of repeats on both sides, the CPU backend, every
thread): one
single-delay call on 2 x 2 x 2 voxels (what a call costs), the multi-delay fit of the whole
brain (perfq.fit_kinetic) and the pipeline on the series (perfq.quantify_series). Prints one
row per call: C++ time (also with glibc keeping freed memory, see below), Python time, ratios.

Usage: bench_python.py BUILD_DIR  (needs the perfq package, numpy and nibabel)
"""

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

import perfq

PCASL = {"ArterialSpinLabelingType": "PCASL", "PostLabelingDelay": 1.8,
         "LabelingDuration": 1.8, "M0Type": "Separate", "MRAcquisitionType": "3D",
         "BackgroundSuppression": False, "MagneticFieldStrength": 3}


def prepare(folder):
    """The phantom and the files perfq_bench_calls reads; returns the Python inputs."""
    import nibabel

    delays = [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]
    asl = perfq.write_phantom(os.path.join(folder, "bids"), delays=delays, repeats=2, snr=10)
    perf = os.path.dirname(asl)
    truth = os.path.join(folder, "bids", "derivatives", "truth", "sub-01", "perf")
    image = nibabel.load(asl)
    series = np.asanyarray(image.dataobj).astype(np.float32)
    with open(os.path.join(perf, "sub-01_aslcontext.tsv")) as f:
        kinds = f.read().split()[1:]
    with open(os.path.join(perf, "sub-01_asl.json")) as f:
        sidecar = json.load(f)
    plds = sidecar["PostLabelingDelay"]
    dm = []
    for pld in delays:  # control - label, averaged over the repeats of each delay
        control = [i for i, k in enumerate(kinds) if k == "control" and plds[i] == pld]
        label = [i for i, k in enumerate(kinds) if k == "label" and plds[i] == pld]
        dm.append(series[..., control].mean(axis=3) - series[..., label].mean(axis=3))
    dm = np.asfortranarray(np.stack(dm, axis=3), dtype=np.float32)
    m0 = np.asfortranarray(np.asanyarray(nibabel.load(os.path.join(perf, "sub-01_m0scan.nii.gz")).dataobj), dtype=np.float32)
    mask = np.asfortranarray(np.asanyarray(nibabel.load(os.path.join(truth, "sub-01_mask.nii.gz")).dataobj) > 0, dtype=np.uint8)
    protocol = {"ArterialSpinLabelingType": "PCASL", "PostLabelingDelay": delays,
                "LabelingDuration": sidecar["LabelingDuration"][0], "M0Type": "Separate",
                "MRAcquisitionType": "3D", "BackgroundSuppression": False,
                "MagneticFieldStrength": sidecar["MagneticFieldStrength"]}
    nibabel.save(nibabel.Nifti1Image(dm, image.affine), os.path.join(folder, "deltam.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(m0, image.affine), os.path.join(folder, "m0.nii.gz"))
    nibabel.save(nibabel.Nifti1Image(mask, image.affine), os.path.join(folder, "mask.nii.gz"))
    with open(os.path.join(folder, "asl.json"), "w") as f:
        json.dump(protocol, f)
    with open(os.path.join(folder, "series.txt"), "w") as f:
        f.write(asl + "\n")
    return asl, dm, m0, mask, protocol, image.affine


def median_seconds(call, repeats):
    call()  # warm
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    program = os.path.join(sys.argv[1], "bench", "perfq_bench_calls")
    with tempfile.TemporaryDirectory(prefix="perfq-bench-") as folder:
        asl, dm, m0, mask, protocol, affine = prepare(folder)
        def cxx_medians(extra_env):
            run = subprocess.run(
                [program, "--benchmark_format=json", "--benchmark_min_time=0.5",
                 "--benchmark_repetitions=5", "--benchmark_report_aggregates_only=true"],
                env={**os.environ, "PERFQ_BENCH_DATA": folder, **extra_env},
                capture_output=True, text=True, check=True)
            unit = {"us": 1e-6, "ms": 1e-3, "ns": 1e-9}
            return {b["run_name"]: b["real_time"] * unit[b["time_unit"]]
                    for b in json.loads(run.stdout)["benchmarks"]
                    if b.get("aggregate_name") == "median"}

        cxx = cxx_medians({})
        # The same with glibc keeping freed memory: the library allocates its output maps on
        # every call, and a C++ loop otherwise returns them to the system and faults them in
        # again each time, which a Python process's allocation history happens to avoid.
        cxx_kept = cxx_medians({"MALLOC_MMAP_THRESHOLD_": "2000000000",
                                "MALLOC_TRIM_THRESHOLD_": "2000000000"})
        tiny = np.full((2, 2, 2), 10.0, dtype=np.float32, order="F")
        python = {
            "BM_CbfTwoCubed/real_time": median_seconds(
                lambda: perfq.quantify_cbf(tiny, 1000.0, PCASL, backend="cpu"), 2000),
            "BM_FitKineticWholeBrain/real_time": median_seconds(
                lambda: perfq.fit_kinetic(dm, m0, protocol, mask=mask, affine=affine,
                                          backend="cpu", att_prior=True), 5),
            "BM_QuantifySeries/real_time": median_seconds(
                lambda: perfq.quantify_series(asl, backend="cpu", att_prior=True), 5),
        }
    voxels = int(mask.sum())
    print(f"perfq {perfq.__version__}, CPU backend, {os.cpu_count()} processors; "
          f"whole brain: {m0.size} voxels ({voxels} in the mask), 6 delays")
    print(f"{'call':<34}{'C++':>12}{'C++ kept':>12}{'Python':>12}{'ratio':>8}{'ratio kept':>12}")
    for name, label in (("BM_CbfTwoCubed/real_time", "quantify_cbf, 2x2x2 voxels"),
                        ("BM_FitKineticWholeBrain/real_time", "fit_kinetic, whole brain"),
                        ("BM_QuantifySeries/real_time", "quantify_series, whole brain")):
        c, k, p = cxx[name], cxx_kept[name], python[name]
        unit, scale = ("us", 1e6) if c < 1e-2 else ("ms", 1e3)
        print(f"{label:<34}{c * scale:>9.1f} {unit}{k * scale:>9.1f} {unit}{p * scale:>9.1f} "
              f"{unit}{p / c:>8.2f}{p / k:>12.2f}")
    print("ratio: Python / C++; kept: the C++ run with glibc keeping freed memory "
          "(MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_)")


if __name__ == "__main__":
    main()
