#!/usr/bin/env bash
# Runs the benchmarks and writes their figures to docs/benchmarks-latest.md
# (docs/benchmarks.md explains them and keeps the reference run).
set -euo pipefail
cd "$(dirname "$0")/.."
out=docs/benchmarks-latest.md
{
  echo "# Benchmark run $(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores, $(go version | cut -d' ' -f3)"
  echo
  echo "| driver | clients | events | connect all | spurious | RSS per idle conn | agent CPU holding idle connections | agent CPU per acked event | latency p50 / p99 | Node processing p50 / p99 | /metrics scrape p50 / max | loss |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
} > "$out"
SOAK_BENCH_OUT="$PWD/$out" go test -run '^$' -bench '^BenchmarkSoak$' -benchtime 1x -timeout 60m ./internal/bench/
echo >> "$out"
echo "## Micro-benchmarks" >> "$out"
echo '```' >> "$out"
{
  go test -run '^$' -bench . -benchmem ./internal/probe/ ./internal/probe/native/ ./internal/leak/detect/
  go test -run '^$' -bench LoopbackFloor -benchtime 3s ./internal/bench/
} 2>&1 | grep -E '^Benchmark' >> "$out"
echo '```' >> "$out"
echo "figures written to $out"
