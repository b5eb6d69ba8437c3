#!/bin/sh
# run-fuzz.sh BUILD_DIR SECONDS [JOBS] - run every fuzz_* target in
# BUILD_DIR/tests/fuzz for SECONDS each, JOBS at a time (default: FUZZ_JOBS or
# 2; each target gets its full SECONDS of wall time either way), starting from
# its seed corpus (BUILD_DIR/fuzz-corpus/<name>, generated into the build
# tree; nothing generated is committed). Crashes are written to
# BUILD_DIR/fuzz-artifacts/ and fail the run.
set -eu
build=$1; secs=$2; jobs=${3:-${FUZZ_JOBS:-2}}
dir="$build/tests/fuzz"
art="$build/fuzz-artifacts"
mkdir -p "$art"

run_one() {
  f=$1
  name=$(basename "$f")
  corpus="$build/fuzz-corpus/$name"
  mkdir -p "$corpus"
  # Seed corpus: the target writes its own seeds when asked (PL_FUZZ_WRITE_SEEDS).
  PL_FUZZ_WRITE_SEEDS="$corpus" "$f" -runs=0 >/dev/null 2>&1 || true
  if "$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$art/$name-" \
        -rss_limit_mb=2048 -timeout=10 "$corpus" 2>"$art/$name.log"; then
    echo ok > "$art/$name.status"
  else
    echo failed > "$art/$name.status"
  fi
}

targets=""
for f in "$dir"/fuzz_*; do
  [ -x "$f" ] && targets="$targets $f"
done
[ -n "$targets" ] || { echo "fuzz: no targets in $dir"; exit 1; }

n=0
for f in $targets; do
  echo "fuzz: $(basename "$f") for ${secs}s"
  rm -f "$art/$(basename "$f").status"
  run_one "$f" &
  n=$((n + 1))
  if [ "$n" -ge "$jobs" ]; then wait; n=0; fi
done
wait

fail=0
for f in $targets; do
  name=$(basename "$f")
  if [ "$(cat "$art/$name.status" 2>/dev/null)" != ok ]; then
    tail -n 40 "$art/$name.log"
    echo "fuzz: $name FAILED (artifacts in $art)"
    fail=1
  else
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$art/$name.log" | sed "s/^/  $name /"
  fi
done
exit $fail
