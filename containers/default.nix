# The nixos-containers of the CIM components, as one NixOS module for the
# host: `services.cim.containers.<component>.enable` runs that component in
# its own container `cim-<component>` and wires it to the host's NATS.
#
# `components`: each component's NixOS module by name (modules/default.nix).
{ components }:
{
  imports = [
    ./network.nix
    (import ./registry.nix { module = components.registry; })
    (import ./ius.nix { module = components.ius; })
  ];
}
