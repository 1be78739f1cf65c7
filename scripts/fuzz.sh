#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each.
# Usage: scripts/fuzz.sh [PACKAGES...]   (default ./...)
# FUZZTIME (default 10s) is the time given to each target.
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-10s}
pkgs=("$@")
((${#pkgs[@]})) || pkgs=(./...)

found=0
for pkg in $(go list "${pkgs[@]}"); do
	# go test -list prints the matching names, then "ok ..." for the package.
	for target in $(go test -run='^$' -list='^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		found=$((found + 1))
		echo "fuzz: $pkg $target for $fuzztime"
		go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" "$pkg"
	done
done
echo "fuzz: $found targets run"
