# A stand-in for `pkgs.testers.runNixOSTest` (nixos/lib/testing/*.nix): the
# test module's options with nixpkgs' types (name, nodes, defaults,
# testScript as a string or a function of the nodes, globalTimeout, ...), each
# node evaluated as a NixOS system with the stub modules plus the VM options
# of nixos/modules/virtualisation/qemu-vm.nix that tests set. Nothing runs:
# the result carries each node's system (to find failed assertions) and the
# test script (which the check compiles with Python).
{
  lib,
  pkgs,
  baseModules,
}:
testModule:
let
  inherit (lib) mkOption types;

  testOptions = {
    options = {
      name = mkOption {
        type = types.str;
        description = "Test name.";
      };
      nodes = mkOption {
        type = types.lazyAttrsOf types.deferredModule;
        default = { };
        description = "The machines, as NixOS modules.";
      };
      defaults = mkOption {
        type = types.deferredModule;
        default = { };
        description = "A module every node imports.";
      };
      testScript = mkOption {
        type = types.either types.str (types.functionTo types.str);
        description = "Python test script.";
      };
      globalTimeout = mkOption {
        type = types.int;
        default = 60 * 60;
        description = "Seconds before the whole test is stopped.";
      };
      skipLint = mkOption {
        type = types.bool;
        default = false;
        description = "Skip the script's lint.";
      };
      skipTypeCheck = mkOption {
        type = types.bool;
        default = false;
        description = "Skip the script's type check.";
      };
      extraPythonPackages = mkOption {
        type = types.functionTo (types.listOf types.package);
        default = _: [ ];
        description = "Python packages for the script.";
      };
      meta = mkOption {
        type = types.attrsOf types.unspecified;
        default = { };
        description = "Metadata.";
      };
    };
  };

  vmOptions = {
    options.virtualisation = {
      memorySize = mkOption {
        type = types.ints.positive;
        default = 1024;
        description = "VM memory in MiB.";
      };
      diskSize = mkOption {
        type = types.ints.positive;
        default = 1024;
        description = "VM disk in MiB.";
      };
      cores = mkOption {
        type = types.ints.positive;
        default = 1;
        description = "VM cores.";
      };
    };
  };

  test = (lib.evalModules { modules = [ testOptions testModule ]; }).config;

  nodes = lib.mapAttrs (
    name: module:
    (lib.evalModules {
      modules = baseModules ++ [
        vmOptions
        test.defaults
        module
        { networking.hostName = lib.mkDefault name; }
      ];
      specialArgs = { inherit baseModules; };
    }).config
  ) test.nodes;
in
{
  type = "derivation";
  name = "vm-test-run-${test.name}";
  outPath = "${builtins.storeDir}/00000000000000000000000000000000-vm-test-run-${test.name}";
  inherit (test) globalTimeout;
  testName = test.name;
  inherit nodes;
  testScript = if lib.isFunction test.testScript then test.testScript { inherit nodes; } else test.testScript;
}
