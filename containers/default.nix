# The nixos-containers of the CIM components, as one NixOS module for the
# host: `services.cim.containers.<component>.enable` runs that component in
# its own container `cim-<component>` and wires it to the host's NATS. One
# container per component of components.toml, at its `address`.
#
# `components`: each component's NixOS module by name (modules/default.nix).
{ components }:
let
  described = (builtins.fromTOML (builtins.readFile ../components.toml)).components;
in
{
  imports = [
    ./network.nix
  ]
  ++ builtins.attrValues (
    builtins.mapAttrs (
      name: module:
      import ./lib.nix {
        inherit name module;
        inherit (described.${name}) user;
        localAddress = described.${name}.address;
      }
    ) components
  );
}
