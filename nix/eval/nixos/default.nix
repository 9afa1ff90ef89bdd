# The stand-in for nixpkgs' NixOS module list: just the options our modules,
# containers, example host and test nodes use, declared as nixpkgs declares
# them (each file names its source). `pkgs` is the stub of ../pkgs.nix.
{ pkgs }:
[
  ./misc.nix
  ./systemd.nix
  ./users.nix
  ./nats.nix
  ./containers.nix
  { _module.args.pkgs = pkgs; }
]
