# The NixOS modules, as the flake exports them (`nixosModules`).
#
# `self` is the flake: it gives each module's `package` its default. Without
# it (importing this file outside the flake) set services.cim.*.package.
{
  self ? null,
}:
let
  # Adds `services.cim.<option>.package = self.packages.<system>.<package>`
  # as a default to `module`.
  withPackage =
    option: package: module:
    {
      lib,
      pkgs,
      ...
    }:
    {
      imports = [ module ];
      config = lib.optionalAttrs (self != null) {
        services.cim.${option}.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.${package};
      };
    };

  registry = withPackage "registry" "cim-registry" ./registry.nix;
  ius = withPackage "ius" "cim-ius" ./ius.nix;
  host = withPackage "host" "cim" ./host;

  # Each component's module, by attribute name under services.cim: what a
  # container imports to run it.
  components = { inherit registry ius; };

  containers = import ../containers { inherit components; };
in
{
  inherit
    registry
    ius
    host
    containers
    ;
  default = {
    imports = [
      host
      registry
      ius
      containers
    ];
  };
}
