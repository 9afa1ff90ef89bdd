# NATS on the host, through nixpkgs' services.nats: JetStream flushing before
# it acknowledges, the CIM account with one user per component, and the
# users' passwords added at start from files outside the Nix store.
#
# Why the passwords are added at start: nixpkgs renders `services.nats.settings`
# as JSON into the store, and nats-server can neither read a value from a file
# nor include a file by absolute path (includes are relative to the including
# file; tried with 2.15.1). So the store file carries the users without
# passwords (and is still checked at build time by nixpkgs' `validateConfig`),
# and ExecStartPre writes /run/nats/nats.conf = that file + the passwords
# read through LoadCredential, with jq.
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

  natsUser = name: user: {
    user = name;
    permissions = {
      publish = allowList user.permissions.publish;
      subscribe = allowList user.permissions.subscribe;
      allow_responses = user.permissions.allowResponses;
    };
  };

  credential = name: "nats-password-${name}";

  # Adds each user's password (trimmed, like cim-runtime does) from
  # --rawfile pw_<user>. Kept as one string so that nix/eval can hand the
  # very same filter to jq in the live check.
  passwordFilter = ''
    .accounts[$account].users |= map(
      . as $u
      | ($ARGS.named["pw_" + $u.user] // error("no password file for NATS user " + $u.user))
      | gsub("^\\s+|\\s+$"; "") as $password
      | if $password == "" then error("the password file of NATS user " + $u.user + " is empty") else $u + { password: $password } end
    )
  '';

  baseConfig = json.generate "nats-base.conf" config.services.nats.settings;

  renderConfig = pkgs.writeShellScript "cim-nats-config" ''
    set -eu
    umask 077
    ${pkgs.jq}/bin/jq \
      --arg account ${lib.escapeShellArg cfg.account} \
      ${lib.concatMapStringsSep " \\\n  " (
        name: ''--rawfile ${lib.escapeShellArg "pw_${name}"} "$CREDENTIALS_DIRECTORY/${credential name}"''
      ) (lib.attrNames cfg.users)} \
      ${lib.escapeShellArg passwordFilter} ${baseConfig} > /run/nats/nats.conf.tmp
    mv /run/nats/nats.conf.tmp /run/nats/nats.conf
  '';
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
        ExecStartPre = [ renderConfig ];
        ExecStart = lib.mkForce "${cfg.nats.package}/bin/nats-server -c /run/nats/nats.conf";
      };
    };

    networking.firewall.interfaces = lib.genAttrs cfg.nats.openFirewallOn (_: {
      allowedTCPPorts = [ cfg.nats.port ];
    });

    # For nix/eval and the tests: the pieces of the rendered NATS configuration.
    services.cim.host.internal.nats = {
      inherit passwordFilter baseConfig;
      credentials = lib.mapAttrs (name: user: user.passwordFile) cfg.users;
    };
  };

  options.services.cim.host.internal.nats = lib.mkOption {
    type = lib.types.attrsOf lib.types.unspecified;
    internal = true;
    default = { };
    description = "Internal: the NATS password filter and inputs, for the evaluation check.";
  };
}
