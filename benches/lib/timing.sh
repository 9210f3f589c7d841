# Timing helpers the bench scripts source: `secs cmd...` prints the
# seconds a command took, `median` the median of numbers on stdin.
secs() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@"
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
