#!/bin/sh
# Rendered by the NixOS host module (nix/eval/rendered/README.md).
set -eu
dir=$(mktemp -d)
for user in admin hub ius pipeline registry storage; do
  printf 'placeholder-%s\n' "$user" > "$dir/nats-password-$user"
done
cim nats-config "$1" --credentials "$dir" --out "$dir/nats.conf"
nats-server -t -c "$dir/nats.conf"
