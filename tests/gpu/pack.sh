#!/bin/sh
# Pack the GPU checks and bench-gpu for a GPU machine that has the CUDA toolkit but none of the
# build's Debian libraries (this workplace's device machines): one binary, OUT/nasdet_gpu
# (gpu_check, and bench_gpu as `nasdet_gpu bench`), with OpenBLAS and OpenCV's core and imgproc
# linked in statically, the few shared libraries it still needs in OUT/lib, and the demo images
# decoded to PPM in OUT/images. Run it there with GPU_PREBUILT=OUT sh tests/gpu/run.sh.
#
#   sh tests/gpu/pack.sh [OUT]     (default .gpu; build objects in build/gpu-pack)
set -eu
cd "$(dirname "$0")/../.."
out=${1:-.gpu}
B=build/gpu-pack
L=/usr/lib/x86_64-linux-gnu
make CUDA=1 BUILD=$B BIN=$B/bin -j2 $B/libnasdet.a $B/tests/gpu/gpu_check.o >/dev/null
mkdir -p "$out/lib" "$out/images" $B/pack
CPP="-I. -I/usr/include/x86_64-linux-gnu/openblas-openmp -I/usr/include/cjson -D_GNU_SOURCE -DNN_USE_CUDA -I/usr/local/cuda/include"
gcc -std=c11 -O2 -march=x86-64-v3 -fopenmp $CPP -DGPU_CHECK_MAIN=gpu_check_main -c tests/gpu/gpu_check.c -o $B/pack/gpu_check.o
gcc -std=c11 -O2 -march=x86-64-v3 -fopenmp $CPP -DBENCH_GPU_MAIN=bench_gpu_main -c bench/bench_gpu.c -o $B/pack/bench_gpu.o
gcc -std=c11 -O2 -c tests/gpu/packed_main.c -o $B/pack/packed_main.o
g++ -std=c++17 -O2 -I/usr/include/opencv4 -c tests/gpu/no_codecs.cpp -o $B/pack/no_codecs.o
g++ -fopenmp -o "$out/nasdet_gpu" $B/pack/packed_main.o $B/pack/gpu_check.o $B/pack/bench_gpu.o $B/pack/no_codecs.o \
    $B/libnasdet.a $L/libopencv_imgproc.a $L/libopencv_core.a $L/libz.a $L/libopenblas.a \
    -L/usr/local/cuda/lib64 -Wl,-rpath,/usr/local/cuda/lib64 -Wl,-rpath,'$ORIGIN/lib' -lcublas -lcudart \
    -l:libcjson.so.1 -l:libtbb.so.12 -l:libGLX.so.0 -static-libstdc++ -static-libgcc \
    -Wl,-Bstatic -lgfortran -lquadmath -Wl,-Bdynamic -lpthread -lm -ldl
strip "$out/nasdet_gpu"
# the shared libraries outside glibc, libstdc++ and CUDA
ldd "$out/nasdet_gpu" | awk '$3 ~ /^\// {print $3}' |
    grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv|libstdc\+\+|libgcc_s)\.so|/usr/local/cuda' |
    while read -r f; do
        [ "$(dirname "$(readlink -f "$f")")" = "$(readlink -f "$out/lib")" ] || cp -L "$f" "$out/lib/"
    done
/usr/bin/python3 - "$out/images" demos/images/digits-val-000001.jpg demos/images/digits-val-000003.jpg \
    demos/images/digits-val-000006.jpg demos/images/apple.jpg <<'PY'
import os, sys
from PIL import Image
for p in sys.argv[2:]:
    Image.open(p).convert("RGB").save(os.path.join(sys.argv[1], os.path.basename(p).rsplit(".", 1)[0] + ".ppm"))
PY
du -sh "$out"
