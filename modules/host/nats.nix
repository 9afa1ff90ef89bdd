# NATS on the host, through nixpkgs' services.nats: JetStream flushing before
# it acknowledges, the CIM account with one user per component, and the
# users' passwords added at start, as bcrypt hashes, from files outside the
# Nix store.
#
# Why the passwords are added at start: nixpkgs renders `services.nats.settings`
# as JSON into the store, and nats-server can neither read a value from a file
# nor include a file by absolute path (includes are relative to the including
# file; tried with 2.15.1). So the store file carries the users without
# passwords, and ExecStartPre writes /run/nats/nats.conf = that file + the
# bcrypt hash of each password read through LoadCredential (`cim
# nats-config`): not even that private file holds a password in plain text.
# Because ExecStart is replaced, nixpkgs' build-time check of its own file
# never runs: this module checks the rendering at build time itself.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.cim.host;
  json = pkgs.formats.json { };

  # NATS treats an empty allow list as no restriction at all: an empty list
  # here must mean "nothing".
  allowList = subjects: if subjects == [ ] then { deny = [ ">" ]; } else { allow = subjects; };

  # A deny wins over an allow (the other components' aggregate types for a
  # component allowed any).
  natsUser = name: user: {
    user = name;
    permissions = {
      publish =
        allowList user.permissions.publish
        // lib.optionalAttrs (user.permissions.publish != [ ] && user.permissions.publishDeny != [ ]) {
          deny = user.permissions.publishDeny;
        };
      subscribe = allowList user.permissions.subscribe;
      allow_responses = user.permissions.allowResponses;
    };
  };

  credential = name: "nats-password-${name}";
  users = lib.attrNames cfg.users;

  # The one command that adds the passwords, as bcrypt hashes: `cim
  # nats-config` (crates/cim-cli, crates/cim-deploy). Functions of where the
  # programs and files are (shell words), so that nix/eval can render the
  # very same scripts for the live check (nix/eval/rendered/nats-*.sh).
  renderCommand =
    {
      cim,
      base,
      credentials,
      out,
    }:
    "${cim} nats-config ${base} --credentials ${credentials} --out ${out}";

  # NATS's ExecStartPre: the configuration it runs with (`out`), from the
  # stored one and the password files that systemd hands over with
  # LoadCredential in $CREDENTIALS_DIRECTORY.
  startScript =
    {
      cim,
      base,
      out,
    }:
    ''
      set -eu
      umask 077
      ${renderCommand {
        inherit cim base out;
        credentials = "\"$CREDENTIALS_DIRECTORY\"";
      }}
    '';

  # The build-time check: the same rendering on placeholder passwords, then
  # `nats-server -t`. nixpkgs' own check of services.nats.settings never
  # runs here, because ExecStart is replaced.
  checkScript =
    {
      cim,
      natsServer,
      base,
    }:
    ''
      set -eu
      dir=$(mktemp -d)
      for user in ${lib.escapeShellArgs users}; do
        printf 'placeholder-%s\n' "$user" > "$dir/nats-password-$user"
      done
      ${renderCommand {
        inherit cim base;
        credentials = "\"$dir\"";
        out = "\"$dir/nats.conf\"";
      }}
      ${natsServer} -t -c "$dir/nats.conf"
    '';

  # The configuration without passwords, in the store.
  unchecked = json.generate "nats-base.conf" config.services.nats.settings;
  baseConfig =
    if cfg.nats.checkConfig then
      pkgs.runCommand "nats-base-checked.conf"
        {
          nativeBuildInputs = [
            cfg.package
            cfg.nats.package
          ];
        }
        ''
          ${checkScript {
            cim = "cim";
            natsServer = "nats-server";
            base = unchecked;
          }}
          ln -s ${unchecked} $out
        ''
    else
      unchecked;

  startNats = pkgs.writeShellScript "cim-nats-config" (startScript {
    cim = "${cfg.package}/bin/cim";
    base = baseConfig;
    out = "/run/nats/nats.conf";
  });
