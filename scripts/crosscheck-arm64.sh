#!/usr/bin/env bash
# Shows that linux/arm64 computes the same step digests as linux/amd64: the
# conformance vectors (generated on amd64), MLP and GPT, per step and per
# GPT operator, are checked by an arm64 test binary run under qemu-user,
# with the pure-Go kernels that arm64 uses; the GPT engine matches the
# independent reference on random configurations there; and a small GPT's
# state digests at initialisation and after three AdamW steps (int64 second
# moments included) match the hex pinned on amd64.
# Needs: apt-get install qemu-user
# The binaries are built with -tags novulkan: the Vulkan loader's purego
# makes a CGO_ENABLED=0 binary dynamically linked, which qemu-user cannot
# run without an arm64 dynamic loader; these tests need only the CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v qemu-aarch64 >/dev/null || { echo "qemu-aarch64 not found: apt-get install qemu-user" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
GOARCH=arm64 CGO_ENABLED=0 go test -tags novulkan -c -o "$tmp/conformance.arm64" ./spec/conformance
GOARCH=arm64 CGO_ENABLED=0 go test -tags novulkan -c -o "$tmp/engine.arm64" ./spec/engine
GOARCH=arm64 CGO_ENABLED=0 go test -tags novulkan -c -o "$tmp/spec.arm64" ./spec
GOARCH=arm64 CGO_ENABLED=0 go test -tags novulkan -c -o "$tmp/gptref.arm64" ./spec/gptref
(cd spec/conformance && qemu-aarch64 "$tmp/conformance.arm64" -test.run 'TestVectors|TestGPTVectors|TestGPTOps' -test.short -test.v) | grep -E '^(=== RUN|--- |ok|PASS|FAIL)'
(cd spec/engine && qemu-aarch64 "$tmp/engine.arm64" -test.run 'TestMatchesReference' -test.short) | tail -1
(cd spec && qemu-aarch64 "$tmp/spec.arm64" -test.run 'TestGPT(Init|Steps)Digest' -test.v) | grep -v '^=== '
(cd spec/gptref && qemu-aarch64 "$tmp/gptref.arm64" -test.run 'TestMatchesEngine$') | tail -1
echo "arm64: conformance vectors (MLP and GPT), engine-vs-reference (MLP and GPT) and GPT state digests pass"
