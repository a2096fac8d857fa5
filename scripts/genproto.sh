#!/usr/bin/env bash
# Regenerates protocol/net/pb/*.pb.go from every .proto there. Needs protoc
# (Debian protobuf-compiler) and protoc-gen-go v1.36.12
# (go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12).
# With --check, generates into a temporary directory and fails if the
# committed code differs.
set -euo pipefail
cd "$(dirname "$0")/.."
out=protocol/net/pb
if [ "${1:-}" = "--check" ]; then
  out=$(mktemp -d)
  trap 'rm -rf "$out"' EXIT
fi
PATH="$(go env GOPATH)/bin:$PATH" protoc --proto_path=protocol/net/pb --go_out="$out" --go_opt=paths=source_relative protocol/net/pb/*.proto
if [ "${1:-}" = "--check" ]; then
  for f in "$out"/*.pb.go; do
    if ! cmp -s "$f" "protocol/net/pb/$(basename "$f")"; then
      echo "protocol/net/pb/$(basename "$f") is not what protoc generates from its .proto: run scripts/genproto.sh" >&2
      exit 1
    fi
  done
  echo "generated protobuf code is current"
fi
