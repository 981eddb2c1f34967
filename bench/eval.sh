#!/bin/sh
# make bench-eval: `nasdet eval` on a COCO val2017-sized synthetic pair (bbox) and a smaller
# mask pair (segm). The pairs are generated once with a fixed seed by bench_eval and cached
# under build/bench-data/. Each run is timed 3 times; medians are printed. Figures only.
# $BENCH_BIN is build/.../bench_eval, $NASDET_BIN the CLI (both set by the Makefile).
set -eu
DATA=${NASDET_BENCH_DATA:-build/bench-data}
GEN_VERSION=1   # bump when bench_eval's generator changes, to regenerate the cache

pair() { # kind dir images
    if [ ! -f "$2/gt.json" ] || [ ! -f "$2/dt.json" ] || [ "$(cat "$2/version" 2>/dev/null)" != "$GEN_VERSION" ]; then
        "$BENCH_BIN" "gen-$1" "$2" "$3"
        echo "$GEN_VERSION" > "$2/version"
    fi
}

now() { date +%s.%N; }

# run IOU_TYPE DIR: three runs; prints medians of wall, load, evaluate, accumulate, peak RSS
run() {
    out=$(mktemp)
    for i in 1 2 3; do
        t0=$(now)
        if [ -x /usr/bin/time ]; then
            /usr/bin/time -f 'cpu %U %S' -o "$out.cpu" \
                "$NASDET_BIN" eval --gt "$2/gt.json" --dt "$2/dt.json" --iou-type "$1" --timing 2>"$out.err" >"$out.txt"
        else
            echo "cpu 0 0" >"$out.cpu"
            "$NASDET_BIN" eval --gt "$2/gt.json" --dt "$2/dt.json" --iou-type "$1" --timing 2>"$out.err" >"$out.txt"
        fi
        t1=$(now)
        line=$(grep '^timing:' "$out.err")
        cpu=$(grep '^cpu' "$out.cpu")
        # timing: load_gt X s  load_dt X s  evaluate X s  accumulate X s  peak_rss X MB
        echo "$t0 $t1 $line $cpu" |
            awk '{ printf "%.3f %.3f %.3f %.3f %.1f %.2f\n", $2 - $1, $5 + $8, $11, $14, $17, $20 + $21 }' >>"$out"
    done
    summary=$(head -1 "$out.txt")
    med() { sort -n | sed -n 2p; }
    wall=$(cut -d' ' -f1 "$out" | med); load=$(cut -d' ' -f2 "$out" | med)
    ev=$(cut -d' ' -f3 "$out" | med); acc=$(cut -d' ' -f4 "$out" | med); rss=$(cut -d' ' -f5 "$out" | med)
    cpu=$(cut -d' ' -f6 "$out" | med)
    rm -f "$out" "$out.err" "$out.txt" "$out.cpu"
    printf '%s\n' "$summary"
    printf '| %-13s | %10s |\n' "load (GT+res)" "$load s"
    printf '| %-13s | %10s |\n' "evaluate" "$ev s"
    printf '| %-13s | %10s |\n' "accumulate" "$acc s"
    printf '| %-13s | %10s |\n' "whole process" "$wall s"
    printf '| %-13s | %10s |\n' "peak memory" "$rss MB"
    printf '| %-13s | %10s |\n' "CPU user+sys" "$cpu s"
}

threads=$(nproc 2>/dev/null || echo "?")
echo "== nasdet eval, bbox: 5000 images, ~36,800 GT (1% crowd), 80 categories, 500,000 detections"
echo "   (median of 3 runs, $threads cores, load average now: $(cut -d' ' -f1 /proc/loadavg))"
pair bbox "$DATA/eval-bbox" 5000
run bbox "$DATA/eval-bbox"
echo
echo "   References, measured earlier on a 2-core machine of this kind (pycocotools cannot run"
echo "   here; see the project brief's coco/README.md), same pair size, median of 3:"
echo "   | phase         | pycocotools | faster_coco_eval 1.7.1 |"
echo "   | load GT       | 0.63 s      | 0.63 s                 |"
echo "   | loadRes       | 4.7 s       | 5.1 s                  |"
echo "   | evaluate      | 36.1 s      | 10.4 s (+accumulate)   |"
echo "   | accumulate    | 11.8 s      | included               |"
echo "   | whole process | 59.5 s      | 19.2 s                 |"
echo "   | peak memory   | 2.06 GB     | 1.26 GB                |"
echo
echo "== nasdet eval, segm: 1000 images, polygon GT, 100,000 compressed-RLE detections"
pair segm "$DATA/eval-segm" 1000
run segm "$DATA/eval-segm"
echo
echo "== library only (bench_eval time: load, evaluate, accumulate without process start-up)"
"$BENCH_BIN" time "$DATA/eval-bbox/gt.json" "$DATA/eval-bbox/dt.json" bbox
