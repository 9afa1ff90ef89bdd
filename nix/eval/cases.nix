# Settings that must not build, each with the text its error must contain.
# The check evaluates `cases.<name>.toplevel` (nix-instantiate --eval) and
# expects it to fail with `expect` in the message: assertions of our modules,
# and type errors that the option declarations catch.
{
  lib,
  system,
  cimModules,
}:
let
  # The example host with one more module on top.
  host =
    module:
    system [
      cimModules.default
      ../../nixos/example.nix
      module
    ];
  case = expect: config: {
    inherit expect;
    toplevel = config.system.build.toplevel.outPath;
  };
  # The IUS module alone, as in its container, with `settings`.
  ius =
    module:
    system [
      cimModules.ius
      {
        services.cim.ius.enable = true;
        services.cim.ius.nats.passwordFile = "/var/lib/cim/secrets/ius/nats-password";
      }
      module
    ];
in
{
  password-file-in-store = case "services.cim.ius.nats.passwordFile = \"${builtins.storeDir}/" (ius {
    services.cim.ius.nats.passwordFile = lib.mkForce "${builtins.storeDir}/0000000000000000000000000000000a-secret/nats-password";
  });

  password-file-as-nix-path = case "is not of type `null or absolute path (a string, not a Nix path) of a file outside the Nix store'" (
    ius { services.cim.ius.nats.passwordFile = lib.mkForce ./cases.nix; }
  );

  missing-password = case "services.cim.ius.nats.passwordFile is not set" (ius {
    services.cim.ius.nats.passwordFile = lib.mkForce null;
  });

  host-user-password-in-store = case "services.cim.host.users.admin.passwordFile = \"${builtins.storeDir}/" (host {
    services.cim.host.users.admin.passwordFile = "${builtins.storeDir}/0000000000000000000000000000000b-admin/nats-password";
  });

  tls-key-in-store = case "services.cim.ius.settings.nats.tls_key_file = \"${builtins.storeDir}/" (ius {
    services.cim.ius.settings.nats.tls_key_file = "${builtins.storeDir}/0000000000000000000000000000000c-key.pem";
  });

  unknown-option = case "The option `services.cim.ius.passwordFile' does not exist" (ius {
    services.cim.ius.passwordFile = "/run/secrets/x";
  });

  ill-typed-setting = case "A definition for option `services.cim.ius.settings.store.namespace' is not of type" (ius {
    services.cim.ius.settings.store.namespace = "Not A Namespace!";
  });

  wildcard-inbox-prefix = case "A definition for option `services.cim.ius.settings.nats.inbox_prefix' is not of type" (ius {
    services.cim.ius.settings.nats.inbox_prefix = "_INBOX.>";
  });

  ill-typed-port = case "A definition for option `services.cim.host.nats.port' is not of type `16 bit unsigned integer" (host {
    services.cim.host.nats.port = 70000;
  });

  null-in-toml = case "is not of type `TOML value'" (ius {
    services.cim.ius.settings.ius.max_page_size = { nested = null; };
  });

  bad-restart-policy = case "services.cim-ius.serviceConfig' is not of type" (ius {
    systemd.services.cim-ius.serviceConfig.Restart = lib.mkForce "sometimes";
  });

  container-without-host = case "services.cim.containers.ius needs services.cim.host.enable" (host {
    services.cim.host.enable = lib.mkForce false;
  });

  bad-user-name = case "services.cim.host.users.Bad_User: a NATS user name" (host {
    services.cim.host.users.Bad_User.permissions = {
      publish = [ ];
      subscribe = [ ];
    };
  });

  unknown-user-without-permissions = case "services.cim.host.users.stranger may neither publish nor subscribe" (host {
    services.cim.host.users.stranger = { };
  });

  # A component whose name makes `ve-cim-<name>` longer than Linux's 15
  # characters (a stand-in module declares its services.cim.<name>).
  container-name-too-long = case "services.cim.containers.pipeline9: the component's name is too long for a container" (
    host (
      { lib, ... }:
      {
        imports = [
          (import ../../containers/lib.nix {
            name = "pipeline9";
            user = "pipeline9";
            localAddress = "10.233.0.9";
            module = {
              options.services.cim.pipeline9 = lib.mkOption {
                type = lib.types.anything;
                default = { };
              };
            };
          })
        ];
        services.cim.containers.pipeline9.enable = true;
        services.cim.host.users.pipeline9.permissions = {
          publish = [ "x" ];
          subscribe = [ "x" ];
        };
      }
    )
  );

  # nixpkgs refuses an insecure package; so do the stubs (the flake's dev
  # shell used Node 20, which nixos-26.05 marks insecure).
  insecure-package = case "Package ‘nodejs-20.19.5’ is marked as insecure, refusing to evaluate" (host (
    { pkgs, ... }:
    {
      environment.systemPackages = [ pkgs.nodejs_20 ];
    }
  ));

  password-file-and-credential = case "services.cim.ius: set one of nats.passwordFile and nats.passwordCredential, not both" (ius {
    services.cim.ius.nats.passwordCredential = "cim-nats-password";
  });

  old-nats-server = case "2.12 or newer (JetStream atomic batch publish)" (host (
    { pkgs, ... }:
    {
      services.cim.host.nats.package = pkgs.runCommand "nats-server-2.9.10" { version = "2.9.10"; } "";
    }
  ));
}
