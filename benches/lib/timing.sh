# Timing helpers the bench scripts source. Commands' stderr goes to
# "$T/err" and is shown if they fail (which ends the bench).

# secs <command...>: the seconds it took (its stdout dropped).
secs() {
    local t0 t1
    t0=$(date +%s.%N)
    "$@" >/dev/null 2>"$T/err" || { cat "$T/err" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
}

# ratio <a> <b>: a / b, two decimals.
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }

# median <numbers...>, or of the numbers on stdin without arguments.
median() {
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; else cat; fi |
        sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'
}

# measure <command...>: "<wall s> <CPU s> <peak RSS MB>" of one run (CPU:
# user + system of the command and its children), from /usr/bin/time.
measure() {
    /usr/bin/time -f '%e %U %S %M' -o "$T/time" "$@" >/dev/null 2>"$T/err" ||
        { cat "$T/err" >&2; exit 1; }
    awk '{printf "%.2f %.2f %.0f\n", $1, $2 + $3, $4 / 1024}' "$T/time"
}
