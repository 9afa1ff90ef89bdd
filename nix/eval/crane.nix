# A stand-in for crane's `mkLib pkgs`, with the functions nix/packages.nix
# calls. Each returns an inert derivation that keeps its arguments, so the
# check can see what the flake asks crane to build (and that every package
# shares one dependency build).
{ pkgs }:
let
  inherit (pkgs) lib;
  drv =
    kind: args:
    pkgs.runCommand "${args.pname or "cim"}-${kind}" {
      passthru = {
        inherit kind;
        args = removeAttrs args [ "cargoArtifacts" ];
        cargoArtifacts = args.cargoArtifacts or null;
      };
    } "";
in
{
  buildDepsOnly = drv "deps";
  buildPackage =
    args:
    drv "package" args
    // {
      meta = args.meta or { };
    };
  cargoClippy = drv "clippy";
  cargoFmt = drv "fmt";
  cargoNextest = drv "nextest";
  cargoDocTest = drv "doctest";
  devShell = drv "devshell";
  # crane's file set of what Cargo reads: manifests, lock, .cargo/config, *.rs.
  fileset.commonCargoSources =
    root:
    lib.fileset.fileFilter (
      file: file.hasExt "rs" || file.name == "Cargo.toml" || file.name == "Cargo.lock" || file.name == "config.toml"
    ) root;
}
