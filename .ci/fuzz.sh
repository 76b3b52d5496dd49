#!/usr/bin/env bash
# Runs every fuzz target of the given packages (each `func FuzzXxx` of their
# *_test.go files), one after the other, for FUZZTIME each, and stops at the
# first failure with the failing input and the command that reproduces it.
#
#   .ci/fuzz.sh FUZZTIME [PACKAGE PATTERN...]     (default: the whole workspace)
#
# `make fuzz` (FUZZTIME) and `make fuzz-ci` (FUZZTIME_CI, run by .ci/run) use it.
# The seed corpus of a target lives in <package>/testdata/fuzz/<FuzzName>/ and
# also runs as ordinary tests in `make test`. A new failing input is written
# next to the seeds; once the bug is fixed, commit it there as a regression
# seed. Each package's instrumented test binary is built once and runs each of
# its targets, with the corpus cache `go test -fuzz` uses.
#
# FUZZ_INSTRUMENT says which packages get the coverage instrumentation that
# guides the fuzzer: "all" (the default) is what go test -fuzz does; "module"
# instruments this workspace's packages only, so that the dependencies come
# from the ordinary build cache (make test's go vet fills it) instead of an
# instrumented build of all ~800 of them, which on a fresh machine takes far
# longer than a brief fuzz run.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${1:?usage: .ci/fuzz.sh FUZZTIME [PACKAGE PATTERN...]}
shift
[ $# -gt 0 ] || set -- github.com/propalpes/companias/...
GO=${GO:-go}
cache="$("$GO" env GOCACHE)/fuzz"
case ${FUZZ_INSTRUMENT:-all} in
all) instrument=(-fuzz .) ;;
module) instrument=(-gcflags "github.com/propalpes/companias/...=-d=libfuzzer") ;;
*)
  echo "fuzz: FUZZ_INSTRUMENT must be all or module, not $FUZZ_INSTRUMENT" >&2
  exit 2
  ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log=$work/log
start=$SECONDS
total=0

# fail reports the failure of target $1 of package $2 (in directory $3).
fail() {
  local name=$1 pkg=$2 dir=$3 input
  echo
  echo "FAIL: fuzz target $name of $pkg"
  input=$(sed -nE "s#.*Failing input written to (testdata/fuzz/${name}/[^ ]+).*#\\1#p" "$log" | tail -n 1)
  if [ -n "$input" ]; then
    echo "failing input: ${dir#"$PWD"/}/$input"
    sed 's/^/    /' "$dir/$input"
    echo "reproduce:     $GO test -run '^${name}\$/^$(basename "$input")\$' $pkg"
    echo "Fix the bug, then commit the input as a regression seed."
  else
    echo "no input was written (a failing seed of testdata/fuzz/$name, or see the output above)"
    echo "reproduce:     $GO test -run '^${name}\$' $pkg"
  fi
  exit 1
}

while read -r pkg dir; do
  names=()
  for f in "$dir"/*_test.go; do
    [ -e "$f" ] || continue
    while read -r name; do names+=("$name"); done < <(sed -nE 's/^func (Fuzz[A-Za-z0-9_]*)\(.*/\1/p' "$f")
  done
  [ ${#names[@]} -gt 0 ] || continue
  bin=$work/fuzz.test
  "$GO" test -c "${instrument[@]}" -o "$bin" "$pkg" </dev/null
  for name in "${names[@]}"; do
    total=$((total + 1))
    for _ in 1 2 3; do
      echo "== $name ($pkg) for $fuzztime"
      if (cd "$dir" && "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$fuzztime" \
        -test.fuzzcachedir "$cache/$pkg" </dev/null) 2>&1 | tee "$log"; then
        continue 2
      fi
      # Go 1.26's fuzzing coordinator can fail a target with a bare "context
      # deadline exceeded" when -fuzztime ends (go.dev/issue/75804, fixed in
      # Go 1.27): no input is written and nothing failed. Run it again.
      if grep -q "Failing input written to" "$log" ||
        ! grep -A1 -- "^--- FAIL: ${name} (" "$log" | grep -qx '    context deadline exceeded'; then
        break
      fi
      echo "== $name: the fuzzing coordinator's own deadline (go.dev/issue/75804), no failing input; again"
    done
    fail "$name" "$pkg" "$dir"
  done
done < <("$GO" list -f '{{.ImportPath}} {{.Dir}}' "$@")

if [ "$total" -eq 0 ]; then
  echo "fuzz: no fuzz targets in $*" >&2
  exit 1
fi
echo "== $total fuzz targets, $fuzztime each, in $((SECONDS - start))s"
