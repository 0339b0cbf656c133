#!/usr/bin/env bash
# Builds BASIL's engine, fabber (fabber_core + the ASL models), as the two shared libraries
# the peer scripts load through fabber's array C API (fabber_capi.h): libfabbercore_shared.so
# and libfabber_models_asl.so. A benchmark peer only: nothing of it is part of perfq.
#
# fabber needs FSL's newmat, miscmaths, utils and cprob. Without an FSL installation they come
# from the FSL-5-era copies in the public repository liangfu/bet2 (newmat itself, where FSL 6
# wraps Armadillo in newmat's API: same arithmetic in double precision, possibly another
# speed). Two small headers stand in for FSL ones: armawrap/newmat.h (→ newmat's headers) and
# newimage/newimageall.h (an empty namespace: the ASL models only name it). No source is
# patched. Image I/O (newimage) is not built: the array API does not use it.
#
# usage: bench/peers/build_fabber.sh <out_dir> <fabber_core> <fabber_models_asl> <bet2>
#   the last three: source trees, e.g.
#     git clone https://github.com/physimals/fabber_core          # used: 99c29e6b80d2
#     git clone https://github.com/physimals/fabber_models_asl    # used: fd39ca2b0b0f
#     git clone https://github.com/liangfu/bet2                   # used: adec31597748
# then: FABBER_CORE_LIB=<out_dir>/lib/libfabbercore_shared.so
#       FABBER_ASL_LIB=<out_dir>/lib/libfabber_models_asl.so
#   (bet2's folders used: newmat miscmaths utils libprob cprob fslio niftiio znzlib)
# needs: g++, gcc, libboost-dev (boost/shared_ptr.hpp). About 30 s on 2 cores.
# env: OPT (default -O2), JOBS (default: the number of processors)
set -euo pipefail
[ $# -eq 4 ] || { sed -n '2,22p' "$0"; exit 2; }
out=$(realpath -m "$1")
core=$(realpath "$2") asl=$(realpath "$3") bet=$(realpath "$4")
opt=${OPT:--O2}
jobs=${JOBS:-$(nproc)}
obj=$out/obj lib=$out/lib shim=$out/shim
rm -rf "$obj" "$lib" "$shim"
mkdir -p "$obj" "$lib" "$shim/armawrap" "$shim/newimage"

cat > "$shim/armawrap/newmat.h" <<'EOF'
// fabber includes FSL 6's armawrap/newmat.h (newmat's API over Armadillo): newmat itself here.
#ifndef PERFQ_PEERS_ARMAWRAP_NEWMAT_H
#define PERFQ_PEERS_ARMAWRAP_NEWMAT_H
#define WANT_STREAM
#define WANT_MATH
#include "newmat.h"
#include "newmatap.h"
#include "newmatio.h"
#endif
EOF
cat > "$shim/newimage/newimageall.h" <<'EOF'
// The ASL models only say `using namespace NEWIMAGE;`.
#ifndef PERFQ_PEERS_NEWIMAGEALL_H
#define PERFQ_PEERS_NEWIMAGEALL_H
namespace NEWIMAGE {}
#endif
EOF

include="-I$shim -I$(dirname "$core") -I$bet -I$bet/newmat -I$bet/libprob"
# fabber_core is included as <fabber_core/...>: its parent folder must hold it under that name.
[ "$(basename "$core")" = fabber_core ] || { echo "the fabber_core tree must be named fabber_core" >&2; exit 2; }

# compile <objdir> <flags> <sources...>: in parallel, one object per source
compile() {
  local dir=$1 flags=$2; shift 2
  mkdir -p "$dir"
  printf '%s\n' "$@" | xargs -P "$jobs" -I{} sh -c \
    'src={}; base=$(basename "${src%.*}"); case "$src" in
       *.c) gcc '"$opt"' -fPIC -DNDEBUG -w '"$include"' -c "$src" -o '"$dir"'/$base.o ;;
       *) g++ '"$opt"' -fPIC -DNDEBUG -w '"$flags $include"' -c "$src" -o '"$dir"'/$base.o ;;
     esac'
}

echo "== FSL parts (from bet2)"
# Their dynamic exception specifications are not C++17: C++11 for them.
compile "$obj/fsl/newmat" -std=gnu++11 \
  $(for f in bandmat cholesky evalue fft hholder jacobi myexcept newmat1 newmat2 newmat3 newmat4 \
      newmat5 newmat6 newmat7 newmat8 newmat9 newmatex newmatnl newmatrm solution sort submat svd \
      newfft; do echo "$bet/newmat/$f.cpp"; done)
compile "$obj/fsl/miscmaths" -std=gnu++11 \
  $(for f in miscmaths optimise miscprob kernel histogram base2z t2z f2z minimize cspline \
      sparse_matrix sparsefn rungekutta; do echo "$bet/miscmaths/$f.cc"; done) \
  "$bet/miscmaths/bfmatrix.cpp" "$bet/miscmaths/nonlin.cpp"
compile "$obj/fsl/utils" -std=gnu++11 \
  $(for f in matches functions usage check parse log time_tracer; do echo "$bet/utils/$f.cc"; done)
compile "$obj/fsl/cprob" "" \
  $(for f in bdtr btdtr chdtr drand fdtr gamma gdtr igam igami incbet incbi mtherr nbdtr ndtr \
      ndtri pdtr stdtr unity polevl const expx2 xmath; do echo "$bet/cprob/$f.c"; done)
# miscmaths includes fslio (plain files: znzlib without zlib; no image is read through it).
compile "$obj/fsl/io" "" "$bet/fslio/fslio.c" "$bet/niftiio/nifti1_io.c" "$bet/znzlib/znzlib.c"

echo "== fabber_core (its CMake target fabbercore_shared)"
compile "$obj/core" "-DGIT_SHA1='\"peer\"' -DGIT_DATE='\"peer\"'" \
  $(for f in tools rundata dist_mvn easylog setup fabber_capi rundata_array dist_gamma version \
      noisemodel fwdmodel inference factories fwdmodel_linear fwdmodel_poly convergence \
      motioncorr covariance_cache transforms priors inference_vb inference_nlls \
      noisemodel_white noisemodel_ar; do echo "$core/$f.cc"; done)
# The FSL parts go into the core library: the models library takes them from there.
g++ "$opt" -shared -o "$lib/libfabbercore_shared.so" -Wl,-soname,libfabbercore_shared.so \
  -Wl,--no-undefined "$obj"/core/*.o "$obj"/fsl/*/*.o -ldl -lm

echo "== fabber_models_asl (its CMake MODELS_SRC)"
compile "$obj/asl" "-DGIT_SHA1='\"peer\"' -DGIT_DATE='\"peer\"'" \
  $(for f in fwdmodel_asl_rest fwdmodel_asl_grase fwdmodel_asl_multiphase fwdmodel_asl_quasar \
      fwdmodel_asl_satrecov fwdmodel_asl_satrecovdualfa fwdmodel_asl_turboquasar \
      fwdmodel_asl_velocityselective fwdmodel_asl_2compartment fwdmodel_asl_multite \
      asl_models; do echo "$asl/$f.cc"; done)
g++ "$opt" -shared -o "$lib/libfabber_models_asl.so" -Wl,--no-undefined "$obj"/asl/*.o \
  -L"$lib" -lfabbercore_shared -Wl,-rpath,'$ORIGIN' -ldl -lm
ls -l "$lib"
