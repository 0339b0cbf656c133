#!/usr/bin/env bash
# Multi-delay PCASL, end to end, perfq beside the scipy curve_fit loop and (when it is built)
# fabber's aslrest model on the same phantom (6 PLDs 0.25–1.5 s, τ 1.8 s, SNR 10 per pair,
# one pair per delay). Needs a built perfq (scripts/build) and numpy, scipy, nibabel
# (pip install numpy scipy nibabel). fabber runs only when FABBER_CORE_LIB and FABBER_ASL_LIB
# name an already-built libfabbercore_shared and libfabber_models_asl (see
# bench/peers/fabber_aslrest.py); this script does not build fabber.
# usage: bench/peers/run.sh [build_dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$build/perfq" phantom -o "$work/bids" --delays 0.25,0.5,0.75,1.0,1.25,1.5 --repeats 1 \
  --snr 10 --seed 3 > /dev/null
mask="$work/bids/derivatives/truth/sub-01/perf/sub-01_mask.nii.gz"
voxels=$(python3 -c "import nibabel as n; print(int((n.load('$mask').get_fdata() > 0).sum()))")
"$build/perfq" cbf "$work/bids/sub-01/perf/sub-01_asl.nii.gz" -o "$work/warm" --mask "$mask" \
  --model whitepaper --backend cpu > /dev/null  # warm the file cache
run() {  # perfq cbf into $work/<name> with extra options; prints voxels/s
  local name=$1; shift
  local start end
  start=$(date +%s.%N)
  "$build/perfq" cbf "$work/bids/sub-01/perf/sub-01_asl.nii.gz" -o "$work/$name" --mask "$mask" \
    --model whitepaper --backend cpu "$@" > /dev/null
  end=$(date +%s.%N)
  python3 -c "v=$voxels; s=$end-$start; print(f'$name (perfq cbf, whole process, I/O included, CPU): {v} voxels in {s:.2f} s = {v/s:.0f} voxels/s')"
}
run perfq-no-prior
run perfq-att-prior --att-prior
run perfq-att-prior-sd0.5 --att-prior --att-prior-sd 0.5
python3 bench/peers/curve_fit_loop.py "$work/bids" --voxels 2000 \
  --perfq-cbf "$work/perfq-no-prior/sub-01_cbf.nii.gz" \
  --perfq-cbf "$work/perfq-att-prior/sub-01_cbf.nii.gz" \
  --perfq-cbf "$work/perfq-att-prior-sd0.5/sub-01_cbf.nii.gz"
if [ -n "${FABBER_CORE_LIB:-}" ] && [ -n "${FABBER_ASL_LIB:-}" ]; then
  python3 bench/peers/fabber_aslrest.py "$work/bids" --voxels 2000 -o "$work/fabber"
  # Its bias without noise: fabber's T1app keeps a fixed flow term (f 0.01 /s).
  "$build/perfq" phantom -o "$work/noise-free" --delays 0.25,0.5,0.75,1.0,1.25,1.5 \
    --repeats 1 --snr 0 --seed 3 > /dev/null
  python3 bench/peers/fabber_aslrest.py "$work/noise-free" --voxels 2000 --name "fabber aslrest, noise-free"
else
  echo "fabber: skipped (set FABBER_CORE_LIB and FABBER_ASL_LIB to an already-built fabber to run it)"
fi
