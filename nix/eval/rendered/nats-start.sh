#!/bin/sh
# Rendered by the NixOS host module (nix/eval/rendered/README.md).
set -eu
umask 077
cim nats-config "$1" --credentials "$CREDENTIALS_DIRECTORY" --out "$2"
