# The evaluation check: our NixOS modules, containers, example host and test
# suites evaluated with nixpkgs' `lib` alone, against stub declarations of
# the NixOS options they use (./nixos, mirroring nixpkgs' types) and a stub
# `pkgs` (./pkgs.nix). Run by `cargo xtask test` (xtask/src/nix.rs):
#
#   nix-instantiate --eval --strict --json nix/eval -A report --arg lib 'import <nixpkgs.lib>/lib'
#   nix-instantiate --eval --strict nix/eval -A cases.<name>   # must fail, see ./cases.nix
{ lib }:
let
  pkgs = import ./pkgs.nix { inherit lib; };
  baseModules = import ./nixos { inherit pkgs; };

  described = import ../../modules/lib/components.nix { inherit lib; };

  # The flake as the modules see it: `self.packages.<system>.<name>`.
  self.packages.${pkgs.system} = {
    cim = pkgs.runCommand "cim-0.1.0" { } "";
    cim-nats-probe = pkgs.runCommand "cim-nats-probe" { } "";
  }
  // lib.mapAttrs' (
    _: c: lib.nameValuePair c.package (pkgs.runCommand "${c.package}-0.1.0" { } "")
  ) described.components;
  cimModules = import ../../modules { inherit self; };

  evalSystem =
    modules:
    lib.evalModules {
      modules = baseModules ++ modules;
      specialArgs = { inherit baseModules; };
    };

  system = modules: (evalSystem modules).config;

  # Forces the whole system: every assertion of the host and its containers,
  # every unit's text. Returns what the check writes out.
  report =
    config:
    let
      toplevel = config.system.build.toplevel;
      containers = lib.mapAttrs (name: c: c.config) config.containers;
      componentOf =
        sys:
        lib.filterAttrs (_: c: c.enable) (lib.removeAttrs (sys.services.cim or { }) [ "host" "containers" ]);
      rendered =
        sys:
        lib.mapAttrs' (
          name: c:
          let
            binary = described.components.${name}.package;
          in
          lib.nameValuePair "${binary}.toml" {
            inherit binary;
            settings = c.configFile.settings;
            check = c.configFile.buildCommand;
          }
        ) (componentOf sys);
    in
    builtins.seq toplevel.outPath {
      warnings = toplevel.warnings;
      units = lib.mapAttrs (_: u: u.text) config.systemd.units;
      etc = lib.mapAttrs (_: e: e.source.value or e.text or null) config.environment.etc;
      containers = lib.mapAttrs (_: c: {
        units = lib.mapAttrs (_: u: u.text) c.systemd.units;
        rendered = rendered c;
      }) containers;
      rendered = rendered config;
      nats = lib.optionalAttrs config.services.cim.host.enable {
        settings = config.services.nats.settings;
        inherit (config.services.cim.host.internal.nats) credentials;
        # The module's scripts, with the programs on PATH and the files as
        # arguments: `nats-start.sh BASE OUT` (passwords in
        # $CREDENTIALS_DIRECTORY), `nats-check.sh BASE`.
        startScript = config.services.cim.host.internal.nats.startScript {
          cim = "cim";
          base = "\"$1\"";
          out = "\"$2\"";
        };
        checkScript = config.services.cim.host.internal.nats.checkScript {
          cim = "cim";
          natsServer = "nats-server";
          base = "\"$1\"";
        };
        # What the build runs: the same script on the stored file.
        checkCommand = config.services.cim.host.internal.nats.baseConfig.buildCommand or null;
        account = config.services.cim.host.account;
        cli = config.services.cim.host.internal.cli;
        names = config.services.cim.host.names;
        # tests/permission-matrix.json expanded for the host's namespace:
        # the checks the live check and tests/permissions.nix run.
        permissionMatrix = import ../../tests/permission-matrix.nix { inherit lib; } config.services.cim.host.namespace;
      };
    };

  testing = import ./testing.nix { inherit lib pkgs baseModules; };
  tests = import ../../tests {
    pkgs = pkgs // {
      testers.runNixOSTest = testing;
    };
    inherit self;
    nixosModules = cimModules;
  };

  # The visible options under services.cim, as the option docs list them.
  documented = lib.filter (o: o.visible && !o.internal) (
    lib.optionAttrSetToDocList (evalSystem [ cimModules.default ]).options.services.cim
  );
  # Those without a description: the docs would show them bare. Must be empty.
  undocumented = map (o: o.name) (lib.filter (o: o.description or null == null || o.description == "") documented);
  # flake.nix's outputs, with stand-ins for its inputs: nixpkgs (this lib,
  # the stub pkgs, nixosSystem on the stub modules) and crane (./crane.nix).
  # lib.fileset needs builtins.readFileType (Nix >= 2.14), so here it only
  # checks its arguments and gives back the root.
  flakeLib = lib // {
    fileset = {
      toSource =
        { root, fileset }:
        assert builtins.pathExists root && fileset ? _stubFileset;
        toString root;
      unions =
        sets:
        assert lib.all (set: builtins.isPath set && builtins.pathExists set || set ? _stubFileset) sets;
        {
          _stubFileset = true;
        };
      fileFilter =
        predicate: root:
        assert lib.isFunction predicate && builtins.pathExists root;
        {
          _stubFileset = true;
        };
    };
    nixosSystem = args: evalSystem args.modules;
  };
  flakePkgs =
    import ./pkgs.nix { lib = flakeLib; }
    // {
      testers.runNixOSTest = testing;
    };
  flake = (import ../../flake.nix).outputs {
    self = flake;
    nixpkgs = {
      lib = flakeLib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (_: flakePkgs);
    };
    crane.mkLib = pkgs: import ./crane.nix { inherit pkgs; };
  };
  flakeReport =
    let
      packages = flake.packages.x86_64-linux;
      # option-docs needs nixpkgs' own NixOS (eval-config.nix): not here.
      built = lib.filterAttrs (_: p: (p.kind or null) == "package") (removeAttrs packages [ "option-docs" ]);
    in
    {
      systems = lib.attrNames flake.packages;
      packages = lib.attrNames packages;
      # Every binary's package reuses one dependency build.
      sharedDeps = lib.unique (lib.mapAttrsToList (_: p: p.cargoArtifacts.outPath) built);
      binaries = lib.mapAttrs (_: p: p.args.cargoExtraArgs) built;
      checks = lib.mapAttrs (_: c: c.kind or "nixos-test") flake.checks.x86_64-linux;
      nixosModules = lib.attrNames flake.nixosModules;
      example = flake.nixosConfigurations.example.config.system.build.toplevel.outPath;
      exampleContainers = lib.attrNames flake.nixosConfigurations.example.config.containers;
      # nixosModules.containers alone (it brings services.cim.host along).
      containersAlone =
        (evalSystem [
          flake.nixosModules.containers
          {
            services.cim.host.enable = true;
            services.cim.containers = lib.genAttrs described.names (_: {
              enable = true;
            });
          }
        ]).config.system.build.toplevel.outPath;
      devShell = flake.devShells.x86_64-linux.default.outPath;
    };
in
{
  inherit system evalSystem cimModules flake;

  example = system [
    cimModules.default
    ../../nixos/example.nix
  ];

  report = {
    example = report (system [
      cimModules.default
      ../../nixos/example.nix
    ]);
    tests = lib.mapAttrs (_: test: {
      inherit (test) globalTimeout testScript;
      nodes = lib.mapAttrs (
        _: node: builtins.seq node.system.build.toplevel.outPath (lib.mapAttrs (_: c: c.path.outPath) node.containers)
      ) test.nodes;
    }) tests;
    inherit undocumented;
    optionCount = lib.length documented;
    flake = flakeReport;
  };

  cases = import ./cases.nix { inherit lib system cimModules; };
  caseNames = builtins.attrNames (import ./cases.nix { inherit lib system cimModules; });
}
