# The operator's `cim` on the host, and cim-provision.service, which creates
# (or checks and adapts) the store's event stream, object bucket and names
# bucket and every component's KV bucket with their exact configuration, as
# the admin user: `cim provision` (crates/cim-deploy/src/provision.rs, the
# buckets from components.toml). Components only attach to them: their NATS
# users may not create or change streams (docs/spec/permissions.md), so they
# start after it (containers/lib.nix, modules/lib/component.nix).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.cim.host;
  format = pkgs.formats.toml { };
  hardening = import ../lib/hardening.nix;

  # docs/cli.md. `user`/`password_file` as in cim-runtime's [nats] section.
  cliConfig =
    passwordFile:
    lib.recursiveUpdate cfg.cli.settings {
      nats = {
        url = "nats://127.0.0.1:${toString cfg.nats.port}";
        user = "admin";
        password_file = passwordFile;
      };
      store.namespace = cfg.namespace;
    };

  # For the operator (root: the admin password file is root-only).
  adminConfig = format.generate "cim.toml" (cliConfig cfg.users.admin.passwordFile);
  # For the provisioning service, which reads the password through LoadCredential.
  provisionConfig = format.generate "cim-provision.toml" (cliConfig "/run/credentials/cim-provision.service/nats-password");

  cimAdmin = pkgs.writeShellScriptBin "cim-admin" ''
    exec ${cfg.package}/bin/cim --config /etc/cim/cim.toml "$@"
  '';
in
{
  options.services.cim.host.provision.enable = lib.mkOption {
    type = lib.types.bool;
    default = true;
    description = ''
      Run `cim-provision.service` after NATS starts: `cim provision` as the
      admin user creates the event stream, the object and names buckets and
      every component's KV bucket if they are missing (and checks and
      adapts them if not). The components only attach to them and start
      after it; without it, provision the store otherwise before they start.

    '';
  };

  config = lib.mkIf cfg.enable {
    environment.etc."cim/cim.toml".source = adminConfig;
    environment.systemPackages = [
      cfg.package
      cimAdmin
    ];

    systemd.services.cim-provision = lib.mkIf cfg.provision.enable {
      description = "CIM: provision the store's stream and buckets";
      wantedBy = [ "multi-user.target" ];
      requires = [ "nats.service" ];
      after = [ "nats.service" ];
      serviceConfig = hardening // {
        Type = "oneshot";
        RemainAfterExit = true;
        DynamicUser = true;
        LoadCredential = [ "nats-password:${cfg.users.admin.passwordFile}" ];
        ExecStart = "${cfg.package}/bin/cim --config ${provisionConfig} provision";
        # NATS is Type=simple: it may not listen yet on the first try.
        Restart = "on-failure";
        RestartSec = 2;
      };
      # Give up only after a minute of retries.
      startLimitIntervalSec = 60;
      startLimitBurst = 20;
    };

    services.cim.host.internal.cli = {
      admin = cliConfig cfg.users.admin.passwordFile;
      provision = cliConfig "/run/credentials/cim-provision.service/nats-password";
    };
  };

  options.services.cim.host.internal.cli = lib.mkOption {
    type = lib.types.attrsOf lib.types.unspecified;
    internal = true;
    default = { };
    description = "Internal: the CLI configurations, for the evaluation check.";
  };
}
