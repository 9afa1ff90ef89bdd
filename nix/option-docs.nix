# The reference of every services.cim option, generated from the modules
# (`nix build .#option-docs`: Markdown), so it cannot drift from them.
{
  pkgs,
  nixosModules,
}:
let
  eval = import (pkgs.path + "/nixos/lib/eval-config.nix") {
    system = null;
    modules = [
      nixosModules.default
      { nixpkgs.hostPlatform = pkgs.stdenv.hostPlatform.system; }
    ];
  };
  optionsDoc = pkgs.nixosOptionsDoc {
    options.services.cim = eval.options.services.cim;
    # Name the files relative to the repository, not the store.
    transformOptions =
      option:
      option
      // {
        declarations = map (
          decl:
          let
            parts = builtins.match "${builtins.storeDir}/[^/]+/(.*)" (toString decl);
          in
          if parts == null then decl else builtins.head parts
        ) option.declarations;
      };
  };
in
optionsDoc.optionsCommonMark
