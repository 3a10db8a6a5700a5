#!/usr/bin/env bash
# Starts the real services with deploy/local/stack, runs the given command with their
# addresses in CAIRN_TEST_* variables, and stops them whatever the command's outcome.
set -uo pipefail
cd "$(dirname "$0")/.."
stack=deploy/local/stack
export CAIRN_STACK_DIR="${CAIRN_STACK_DIR:-$(mktemp -d /tmp/cairn-stack.XXXXXX)}"
chmod 755 "$CAIRN_STACK_DIR"
trap '"$stack" down >&2 || true' EXIT
echo "tests: starting Kafka, PostgreSQL and OpenSearch in $CAIRN_STACK_DIR" >&2
if ! settings=$("$stack" up); then
  echo "tests: the real services did not start; see the lines above" >&2
  exit 1
fi
while IFS='=' read -r name value; do
  [ -n "$name" ] && export "CAIRN_TEST_${name#CAIRN_}=$value"
done <<< "$settings"
"$@"
