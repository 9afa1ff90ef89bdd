# The nixosTest suites, by name (the flake's `checks.<system>.<name>`). Each
# runs in VMs on a NixOS machine with KVM: `nix flake check`, or one with
# `nix build .#checks.x86_64-linux.permissions -L`.
#
# Every suite gets the same global timeout and the shared node configuration
# of ./common.nix (the CIM modules, the host enabled, the probe and tools).
{
  pkgs,
  self,
  nixosModules,
}:
let
  common = import ./common.nix {
    inherit self nixosModules;
    inherit (pkgs) lib;
  };
  runTest =
    file:
    pkgs.testers.runNixOSTest {
      imports = [ (import file { inherit common; }) ];
      globalTimeout = 15 * 60;
      defaults = common.module;
    };
in
{
  host = runTest ./host.nix;
  components = runTest ./components.nix;
  full-stack = runTest ./full-stack.nix;
  permissions = runTest ./permissions.nix;
}
