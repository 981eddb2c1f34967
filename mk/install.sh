#!/bin/sh
# make install: the binary, the static library, public headers with a pkg-config file, and the
# run-time data (class names, real digits and photos, shipped models) under PREFIX/share/nasdet.
set -eu
destdir=$1 prefix=$2 version=$3 bin=$4 lib=$5 headers=$6
root="$destdir$prefix"
install -d "$root/bin" "$root/lib/pkgconfig" "$root/include/nasdet" "$root/share/nasdet"
install -m 755 "$bin" "$root/bin/nasdet"
install -m 644 "$lib" "$root/lib/libnasdet.a"
for h in $headers; do
  install -d "$root/include/nasdet/$(dirname "$h")"
  install -m 644 "$h" "$root/include/nasdet/$h"
done
for d in data models; do
  [ -d "demos/$d" ] && cp -R "demos/$d" "$root/share/nasdet/"
done
cat > "$root/lib/pkgconfig/nasdet.pc" <<PC
prefix=$prefix
includedir=\${prefix}/include/nasdet
libdir=\${prefix}/lib

Name: nasdet
Description: NASNet search, backbones, Faster R-CNN detector and COCO evaluation
Version: $version
Cflags: -I\${includedir} -fopenmp
Libs: -L\${libdir} -lnasdet -fopenmp
Libs.private: -L/usr/lib/x86_64-linux-gnu/openblas-openmp -lopenblas -lcjson -lopencv_imgcodecs -lopencv_imgproc -lopencv_core -lstdc++ -lpthread -lm
PC
echo "installed nasdet $version under $root"
