# The NixOS modules, as the flake exports them (`nixosModules`): `host`, one
# per component of components.toml (`services.cim.<name>`), `containers`,
# and `default` with all of them.
#
# `self` is the flake: it gives each module's `package` its default. Without
# it (importing this file outside the flake) set services.cim.*.package.
#
# Each module has a `key`, so that importing it twice (`containers` imports
# `host`, and `default` both) declares its options once.
{
  self ? null,
}:
let
  # components.toml needs only builtins here (lib is for checking and
  # permissions, evaluated inside the modules).
  described = (builtins.fromTOML (builtins.readFile ../components.toml)).components;

  # Adds `services.cim.<option>.package = self.packages.<system>.<package>`
  # as a default to `module`.
  withPackage =
    option: package: module:
    {
      key = "cim#${option}";
      imports = [
        module
        (
          { lib, pkgs, ... }:
          {
            config = lib.optionalAttrs (self != null) {
              services.cim.${option}.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.${package};
            };
          }
        )
      ];
    };

  # services.cim.<name> for each component: the same builder, its facts
  # from components.toml.
  components = builtins.mapAttrs (
    name: c: withPackage name c.package (import ./lib/component.nix { inherit name; })
  ) described;

  host = withPackage "host" "cim" ./host;

  containers = {
    key = "cim#containers";
    imports = [
      host
      (import ../containers { inherit components; })
    ];
  };
in
components
// {
  inherit host containers;
  default = {
    key = "cim#default";
    imports = [
      host
      containers
    ]
    ++ builtins.attrValues components;
  };
}
