#!/usr/bin/env bash
# Runs every cargo-fuzz target of fuzz/ for SECONDS each (default 300), one
# after another on one core, each on its corpus in fuzz/corpus/<target>/,
# and prints per target the executions run, the new corpus size and the
# crashes (kept in fuzz/artifacts/<target>/). See docs/fuzzing.md.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# The toolchain is stable: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass the
# nightly-only sanitizer flags. FUZZ_SANITIZER=none builds without ASan.
set -euo pipefail

seconds="${1:-300}"
shift || true
root="$(cd "$(dirname "$0")/.." && pwd)"
fuzz="$root/fuzz"
sanitizer="${FUZZ_SANITIZER:-address}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(archive protocol config)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
# -a: debug assertions and overflow checks, which turn silent wrap-arounds
# into findings.
flags=(--fuzz-dir "$fuzz" -s "$sanitizer" -a)

logs="$(mktemp -d)"
trap 'rm -rf "$logs"' EXIT
summary=()
failed=0
for t in "${targets[@]}"; do
    cargo fuzz build "${flags[@]}" "$t"
    mkdir -p "$fuzz/corpus/$t" "$fuzz/artifacts/$t"
    before=$(find "$fuzz/artifacts/$t" -type f | wc -l)
    # -jobs=1: one fuzzing process; libFuzzer then logs to fuzz-0.log in
    # the working directory.
    (cd "$logs" && cargo fuzz run "${flags[@]}" "$t" "$fuzz/corpus/$t" -- \
        -jobs=1 -workers=1 -max_total_time="$seconds" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$fuzz/artifacts/$t/" >/dev/null 2>&1) || true
    log="$logs/fuzz-0.log"
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    crashes=$(($(find "$fuzz/artifacts/$t" -type f | wc -l) - before))
    corpus=$(find "$fuzz/corpus/$t" -type f | wc -l)
    corpus_kb=$(find "$fuzz/corpus/$t" -type f -printf "%s\n" | awk "{s+=\$1} END {print int(s/1024)}")
    cp "$log" "$fuzz/artifacts/$t/last-run.log"
    if [ "$crashes" -gt 0 ]; then
        failed=1
        grep -m1 -A5 -E 'panicked|ERROR: (AddressSanitizer|libFuzzer)' "$log" || true
    fi
    summary+=("$(printf '%-9s %4ss  execs %10s  (%s/s)  corpus %5s files %6s KiB  crashes %s' \
        "$t" "$seconds" "${execs:-?}" "${rate:-?}" "$corpus" "$corpus_kb" "$crashes")")
done

printf '%s\n' "${summary[@]}"
exit "$failed"
