# One CIM component in its own nixos-container, `cim-<name>`:
# - a private network: a veth pair between the host (the shared
#   `services.cim.containers.hostAddress`) and the container (`localAddress`);
#   NATS's client port is opened on the host side, `ve-cim-<name>`, only;
# - private user namespaces (`privateUsers = "pick"`): root in the container
#   is an unprivileged user on the host;
# - the component's NATS user on the host; its password handed to the
#   container as a credential by systemd-nspawn (`--load-credential`, read
#   by nspawn as root on the host before the container starts), so the
#   password file itself is never visible inside, and its ownership does not
#   matter to the user namespace;
# - the component's module enabled inside, talking to NATS on the host address;
# - started at boot, after NATS and the provisioning of the store (the
#   component only attaches to its streams and buckets).
{
  # Attribute under services.cim (components.toml's name).
  name,
  # Its NATS user.
  user,
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
  # The host side of the container's veth pair. Linux allows 15 characters
  # in an interface name; systemd-nspawn shortens a longer one (with a hash),
  # and the firewall rule for this name would silently match nothing.
  interface = "ve-${container}";
  passwordFile = host.users.${user}.passwordFile;
  # The name of the credential inside the container (its system credential).
  credential = "cim-nats-password";
in
{
  options.services.cim.containers.${name} = {
    enable = lib.mkEnableOption "the CIM `${name}` component in the nixos-container `${container}` (needs services.cim.host)";

    localAddress = lib.mkOption {
      type = lib.types.str;
      default = localAddress;
      description = "The container's address on its private link to the host.";
    };

    privateUsers = lib.mkOption {
      # As nixos-containers declares `containers.<name>.privateUsers`.
      type = lib.types.either lib.types.ints.u32 (
        lib.types.enum [
          "no"
          "identity"
          "pick"
        ]
      );
      default = "pick";
      description = ''
        User namespacing of the container (nixos-containers'
        `containers.<name>.privateUsers`). `"pick"`: systemd-nspawn gives the
        container its own range of host UIDs, so that root inside is nobody
        outside. The password reaches the container as a credential, not a
        bind-mounted file, so this works with password files on any file
        system (a secret manager's ramfs too).
      '';
    };

    credentials = lib.mkOption {
      type = lib.types.attrsOf (lib.types.strMatching "/[^[:space:]]+");
      default = { };
      example = {
        warm-access-key = "/var/lib/cim/secrets/storage/warm-access-key";
      };
      description = ''
        More secret files on the host for the component (e.g. the Storage
        Manager's S3 keys), by credential name: passed to the container as
        credentials (`--load-credential`, like the NATS password) and to the
        service as `services.cim.${name}.credentials`, which reads each as
        `/run/credentials/<package>.service/<name>`.
      '';
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
      {
        assertion = lib.stringLength interface <= 15;
        message = ''
          services.cim.containers.${name}: the component's name is too long for a container.
          The host side of its network link would be `${interface}`, ${toString (lib.stringLength interface)} characters,
          but Linux allows 15 in an interface name: systemd-nspawn would shorten it, and the
          firewall rule that opens NATS on `${interface}` would match nothing. A component
          that runs in a container has a name of at most 8 characters (container `cim-<name>`).
        '';
      }
      {
        assertion = builtins.match "[^[:space:]]+" passwordFile != null;
        message = "services.cim.host.users.${user}.passwordFile = \"${passwordFile}\": a container's password file may not contain white space (it becomes a systemd-nspawn argument).";
      }
    ];

    services.cim.host.users.${user} = { };
    services.cim.host.nats.openFirewallOn = [ interface ];

    containers.${container} = {
      autoStart = true;
      privateNetwork = true;
      inherit (cfg) privateUsers;
      hostAddress = config.services.cim.containers.hostAddress;
      localAddress = cfg.localAddress;
      extraFlags = [
        "--load-credential=${credential}:${passwordFile}"
      ]
      ++ lib.mapAttrsToList (
        credential: file: "--load-credential=cim-${credential}:${file}"
      ) cfg.credentials;
      config = {
        imports = [
          module
          cfg.config
        ];
        services.cim.${name} = {
          enable = true;
          nats.passwordCredential = credential;
          credentials = lib.mapAttrs (credential: _: "cim-${credential}") cfg.credentials;
          settings.nats.url = "nats://${config.services.cim.containers.hostAddress}:${toString host.nats.port}";
          settings.nats.user = user;
          settings.store.namespace = host.namespace;
        };
        system.stateVersion = config.system.stateVersion;
      };
    };

    # The password file must exist (cim-secrets creates it), NATS should be
    # up and the store provisioned (the component only attaches to its
    # streams and buckets) before the component starts.
    systemd.services."container@${container}" = {
      wants = [ "nats.service" ] ++ lib.optional host.provision.enable "cim-provision.service";
      after = [
        "nats.service"
      ]
      ++ lib.optional host.secrets.generate "cim-secrets.service"
      ++ lib.optional host.provision.enable "cim-provision.service";
    };
  };
}
