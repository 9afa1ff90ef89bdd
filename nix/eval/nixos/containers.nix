# `containers.<name>` as nixos/modules/virtualisation/nixos-containers.nix
# declares it (nixos-unstable, 2025-2026): the options our container module
# sets, with their types (`privateUsers`: an u32 or no/identity/pick), and
# `config` evaluated as a whole NixOS system of its own — here with the same
# stub modules (`baseModules`) — plus the two assertions nixpkgs adds to every
# container's system (name length with a private network on old kernels, no
# underscores). Each container's system is built (`path`) from its own
# `system.build.toplevel`, so its failed assertions fail the host too.
{
  config,
  lib,
  pkgs,
  baseModules,
  ...
}@host:
let
  inherit (lib) mkOption types;
  kernelVersion = config.boot.kernelPackages.kernel.version;

  bindMountOptions =
    { name, ... }:
    {
      options = {
        mountPoint = mkOption {
          type = types.str;
          description = "Mount point in the container.";
        };
        hostPath = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "Path on the host.";
        };
        isReadOnly = mkOption {
          type = types.bool;
          default = true;
          description = "Read-only.";
        };
      };
      config.mountPoint = lib.mkDefault name;
    };

  containerOptions =
    { config, name, ... }:
    {
      options = {
        config = mkOption {
          description = "The container's NixOS configuration.";
          type = lib.mkOptionType {
            name = "Toplevel NixOS config";
            merge =
              loc: defs:
              (lib.evalModules {
                modules =
                  baseModules
                  ++ [
                    {
                      boot.isContainer = true;
                      networking.hostName = lib.mkDefault name;
                      networking.useDHCP = false;
                      assertions = [
                        {
                          assertion =
                            (builtins.compareVersions kernelVersion "5.8" <= 0) -> config.privateNetwork -> lib.stringLength name <= 11;
                          message = "Container name `${name}` is too long: with privateNetwork, at most 11 characters on kernels before 5.8.";
                        }
                        {
                          assertion = !lib.hasInfix "_" name;
                          message = "Names containing underscores are not allowed in nixos-containers. Please rename the container '${name}'";
                        }
                      ];
                    }
                  ]
                  ++ map (def: def.value) defs;
                prefix = [
                  "containers"
                  name
                ];
                specialArgs = { inherit baseModules; } // config.specialArgs;
              }).config;
          };
        };
        path = mkOption {
          type = types.path;
          description = "The container's system.";
        };
        specialArgs = mkOption {
          type = types.attrsOf types.unspecified;
          default = { };
          description = "Extra module arguments.";
        };
        autoStart = mkOption {
          type = types.bool;
          default = false;
          description = "Start at boot.";
        };
        ephemeral = mkOption {
          type = types.bool;
          default = false;
          description = "Start from an empty root every time.";
        };
        privateNetwork = mkOption {
          type = types.bool;
          default = false;
          description = "A veth pair instead of the host's interfaces.";
        };
        privateUsers = mkOption {
          type = types.either types.ints.u32 (
            types.enum [
              "no"
              "identity"
              "pick"
            ]
          );
          default = "no";
          description = "User namespacing: no, identity, pick, or the first host UID of the container's range.";
        };
        hostAddress = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "IPv4 address of the host side.";
        };
        localAddress = mkOption {
          type = types.nullOr types.str;
          default = null;
          description = "IPv4 address of the container side.";
        };
        bindMounts = mkOption {
          type = types.attrsOf (types.submodule bindMountOptions);
          default = { };
          description = "Host paths mounted into the container.";
        };
        extraFlags = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Extra systemd-nspawn flags.";
        };
        restartIfChanged = mkOption {
          type = types.bool;
          default = true;
          description = "Restart on a configuration switch when changed.";
        };
        timeoutStartSec = mkOption {
          type = types.str;
          default = "1min";
          description = "Start timeout.";
        };
      };
      config.path = config.config.system.build.toplevel;
    };
in
{
  options = {
    boot.isContainer = mkOption {
      type = types.bool;
      default = false;
      description = "This system is a container.";
    };
    boot.enableContainers = mkOption {
      type = types.bool;
      default = config.containers != { };
      description = "Support for NixOS containers.";
    };
    containers = mkOption {
      type = types.attrsOf (types.submodule containerOptions);
      default = { };
      description = "Declarative NixOS containers.";
    };
  };

  # Like nixpkgs: a service container@<name> per container, which other
  # modules may extend (ordering after NATS, here), and its settings file in
  # /etc/nixos-containers, where the bind mounts and `extraFlags` become
  # nspawn flags (EXTRA_NSPAWN_FLAGS, split at white space by the start
  # script) and `privateUsers` becomes `--private-users=` (PRIVATE_USERS).
  config.systemd.services = lib.mapAttrs' (
    name: container:
    lib.nameValuePair "container@${name}" {
      description = "Container '${name}'";
      wantedBy = lib.optional container.autoStart "machines.target";
      wants = lib.optional container.autoStart "network.target";
      after = lib.optional container.autoStart "network.target";
      restartTriggers = [ container.path ];
      serviceConfig = {
        Type = "notify";
        Restart = "on-failure";
        TimeoutStartSec = container.timeoutStartSec;
      };
    }
  ) host.config.containers;

  config.environment.etc = lib.mapAttrs' (
    name: container:
    let
      bindFlag =
        b:
        (if b.isReadOnly then " --bind-ro=" else " --bind=")
        + (if b.hostPath != null then "${b.hostPath}:${b.mountPoint}" else b.mountPoint);
    in
    lib.nameValuePair "nixos-containers/${name}.conf" {
      text = ''
        SYSTEM_PATH=${container.path}
        ${lib.optionalString container.privateNetwork "PRIVATE_NETWORK=1"}
        ${lib.optionalString (container.hostAddress != null) "HOST_ADDRESS=${container.hostAddress}"}
        ${lib.optionalString (container.localAddress != null) "LOCAL_ADDRESS=${container.localAddress}"}
        PRIVATE_USERS=${toString container.privateUsers}
        ${lib.optionalString container.autoStart "AUTO_START=1"}
        EXTRA_NSPAWN_FLAGS="${
          lib.concatMapStrings bindFlag (lib.attrValues container.bindMounts)
          + lib.optionalString (container.extraFlags != [ ]) (" " + lib.concatStringsSep " " container.extraFlags)
        }"
      '';
    }
  ) host.config.containers;
}
