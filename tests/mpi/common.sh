# Shared by the MPI test scripts (sourced): small data, a tiny child setting, helpers.
set -eu
fail() { echo "FAIL: $*" >&2; exit 1; }
# One line per child: "job reward genotype", sorted by job: what must not depend on K or order.
children_key() {
  sed -E 's/"worker":[0-9]+,//; s/"seconds":[-0-9.e+]+,//' "$1/children.jsonl" |
    sed -E 's/^\{"job":([0-9]+),(.*)"reward":([-0-9.e+]+),(.*)$/\1 \3 \2\4/' | sort -n
}
make_digits() { # DIR N
  [ -f "$1/data_batch_1.bin" ] || "$NASDET_BIN" data digits-cls --out "$1" --train "$2" --test 10 >/dev/null
}
SEARCH_CHILD="--child-steps 2 --child-N 1 --child-F 4 --child-batch 16 --child-val 100 --child-val-subset 50 \
--threads 1 --batch 2 --hidden 16 --seed 7"