in
{
  options.services.cim.host.nats = {
    package = lib.mkOption {
      type = lib.types.package;
      default = pkgs.nats-server;
      defaultText = lib.literalExpression "pkgs.nats-server";
      description = "nats-server, 2.12 or newer: the store relies on JetStream atomic batch publish (ADR-50).";
    };

    listenAddress = lib.mkOption {
      type = lib.types.str;
      default = "0.0.0.0";
      description = ''
        Address of the client port. All addresses by default, so that the
        containers reach it on the host side of their veth pairs, which exist
        only once they run; the firewall opens the port only on
        `openFirewallOn`.
      '';
    };

    port = lib.mkOption {
      type = lib.types.port;
      default = 4222;
      description = "Client port.";
    };

    monitorPort = lib.mkOption {
      type = lib.types.port;
      default = 8222;
      description = "HTTP monitoring port (`/healthz`, `/varz`, `/jsz`), on 127.0.0.1 only.";
    };

    syncInterval = lib.mkOption {
      type = lib.types.str;
      default = "always";
      example = "2m";
      description = ''
        JetStream `sync_interval`. `"always"` (the default): every write is
        flushed to disk before it is acknowledged, so an acknowledged event
        survives a power failure. Anything else (JetStream's own default is
        `"2m"`) acknowledges writes that may still be lost when the machine
        loses power: an explicit choice of speed over durability for this
        host, see docs/benchmarks.md and docs/spec/jetstream.md §5.
      '';
    };

    checkConfig = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = ''
        Check the NATS configuration at build time: the passwords added the
        way they are at start (on placeholders), then `nats-server -t`. Turn
        off only when the build machine cannot run `cim` and nats-server
        (cross-compiling).
      '';
    };

    openFirewallOn = lib.mkOption {
      type = lib.types.listOf lib.types.str;
      default = [ ];
      example = [ "ve-cim-ius" ];
      description = ''
        Interfaces on which the client port is opened in the firewall. The
        container module adds the host side (`ve-<container>`) of each CIM
        container.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = lib.versionAtLeast (cfg.nats.package.version or "0") "2.12";
        message = ''
          services.cim.host.nats.package is nats-server ${cfg.nats.package.version or "(unknown version)"}; CIM needs
          2.12 or newer (JetStream atomic batch publish). Older servers accept the
          stream setting and silently ignore it.
        '';
      }
    ];

    warnings = lib.optional (cfg.nats.syncInterval != "always") ''
      services.cim.host.nats.syncInterval = "${cfg.nats.syncInterval}": JetStream acknowledges
      events before they are on disk, so a power failure can lose acknowledged events.
    '';

    services.nats = {
      enable = true;
      jetstream = true;
      port = cfg.nats.port;
      settings = {
        host = cfg.nats.listenAddress;
        http = "127.0.0.1:${toString cfg.nats.monitorPort}";
        jetstream.sync_interval = cfg.nats.syncInterval;
        accounts.${cfg.account} = {
          jetstream = "enabled";
          users = lib.mapAttrsToList natsUser cfg.users;
        };
      };
    };

    systemd.services.nats = {
      wants = lib.optional cfg.secrets.generate "cim-secrets.service";
      after = lib.optional cfg.secrets.generate "cim-secrets.service";
      serviceConfig = {
        LoadCredential = lib.mapAttrsToList (name: user: "${credential name}:${user.passwordFile}") cfg.users;
        RuntimeDirectory = "nats";
        RuntimeDirectoryMode = "0700";
        ExecStartPre = [ startNats ];
        ExecStart = lib.mkForce "${cfg.nats.package}/bin/nats-server -c /run/nats/nats.conf";
      };
    };

    networking.firewall.interfaces = lib.genAttrs cfg.nats.openFirewallOn (_: {
      allowedTCPPorts = [ cfg.nats.port ];
    });

    # For nix/eval and the tests: the pieces of the rendered NATS configuration.
    services.cim.host.internal.nats = {
      inherit
        baseConfig
        renderCommand
        startScript
        checkScript
        ;
      credentials = lib.mapAttrs (name: user: user.passwordFile) cfg.users;
    };
  };

  options.services.cim.host.internal.nats = lib.mkOption {
    type = lib.types.attrsOf lib.types.unspecified;
    internal = true;
    default = { };
    description = "Internal: the NATS configuration's commands and inputs, for the evaluation check.";
  };
}
