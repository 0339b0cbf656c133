#!/usr/bin/env bash
# Multi-delay PCASL, end to end, perfq beside the scipy curve_fit loop and (when it is built)
# fabber's aslrest model on the same phantoms (6 PLDs 0.25–1.5 s, τ 1.8 s, SNR 10 per pair,
# one pair per delay): the 3 mm whole brain (58,144 voxels), then the same head at 1.15 mm
# (157 × 188 × 146 voxels, 1.03 M of them brain). perfq fits every brain voxel (whole
# `perfq cbf` processes: reading, fitting, writing .nii.gz); the peers fit the same random
# 2,000 brain voxels of each (fabber, at 1.15 mm, only those: its rate does not depend on the
# count) and every method is scored on those voxels. Needs a built perfq (scripts/build) and
# numpy, scipy, nibabel (pip install numpy scipy nibabel). fabber runs only when
# FABBER_CORE_LIB and FABBER_ASL_LIB name an already-built libfabbercore_shared and
# libfabber_models_asl (bench/peers/build_fabber.sh; bench/peers/fabber_aslrest.py).
# usage: bench/peers/run.sh [build_dir]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
fabber=false
[ -n "${FABBER_CORE_LIB:-}" ] && [ -n "${FABBER_ASL_LIB:-}" ] && fabber=true

run() {  # run <dataset> <name> [perfq cbf options]: prints voxels/s
  local data=$1 name=$2; shift 2
  local mask="$work/$data/derivatives/truth/sub-01/perf/sub-01_mask.nii.gz" start end
  start=$(date +%s.%N)
  "$build/perfq" cbf "$work/$data/sub-01/perf/sub-01_asl.nii.gz" -o "$work/$name" --mask "$mask" \
    --model whitepaper --backend cpu "$@" > /dev/null
  end=$(date +%s.%N)
  python3 - "$mask" "$start" "$end" "$name" <<'PY'
import sys, nibabel as n
voxels = int((n.load(sys.argv[1]).get_fdata() > 0).sum())
s = float(sys.argv[3]) - float(sys.argv[2])
print(f"{sys.argv[4]} (perfq cbf, whole process, I/O included, CPU): {voxels} voxels in "
      f"{s:.2f} s = {voxels / s:.0f} voxels/s")
PY
}
phantom() {  # phantom <dataset> [perfq phantom options]
  local data=$1; shift
  "$build/perfq" phantom -o "$work/$data" --delays 0.25,0.5,0.75,1.0,1.25,1.5 --repeats 1 \
    --snr 10 --seed 3 "$@" > /dev/null
  run "$data" warm > /dev/null  # the file cache warmed
  rm -rf "$work/warm"
}

echo "== 3 mm whole brain"
phantom small
run small perfq-no-prior
run small perfq-att-prior --att-prior
run small perfq-att-prior-sd0.5 --att-prior --att-prior-sd 0.5
python3 bench/peers/curve_fit_loop.py "$work/small" --voxels 2000 \
  --perfq-cbf "$work/perfq-no-prior/sub-01_cbf.nii.gz" \
  --perfq-cbf "$work/perfq-att-prior/sub-01_cbf.nii.gz" \
  --perfq-cbf "$work/perfq-att-prior-sd0.5/sub-01_cbf.nii.gz"
if $fabber; then
  python3 bench/peers/fabber_aslrest.py "$work/small" --voxels 2000 -o "$work/fabber"
  # Its bias without noise: fabber's T1app keeps a fixed flow term (f 0.01 /s).
  "$build/perfq" phantom -o "$work/noise-free" --delays 0.25,0.5,0.75,1.0,1.25,1.5 \
    --repeats 1 --snr 0 --seed 3 > /dev/null
  python3 bench/peers/fabber_aslrest.py "$work/noise-free" --voxels 2000 --name "fabber aslrest, noise-free"
fi

echo "== 1.15 mm whole brain"
phantom big --voxel-size 1.15
run big perfq-1m-1-thread --threads 1
run big perfq-1m-2-threads --threads 2
python3 bench/peers/curve_fit_loop.py "$work/big" --voxels 2000 \
  --perfq-cbf "$work/perfq-1m-2-threads/sub-01_cbf.nii.gz"
if $fabber; then
  python3 bench/peers/fabber_aslrest.py "$work/big" --voxels 2000 --fit-subset
else
  echo "fabber: skipped (set FABBER_CORE_LIB and FABBER_ASL_LIB to an already-built fabber to run it)"
fi
