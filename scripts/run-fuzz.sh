#!/bin/sh
# run-fuzz.sh BUILD_DIR SECONDS - run every fuzz_* target in BUILD_DIR/tests/fuzz for
# SECONDS each, starting from its seed corpus (tests/fuzz/corpus/<name>, generated
# into the build tree; nothing generated is committed). Crashes are written to
# BUILD_DIR/fuzz-artifacts/ and fail the run.
set -eu
build=$1; secs=$2
dir="$build/tests/fuzz"
art="$build/fuzz-artifacts"
mkdir -p "$art"
found=0
for f in "$dir"/fuzz_*; do
  [ -x "$f" ] || continue
  found=1
  name=$(basename "$f")
  corpus="$build/fuzz-corpus/$name"
  mkdir -p "$corpus"
  # Seed corpus: the target writes its own seeds when asked (PL_FUZZ_SEED_DIR).
  PL_FUZZ_WRITE_SEEDS="$corpus" "$f" -runs=0 >/dev/null 2>&1 || true
  echo "fuzz: $name for ${secs}s"
  if ! "$f" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="$art/$name-" \
        -rss_limit_mb=2048 -timeout=10 "$corpus" 2>"$art/$name.log"; then
    tail -n 40 "$art/$name.log"
    echo "fuzz: $name FAILED (artifacts in $art)"
    exit 1
  fi
  grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$art/$name.log" | sed "s/^/  $name /"
done
[ "$found" = 1 ] || { echo "fuzz: no targets in $dir"; exit 1; }
