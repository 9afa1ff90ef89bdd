# One CIM component in its own nixos-container, `cim-<name>`:
# - a private network: a veth pair between the host (the shared
#   `services.cim.containers.hostAddress`) and the container (`localAddress`);
#   NATS's client port is opened on the host side only;
# - the component's NATS user on the host, and its password file bind-mounted
#   read-only into the container at the same path (that file only);
# - the component's module enabled inside, talking to NATS on the host address;
# - started at boot, after NATS.
{
  # Attribute under services.cim (and the NATS user).
  name,
  # The component's NixOS module (imported inside the container).
  module,
  # Default container address.
  localAddress,
}:
{
  config,
  lib,
  ...
}:
let
  cfg = config.services.cim.containers.${name};
  host = config.services.cim.host;
  container = "cim-${name}";
  passwordFile = host.users.${name}.passwordFile;
in
{
  options.services.cim.containers.${name} = {
    enable = lib.mkEnableOption "the CIM `${name}` component in the nixos-container `${container}` (needs services.cim.host)";

    localAddress = lib.mkOption {
      type = lib.types.str;
      default = localAddress;
      description = "The container's address on its private link to the host.";
    };

    config = lib.mkOption {
      type = lib.types.deferredModule;
      default = { };
      example = lib.literalExpression ''{ services.cim.${name}.settings.log.level = "debug"; }'';
      description = ''
        More NixOS configuration of the container, e.g. the component's
        `services.cim.${name}.settings`.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion = host.enable;
        message = "services.cim.containers.${name} needs services.cim.host.enable: the container talks to the host's NATS.";
      }
    ];

    services.cim.host.users.${name} = { };
    services.cim.host.nats.openFirewallOn = [ "ve-${container}" ];

    containers.${container} = {
      autoStart = true;
      privateNetwork = true;
      hostAddress = config.services.cim.containers.hostAddress;
      localAddress = cfg.localAddress;
      bindMounts.${passwordFile} = {
        hostPath = passwordFile;
        isReadOnly = true;
      };
      config = {
        imports = [
          module
          cfg.config
        ];
        services.cim.${name} = {
          enable = true;
          nats.passwordFile = passwordFile;
          settings.nats.url = "nats://${config.services.cim.containers.hostAddress}:${toString host.nats.port}";
          settings.nats.user = name;
          settings.store.namespace = host.namespace;
        };
        system.stateVersion = config.system.stateVersion;
      };
    };

    # The bind-mounted password file must exist (cim-secrets creates it) and
    # NATS should be up before the component starts.
    systemd.services."container@${container}" = {
      wants = [ "nats.service" ];
      after = [ "nats.service" ] ++ lib.optional host.secrets.generate "cim-secrets.service";
    };
  };
}
