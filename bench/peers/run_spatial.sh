#!/usr/bin/env bash
# The spatial prior, end to end: `perfq cbf --spatial` beside BASIL's spatial mode (fabber
# aslrest, VB then spatialvb, as oxasl runs it: bench/peers/fabber_spatial.py) on the same
# phantoms: the 3 mm whole brain (58,144 voxels), PCASL, 6 PLDs 0.25–1.5 s, one pair each,
# SNR 2, 5 and 10 per pair (seed 11: the data of bench/bench_spatial.cpp at SNR 5). perfq fits
# the phantom's own model (white paper: T1app = T1 blood, as fabber with t1 = t1b) with its
# ATT prior, on 2 threads; times are whole `perfq cbf` processes (reading, fitting, writing),
# fabber's whole library calls. Needs a built perfq (scripts/build), numpy and nibabel, and an
# already-built fabber (bench/peers/build_fabber.sh; FABBER_CORE_LIB, FABBER_ASL_LIB).
# usage: bench/peers/run_spatial.sh [build_dir] [snr...]
set -euo pipefail
cd "$(dirname "$0")/../.."
build="${1:-build}"
shift || true
snrs=("${@:-2 5 10}")
[ -n "${FABBER_CORE_LIB:-}" ] && [ -n "${FABBER_ASL_LIB:-}" ] || {
  echo "set FABBER_CORE_LIB and FABBER_ASL_LIB (bench/peers/build_fabber.sh)" >&2; exit 2; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
seconds() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.3f}')" "$@"; }
for snr in ${snrs[*]}; do
  root="$work/snr$snr"
  "$build/perfq" phantom -o "$root" --delays 0.25,0.5,0.75,1.0,1.25,1.5 --repeats 1 \
    --snr "$snr" --seed 11 > /dev/null
  asl="$root/sub-01/perf/sub-01_asl.nii.gz"
  mask="$root/derivatives/truth/sub-01/perf/sub-01_mask.nii.gz"
  echo "== SNR $snr per pair"
  "$build/perfq" cbf "$asl" -o "$work/warm" --mask "$mask" --backend cpu > /dev/null
  rm -rf "$work/warm"
  for run in "voxelwise:" "spatial:--spatial"; do
    name=${run%%:*}
    out="$work/$name$snr"
    start=$(date +%s.%N)
    "$build/perfq" cbf "$asl" -o "$out" --mask "$mask" --backend cpu --threads 2 \
      --model whitepaper --att-prior ${run#*:} > /dev/null
    end=$(date +%s.%N)
    echo "  perfq cbf $name (--att-prior, 2 threads): $(seconds "$start" "$end") s whole process"
    python3 bench/peers/score_maps.py "$root" "$out" "perfq $name"
  done
  python3 bench/peers/fabber_spatial.py "$root" --spatial-only
done
