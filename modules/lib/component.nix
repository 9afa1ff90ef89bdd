# The NixOS module of one CIM component (a `cim-runtime` binary), as
# `services.cim.<name>`: the component's TOML configuration from RFC 42
# `settings`, checked at build time by the binary itself, its NATS password
# passed in with LoadCredential, and one hardened systemd service.
#
# Every component module is this function applied to a component of
# components.toml (modules/default.nix); docs/deploy.md, "Adding a component".
{
  # The component's name in components.toml: the attribute under `services.cim`.
  name,
}:
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  component = (import ./components.nix { inherit lib; }).components.${name};
  inherit (component) title;
  # The binary, which is also the systemd unit and the micro service name.
  binary = component.package;
  cfg = config.services.cim.${name};
  secrets = import ./secrets.nix { inherit lib; };
  hardening = import ./hardening.nix;
  format = pkgs.formats.toml { };
  opt = "services.cim.${name}";

  # Where LoadCredential reads the password: a file, or a credential of the
  # service manager (in a container: passed by systemd-nspawn).
  passwordSource = if cfg.nats.passwordFile != null then cfg.nats.passwordFile else cfg.nats.passwordCredential;

  # Where systemd puts the LoadCredential copies for this service.
  credentialsDir = "/run/credentials/${binary}.service";

  # TOML has no null: an option left at null is a key left out.
  rendered = lib.filterAttrsRecursive (_: value: value != null) cfg.settings;
  unchecked = format.generate "${binary}.toml" rendered;

  # The binary checks its own file at build time: syntax, unknown keys, value
  # ranges. `--skip-file-checks`: the credentials exist only at run time.
  # `settings` rides along (passthru) for the evaluation check in nix/eval.
  configFile =
    if cfg.checkConfig then
      pkgs.runCommand "${binary}-checked.toml"
        {
          nativeBuildInputs = [ cfg.package ];
          passthru.settings = rendered;
        }
        ''
          ${binary} --check-config ${unchecked} --skip-file-checks
          ln -s ${unchecked} $out
        ''
    else
      unchecked;

  # NATS on this machine (the host module, or services.nats by hand): start
  # after it, and after the provisioning of the store if the host module
  # runs it here (the component only attaches to its streams and buckets;
  # ordering after a unit that does not exist is a no-op). In a container
  # NATS is on the host and not ours to order.
  natsLocal = config.services.nats.enable;
  # Ordered after (not wanting: cim-provision.service is the host module's).
  localUnits = [
    "nats.service"
    "cim-provision.service"
  ];

  # Keys of [nats] that name secret files (docs/services.md).
  secretKeys = [
    "password_file"
    "token_file"
    "nkey_seed_file"
    "creds_file"
    "tls_key_file"
  ];

  # A [section] of `settings` with a few typed keys and the rest free-form.
  section =
    description: options:
    mkOption {
      inherit description;
      default = { };
      type = types.submodule {
        freeformType = format.type;
        inherit options;
      };
    };
