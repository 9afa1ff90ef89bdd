# services.cim.host: the hyper-converged host's share of CIM — NATS with
# JetStream (nixpkgs' services.nats), one NATS user per component with
# least-privilege permissions, the passwords, and provisioning of the store.
# The components themselves run in nixos-containers (containers/) or on the
# host (services.cim.<component>).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.services.cim.host;
  secrets = import ../lib/secrets.nix { inherit lib; };
  defaultPermissions = import ../lib/permissions.nix { inherit lib; } cfg.namespace;
  format = pkgs.formats.toml { };

  userOptions =
    { name, ... }:
    {
      options = {
        passwordFile = mkOption {
          type = secrets.type;
          default = "${cfg.secrets.dir}/${name}/nats-password";
          defaultText = lib.literalExpression ''"''${services.cim.host.secrets.dir}/${name}/nats-password"'';
          description = ''
            File holding this user's NATS password, outside the Nix store. NATS
            reads it through LoadCredential at every start, so it can be owned
            by root with mode 0400. With `secrets.generate`, missing files under
            `secrets.dir` are created with random passwords.
          '';
        };
        permissions = {
          publish = mkOption (
            {
              type = types.listOf types.str;
              description = ''
                Subjects this user may publish to (NATS wildcards allowed); an empty
                list allows nothing. The known users (admin, and each component)
                default to the least privilege their code needs (modules/lib/permissions.nix).
              '';
            }
            // lib.optionalAttrs (defaultPermissions ? ${name}) { default = defaultPermissions.${name}.publish; }
          );
          publishDeny = mkOption {
            type = types.listOf types.str;
            default = defaultPermissions.${name}.publishDeny or [ ];
            description = ''
              Subjects this user may not publish to even where `publish` allows
              them (NATS wildcards allowed; a deny wins over an allow).
            '';
          };
          subscribe = mkOption (
            {
              type = types.listOf types.str;
              description = "Subjects this user may subscribe to; an empty list allows nothing.";
            }
            // lib.optionalAttrs (defaultPermissions ? ${name}) { default = defaultPermissions.${name}.subscribe; }
          );
          allowResponses = mkOption {
            type = types.bool;
            default = defaultPermissions.${name}.allowResponses or true;
            description = "Whether the user may reply to the requests it receives (NATS `allow_responses`).";
          };
        };
      };
    };
in
{
  imports = [
    ./nats.nix
    ./secrets.nix
    ./provision.nix
  ];

  options.services.cim.host = {
    enable = lib.mkEnableOption "the CIM host: NATS with JetStream, the CIM users and their credentials, provisioning";

    package = mkOption {
      type = types.package;
      defaultText = lib.literalExpression "self.packages.\${system}.cim";
      description = "The `cim` CLI, used to provision the store and installed for the operator.";
    };

    namespace = mkOption {
      type = types.strMatching "[a-z0-9][a-z0-9_-]{0,31}";
      default = "cim";
      description = ''
        Store namespace (docs/spec/jetstream.md): prefix of the event stream,
        the buckets and the event subjects. The components must use the same
        (`services.cim.<component>.settings.store.namespace`).
      '';
    };

    account = mkOption {
      type = types.strMatching "[A-Z][A-Z0-9_]{0,31}";
      default = "CIM";
      description = "The NATS account holding the store and every CIM user, with JetStream enabled.";
    };

    names = mkOption {
      type = types.attrsOf types.str;
      readOnly = true;
      default =
        let
          names = import ../lib/names.nix { inherit lib; } cfg.namespace;
        in
        {
          inherit (names)
            eventsStream
            objectsBucket
            objectsStream
            namesBucket
            namesStream
            ;
          componentsBucket = names.kvBucket "components";
        };
      defaultText = lib.literalExpression ''{ eventsStream = "CIM_EVENTS"; objectsBucket = "cim-objects"; ... }'';
      description = ''
        The streams and buckets of the store (read-only, derived from
        `namespace`). They are created with their exact configuration by
        the code that uses them — `cim-provision.service` for the event
        stream, object and names buckets, each component for its own — and
        checked on every start (crates/cim-store/src/provision.rs).
      '';
    };

    users = mkOption {
      type = types.attrsOf (types.submodule userOptions);
      default = { };
      example = lib.literalExpression ''{ ius.passwordFile = "/run/secrets/cim/ius-nats-password"; }'';
      description = ''
        NATS users of the CIM account, one per component plus `admin` (the
        operator's CLI and provisioning). The container module adds the user
        of each component it runs.
      '';
    };

    secrets = {
      dir = mkOption {
        type = secrets.type;
        default = "/var/lib/cim/secrets";
        description = "Directory of the default password files: `<dir>/<user>/nats-password`.";
      };
      generate = mkOption {
        type = types.bool;
        default = false;
        description = ''
          Create every missing password file under `secrets.dir` with a random
          password at boot, before NATS starts (`cim-secrets.service`). Handy
          for a single host; leave it off when the passwords come from a
          secret manager (sops-nix, agenix) and set each user's
          `passwordFile`.
        '';
      };
    };

    cli.settings = mkOption {
      type = types.submodule { freeformType = format.type; };
      default = { };
      description = ''
        Extra configuration of the operator's `cim` CLI on the host
        (docs/cli.md), merged into `/etc/cim/cim.toml`, which `cim-admin`
        uses. The NATS URL, user and password file are set by this module.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    services.cim.host.users.admin = { };

    assertions =
      lib.mapAttrsToList (name: user: secrets.outsideStore "services.cim.host.users.${name}.passwordFile" user.passwordFile) cfg.users
      ++ lib.mapAttrsToList (name: user: {
        assertion = user.permissions.publish != [ ] || user.permissions.subscribe != [ ];
        message = ''
          services.cim.host.users.${name} may neither publish nor subscribe. Only the
          known users (${lib.concatStringsSep ", " (lib.attrNames defaultPermissions)}) have default permissions: set
          services.cim.host.users.${name}.permissions.publish and .subscribe.
        '';
      }) cfg.users
      ++ lib.mapAttrsToList (name: _: {
        assertion = builtins.match "[a-z][a-z0-9_-]{0,31}" name != null;
        message = "services.cim.host.users.${name}: a NATS user name here is 1-32 of [a-z0-9_-], starting with a letter.";
      }) cfg.users;
  };
}
