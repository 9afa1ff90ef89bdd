# services.nats as nixpkgs declares and implements it
# (nixos/modules/services/networking/nats.nix, 2025-2026): the options with
# their types and defaults, the settings it adds itself (server_name, port,
# jetstream.store_dir), and its systemd service, whose ExecStart the host
# module replaces. `validateConfig` runs `nats-server -t` at build time there;
# the live check in xtask runs the same on the rendered file here.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.services.nats;
  format = pkgs.formats.json { };
  configFile = format.generate "nats.conf" cfg.settings;
in
{
  options.services.nats = {
    enable = lib.mkEnableOption "NATS messaging system";
    user = mkOption {
      type = types.str;
      default = "nats";
      description = "User NATS runs as.";
    };
    group = mkOption {
      type = types.str;
      default = "nats";
      description = "Group NATS runs as.";
    };
    serverName = mkOption {
      type = types.str;
      default = "nats";
      description = "Server name.";
    };
    jetstream = lib.mkEnableOption "JetStream";
    port = mkOption {
      type = types.port;
      default = 4222;
      description = "Client port.";
    };
    dataDir = mkOption {
      type = types.path;
      default = "/var/lib/nats";
      description = "JetStream store directory.";
    };
    settings = mkOption {
      type = format.type;
      default = { };
      description = "nats-server configuration, rendered as JSON.";
    };
    validateConfig = mkOption {
      type = types.bool;
      default = true;
      description = "Check the configuration at build time.";
    };
  };

  config = lib.mkIf cfg.enable {
    services.nats.settings = {
      server_name = cfg.serverName;
      port = cfg.port;
      jetstream = lib.optionalAttrs cfg.jetstream { store_dir = cfg.dataDir; };
    };

    systemd.services.nats = {
      description = "NATS messaging system";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      serviceConfig = lib.mkMerge [
        (lib.mkIf (cfg.dataDir == "/var/lib/nats") {
          StateDirectory = "nats";
          StateDirectoryMode = "0750";
        })
        {
          Type = "simple";
          ExecStart = "${pkgs.nats-server}/bin/nats-server -c ${configFile}";
          ExecReload = "${pkgs.coreutils}/bin/kill -HUP $MAINPID";
          KillMode = "mixed";
          KillSignal = "SIGUSR2";
          SuccessExitStatus = [ 0 "SIGUSR2" ];
          TimeoutStopSec = "150";
          Restart = "on-failure";
          User = cfg.user;
          Group = cfg.group;
          CapabilityBoundingSet = "";
          LimitNOFILE = 800000;
          LockPersonality = true;
          MemoryDenyWriteExecute = true;
          NoNewPrivileges = true;
          PrivateDevices = true;
          PrivateTmp = true;
          PrivateUsers = true;
          ProcSubset = "pid";
          ProtectClock = true;
          ProtectControlGroups = true;
          ProtectHome = true;
          ProtectHostname = true;
          ProtectKernelLogs = true;
          ProtectKernelModules = true;
          ProtectKernelTunables = true;
          ProtectProc = "invisible";
          ProtectSystem = "strict";
          ReadOnlyPaths = [ ];
          ReadWritePaths = [ cfg.dataDir ];
          RestrictAddressFamilies = [ "AF_INET" "AF_INET6" ];
          RestrictNamespaces = true;
          RestrictRealtime = true;
          RestrictSUIDSGID = true;
          SystemCallFilter = [ "@system-service" "~@privileged" ];
          UMask = "0077";
        }
      ];
    };

    users.users = lib.mkIf (cfg.user == "nats") {
      nats = {
        description = "NATS daemon user";
        isSystemUser = true;
        group = cfg.group;
        home = cfg.dataDir;
      };
    };
    users.groups = lib.mkIf (cfg.group == "nats") { nats = { }; };
  };
}
