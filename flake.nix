{
  description = "CIM, the Composable Information Machine: packages, NixOS modules, containers and VM tests";

  inputs = {
    # A NixOS release: the host runs it. `nix flake update` moves within it.
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
    crane.url = "github:ipetkov/crane";
  };

  outputs =
    {
      self,
      nixpkgs,
      crane,
    }:
    let
      inherit (nixpkgs) lib;
      # The components run on NixOS hosts; the VM tests need Linux too.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      rust = pkgs: import ./nix/packages.nix {
        inherit pkgs crane;
        root = ./.;
      };
    in
    {
      packages = forAllSystems (
        pkgs:
        (rust pkgs).packages
        // {
          default = self.packages.${pkgs.stdenv.hostPlatform.system}.cim;
          option-docs = import ./nix/option-docs.nix {
            inherit pkgs;
            inherit (self) nixosModules;
          };
        }
      );

      # services.cim.{host,registry,ius}, the containers, and `default` with all.
      nixosModules = import ./modules { inherit self; };

      # A host running NATS and every component in its container (nixos/example.nix).
      nixosConfigurations.example = lib.nixosSystem {
        modules = [
          self.nixosModules.default
          ./nixos/example.nix
          { nixpkgs.hostPlatform = "x86_64-linux"; }
        ];
      };

      # The nixosTest suites (tests/), and clippy, fmt and the Rust tests.
      checks = forAllSystems (
        pkgs:
        (rust pkgs).checks
        // import ./tests {
          inherit pkgs self;
          inherit (self) nixosModules;
        }
      );

      devShells = forAllSystems (pkgs: {
        default = (rust pkgs).craneLib.devShell {
          # The checks' inputs (rustc, cargo, clippy, rustfmt) and more.
          checks = (rust pkgs).checks;
          packages = [
            pkgs.nats-server
            pkgs.cargo-nextest
            pkgs.python3
            # The release's default Node (xtask/node: the npm IPLD cross-check).
            pkgs.nodejs
            pkgs.nixfmt-rfc-style
            pkgs.nix-tree
          ];
          CIM_NATS_SERVER = "${pkgs.nats-server}/bin/nats-server";
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-rfc-style);
    };
}