in
{
  options.services.cim.${name} = {
    enable = lib.mkEnableOption "the CIM ${title} (`${binary}`)";

    package = mkOption {
      type = types.package;
      defaultText = lib.literalExpression "self.packages.\${system}.${binary}";
      description = "The package providing `bin/${binary}`; the flake's own by default.";
    };

    checkConfig = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Check the rendered configuration at build time with
        `${binary} --check-config FILE --skip-file-checks`. Turn off only
        when the build machine cannot run the binary (cross-compiling).
      '';
    };

    credentials = mkOption {
      type = types.attrsOf (types.strMatching "[A-Za-z0-9_./-]+");
      default = { };
      example = {
        warm-access-key = "/var/lib/cim/secrets/storage/warm-access-key";
      };
      description = ''
        More secret files for the service (e.g. the Storage Manager's S3
        keys), by credential name: each is read by systemd (LoadCredential)
        and read by the service as `${credentialsDir}/<name>`, so point the
        settings there (e.g. `settings.storage.warm.access_key_file`). A
        value is an absolute file outside the Nix store, or the name of a
        credential the service manager itself received (in a container:
        `services.cim.containers.<name>.credentials` passes them).
      '';
    };

    nats.passwordFile = mkOption {
      type = types.nullOr secrets.type;
      default = null;
      example = "/var/lib/cim/secrets/${component.user}/nats-password";
      description = ''
        File holding the NATS password of `settings.nats.user` (whitespace at
        the ends is ignored). Read by systemd (LoadCredential), so it can be
        owned by root with mode 0400; the service reads its copy as
        `${credentialsDir}/nats-password`. Must not be in the Nix store.
      '';
    };

    nats.passwordCredential = mkOption {
      type = types.nullOr (types.strMatching "[A-Za-z0-9_.-]+");
      default = null;
      example = "cim-nats-password";
      description = ''
        Instead of `nats.passwordFile`: the name of a credential that the
        service manager itself received, holding the password — in a
        container, from the container manager (`systemd-nspawn
        --load-credential`, which the container module uses). The service
        reads it through LoadCredential as `${credentialsDir}/nats-password`.
      '';
    };

    settings = mkOption {
      default = { };
      description = ''
        The configuration of `${binary}` (docs/services.md): every section
        and key that the binary accepts, rendered to TOML. Unknown keys fail
        the build, through the build-time `--check-config`.
      '';
      example = lib.literalExpression ''
        {
          log.level = "info,cim_store=debug";
          runtime.heartbeat_secs = 5;
        }
      '';
      type = types.submodule {
        freeformType = format.type;
        options = {
          nats = section "`[nats]`: the connection to NATS." {
            url = mkOption {
              type = types.either types.str (types.listOf types.str);
              default = "nats://127.0.0.1:4222";
              example = "nats://10.233.0.1:4222";
              description = "NATS server URL(s).";
            };
            user = mkOption {
              type = types.nullOr types.str;
              default = component.user;
              description = ''
                NATS user name; the host module declares one user per
                component with that component's permissions. `null`
                connects without credentials.
              '';
            };
            inbox_prefix = mkOption {
              type = types.nullOr (types.strMatching "[^.*> ]+(\\.[^.*> ]+)*");
              default = if cfg.settings.nats.user != null then "_INBOX_${cfg.settings.nats.user}" else null;
              defaultText = lib.literalExpression ''"_INBOX_''${settings.nats.user}"'';
              description = ''
                Subject prefix of the component's reply inboxes. The host
                module lets each component's user subscribe only to
                `_INBOX_<user>.>`, so no component reads another's replies.
              '';
            };
            password_file = mkOption {
              type = types.nullOr types.str;
              default = if passwordSource != null then "${credentialsDir}/nats-password" else null;
              defaultText = lib.literalExpression ''"${credentialsDir}/nats-password" when nats.passwordFile or nats.passwordCredential is set'';
              description = ''
                Read by the component at start. Set
                `${opt}.nats.passwordFile` instead: the service runs as a
                dynamic user and reads secrets only through LoadCredential.
              '';
            };
          };
          store = section "`[store]`: the event and object store (docs/spec/jetstream.md)." {
            namespace = mkOption {
              type = types.strMatching "[a-z0-9][a-z0-9_-]{0,31}";
              default = "cim";
              description = "Store namespace: prefix of every stream, subject and bucket. Same as the host's.";
            };
          };
          http = section "`[http]`: metrics (`/metrics`) and health (`/healthz`, `/readyz`)." {
            listen = mkOption {
              type = types.str;
              default = "127.0.0.1:${toString component.http_port}";
              description = "Address of the HTTP endpoints.";
            };
          };
        };
      };
    };

    configFile = mkOption {
      type = types.path;
      readOnly = true;
      default = configFile;
      defaultText = "the checked TOML rendered from settings";
      description = "The configuration file the service runs with (read-only; rendered from `settings`).";
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      {
        assertion =
          cfg.settings.nats.user == null || passwordSource != null || cfg.settings.nats ? creds_file;
        message = ''
          ${opt}.nats.passwordFile is not set, but the component connects to NATS
          as user "${toString cfg.settings.nats.user}" and needs its password. Point it at a
          root-only file outside the Nix store, e.g.
            ${opt}.nats.passwordFile = "/var/lib/cim/secrets/${component.user}/nats-password";
          (the host module's users.${component.user}.passwordFile on the NATS host), or set
          ${opt}.settings.nats.user = null to connect without credentials.
        '';
      }
      {
        assertion = cfg.nats.passwordFile == null || cfg.nats.passwordCredential == null;
        message = "${opt}: set one of nats.passwordFile and nats.passwordCredential, not both.";
      }
      (secrets.outsideStore "${opt}.nats.passwordFile" cfg.nats.passwordFile)
    ]
    ++ lib.mapAttrsToList (credential: source: secrets.outsideStore "${opt}.credentials.${credential}" source) cfg.credentials
    ++ map (key: secrets.outsideStore "${opt}.settings.nats.${key}" (cfg.settings.nats.${key} or null)) secretKeys;

    systemd.services.${binary} = {
      description = "CIM ${title}";
      documentation = [ "https://github.com/cim-project/cim/blob/main/docs/services.md" ];
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ] ++ lib.optional natsLocal "nats.service";
      after = [ "network-online.target" ] ++ lib.optionals natsLocal localUnits;
      serviceConfig = hardening // {
        Type = "exec";
        ExecStart = "${cfg.package}/bin/${binary} --config ${cfg.configFile}";
        DynamicUser = true;
        LoadCredential =
          lib.optional (passwordSource != null) "nats-password:${passwordSource}"
          ++ lib.mapAttrsToList (credential: source: "${credential}:${source}") cfg.credentials;
        # The runtime reconnects by itself; a crash or a failed start
        # (NATS unreachable for longer than its connect timeout) restarts.
        Restart = "on-failure";
        RestartSec = 2;
        # SIGTERM: drain in-flight requests for runtime.shutdown_grace_secs.
        TimeoutStopSec = (cfg.settings.runtime.shutdown_grace_secs or 30) + 15;
      };
    };
  };
}
