# The Rust workspace built with crane: one build of every dependency
# (`buildDepsOnly`), shared by each binary's package and by the clippy, fmt
# and test checks. The sources are filtered to what Cargo reads, so editing
# Nix files, docs or tests/ rebuilds no Rust.
{
  pkgs,
  crane,
  root,
}:
let
  inherit (pkgs) lib;
  craneLib = crane.mkLib pkgs;

  # Cargo manifests, the lock file, .cargo/config.toml and every .rs file,
  # components.toml (cim-deploy embeds it) and the templates of `cargo xtask
  # new-component` (xtask embeds them).
  cargoSources = lib.fileset.unions [
    (craneLib.fileset.commonCargoSources root)
    (root + "/components.toml")
    (root + "/xtask/templates")
  ];
  src = lib.fileset.toSource {
    inherit root;
    fileset = cargoSources;
  };

  # The tests also read their data (golden vectors, scripts) from crates/,
  # and cim-deploy's the NATS configuration the modules render.
  testSrc = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      cargoSources
      (root + "/crates")
      (root + "/nix/eval/rendered")
    ];
  };

  fmtSrc = lib.fileset.toSource {
    inherit root;
    fileset = lib.fileset.unions [
      cargoSources
      (root + "/rustfmt.toml")
    ];
  };

  commonArgs = {
    inherit src;
    pname = "cim-workspace";
    version = (lib.importTOML (root + "/Cargo.toml")).workspace.package.version;
    strictDeps = true;
    # The tests start real nats-servers; so may the CLI's embedded mode.
    CIM_NATS_SERVER = "${pkgs.nats-server}/bin/nats-server";
  };

  cargoArtifacts = craneLib.buildDepsOnly commonArgs;

  # One binary of one workspace crate.
  binary =
    {
      crate,
      bin,
      description,
      extra ? { },
    }:
    craneLib.buildPackage (
      commonArgs
      // {
        inherit cargoArtifacts;
        pname = bin;
        cargoExtraArgs = "--locked --package ${crate} --bin ${bin}";
        # The workspace's tests run once, in checks.tests.
        doCheck = false;
        meta = {
          inherit description;
          mainProgram = bin;
          license = with lib.licenses; [
            mit
            asl20
          ];
          platforms = lib.platforms.linux;
        };
      }
      // extra
    );

  packages = {
    cim = binary {
      crate = "cim-cli";
      bin = "cim";
      description = "CIM operator CLI: events, verification, the MerkleDAG, objects, CAR export/import, status";
      # `cim` runs an embedded nats-server when none is configured: the
      # pinned one, unless CIM_NATS_SERVER says otherwise.
      extra = {
        nativeBuildInputs = [ pkgs.makeWrapper ];
        postInstall = ''
          wrapProgram $out/bin/cim --set-default CIM_NATS_SERVER ${pkgs.nats-server}/bin/nats-server
        '';
      };
    };
  }
  # Each component of components.toml: its package's binary.
  // lib.mapAttrs' (
    _: c:
    lib.nameValuePair c.package (binary {
      crate = c.package;
      bin = c.package;
      description = "CIM ${c.title} service";
    })
  ) (lib.importTOML (root + "/components.toml")).components
  // {
    # The NATS server CIM is tested with, from the pinned nixpkgs.
    inherit (pkgs) nats-server;
    # The tests' NATS client (tests/probe).
    cim-nats-probe = pkgs.writers.writePython3Bin "cim-nats-probe" {
      libraries = [ pkgs.python3Packages.nats-py ];
      flakeIgnore = [ "E501" ];
    } (builtins.readFile (root + "/tests/probe/cim_nats_probe.py"));
  };

  checks = {
    clippy = craneLib.cargoClippy (
      commonArgs
      // {
        inherit cargoArtifacts;
        cargoClippyExtraArgs = "--all-targets -- --deny warnings";
      }
    );
    fmt = craneLib.cargoFmt (commonArgs // { src = fmtSrc; });
    # Every Rust test, against the pinned nats-server on loopback (allowed in
    # the build sandbox). The cross-checks against the Python and npm IPLD
    # libraries need `cargo xtask tools` (PyPI, npm): not available in the
    # sandbox, so they run in `cargo xtask test` only.
    tests = craneLib.cargoNextest (
      commonArgs
      // {
        inherit cargoArtifacts;
        src = testSrc;
        cargoNextestExtraArgs = "--workspace --no-fail-fast -E 'not test(/crosscheck/)'";
      }
    );
    doc-tests = craneLib.cargoDocTest (
      commonArgs
      // {
        inherit cargoArtifacts;
        src = testSrc;
      }
    );
  };
in
{
  inherit packages checks craneLib;
}
