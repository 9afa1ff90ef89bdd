# A stand-in for nixpkgs' `pkgs`, for evaluating our modules with nixpkgs'
# `lib` alone (nixpkgs itself cannot be downloaded where this runs).
#
# Derivations are inert attribute sets with a fake store path; builders keep
# their inputs (`value` of a format's generate, `text` of a script,
# `buildCommand` and `passthru` of runCommand) so the check can read what our
# modules would build. `pkgs.formats.{json,toml}` types are declared the way
# pkgs/pkgs-lib/formats.nix declares them, because those types are what
# reject ill-typed settings.
{ lib }:
let
  inherit (lib) types;

  # Like a real derivation, the store path depends on every input, so that
  # asking for a system's path evaluates (and type-checks) all of it.
  # And like nixpkgs' check-meta.nix (with its default config), a package
  # marked insecure or broken refuses to evaluate: using its path throws.
  fakeDrv =
    name: attrs:
    let
      meta = attrs.meta or { };
      issues = meta.knownVulnerabilities or [ ];
      refused =
        if issues != [ ] then
          "Package ‘${name}’ is marked as insecure, refusing to evaluate.\n\nKnown issues:\n${
            lib.concatMapStrings (issue: " - ${issue}\n") issues
          }"
        else if meta.broken or false then
          "Package ‘${name}’ is marked as broken, refusing to evaluate."
        else
          null;
      path = "${builtins.storeDir}/${
        builtins.substring 0 32 (builtins.hashString "sha256" (name + builtins.toJSON attrs))
      }-${name}";
    in
    {
      type = "derivation";
      inherit name;
      outPath = if refused == null then path else throw refused;
    }
    // attrs;

  package =
    pname: version:
    fakeDrv "${pname}-${version}" {
      inherit pname version;
      meta.mainProgram = pname;
    };

  # A package nixpkgs marks insecure (meta.knownVulnerabilities).
  insecure =
    pname: version: issues:
    fakeDrv "${pname}-${version}" {
      inherit pname version;
      meta = {
        mainProgram = pname;
        knownVulnerabilities = issues;
      };
    };

  # formats.nix: JSON values may be null; TOML values may not.
  jsonValue =
    types.nullOr (
      types.oneOf [
        types.bool
        types.int
        types.float
        types.str
        types.path
        (types.attrsOf jsonValue)
        (types.listOf jsonValue)
      ]
    )
    // {
      description = "JSON value";
    };
  tomlValue =
    types.oneOf [
      types.bool
      types.int
      types.float
      types.str
      types.path
      (types.attrsOf tomlValue)
      (types.listOf tomlValue)
    ]
    // {
      description = "TOML value";
    };

  format = kind: type: {
    inherit type;
    generate =
      name: value:
      fakeDrv name {
        inherit value;
        format = kind;
      };
  };
in
rec {
  inherit lib;
  system = "x86_64-linux";
  stdenv.hostPlatform.system = system;
  path = builtins.toPath "/nixpkgs-stub";

  formats = {
    json = { }: format "json" jsonValue;
    toml = { }: format "toml" tomlValue;
  };

  runCommand =
    name: env: buildCommand:
    fakeDrv name ({ inherit buildCommand; } // (env.passthru or { }) // removeAttrs env [ "passthru" ]);
  writeText = name: text: fakeDrv name { inherit text; };
  writeShellScript = name: text: fakeDrv name { inherit text; };
  writeShellScriptBin =
    name: text:
    fakeDrv name {
      inherit text;
      meta.mainProgram = name;
    };
  writers.writePython3Bin =
    name: args: text:
    fakeDrv name {
      inherit text;
      libraries = args.libraries or [ ];
    };

  # Programs our modules and tests name. The version matters for nats-server
  # (the host module asserts >= 2.12).
  nats-server = package "nats-server" "2.12.8";
  jq = package "jq" "1.8.1";
  curl = package "curl" "8.14.1";
  coreutils = package "coreutils" "9.7";
  python3 = package "python3" "3.13.5";
  python3Packages.nats-py = package "python3.13-nats-py" "2.11.0";
  # For the flake's packages and dev shell.
  makeWrapper = package "make-wrapper" "0";
  cargo-nextest = package "cargo-nextest" "0.9.100";
  # Node.js: the release's default, and 20, which nixos-26.05 marks insecure
  # (end of life 2026-04-30), so that using it fails here as it does there.
  nodejs = package "nodejs" "22.21.1";
  nodejs_20 = insecure "nodejs" "20.19.5" [
    "Node.js 20.x reaches its end of life on 2026-04-30 and is no longer supported."
  ];
  nixfmt-rfc-style = package "nixfmt" "1.0.0";
  nix-tree = package "nix-tree" "0.6.3";

  testers.runNixOSTest = throw "pkgs.testers.runNixOSTest is replaced by nix/eval/testing.nix in the evaluation check";
}
