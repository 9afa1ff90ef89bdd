# Declarations of the general NixOS options our modules, the example host and
# the test nodes use, with the types nixpkgs gives them:
#   assertions, warnings       nixos/modules/misc/assertions.nix
#   system.stateVersion        nixos/modules/misc/version.nix
#   system.build               nixos/modules/system/activation/top-level.nix
#   environment.etc            nixos/modules/system/etc/etc.nix
#   environment.systemPackages nixos/modules/config/system-path.nix
#   networking.hostName, extraHosts, useDHCP
#                              nixos/modules/tasks/network-interfaces.nix,
#                              nixos/modules/config/networking.nix
#   networking.firewall.*      nixos/modules/services/networking/firewall.nix
#   fileSystems                nixos/modules/tasks/filesystems.nix
#   boot.loader.*              nixos/modules/system/boot/loader/*
#   boot.kernelPackages        nixos/modules/system/boot/kernel.nix
#   time.timeZone              nixos/modules/config/locale.nix
# Only the options in use are declared: defining any other is an error here,
# as a misspelt option is on NixOS.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;
  failed = map (a: a.message) (lib.filter (a: !a.assertion) config.assertions);
in
{
  options = {
    assertions = mkOption {
      type = types.listOf types.unspecified;
      internal = true;
      default = [ ];
      description = "Conditions that must hold, with the message shown when one does not.";
    };
    warnings = mkOption {
      type = types.listOf types.str;
      internal = true;
      default = [ ];
      description = "Messages printed when the system is built.";
    };

    system.stateVersion = mkOption {
      type = types.str;
      default = lib.trivial.release;
      description = "NixOS release whose stateful defaults this system keeps.";
    };
    system.build = mkOption {
      internal = true;
      default = { };
      type = types.submoduleWith { modules = [ { freeformType = with types; lazyAttrsOf (uniq unspecified); } ]; };
      description = "Build results.";
    };

    environment.etc = mkOption {
      default = { };
      description = "Files in /etc.";
      type = types.attrsOf (
        types.submodule (
          { name, config, ... }:
          {
            options = {
              enable = mkOption {
                type = types.bool;
                default = true;
                description = "Whether the file is created.";
              };
              target = mkOption {
                type = types.str;
                default = name;
                description = "Path relative to /etc.";
              };
              text = mkOption {
                type = types.nullOr types.lines;
                default = null;
                description = "Contents.";
              };
              source = mkOption {
                type = types.path;
                description = "Path of the source file.";
              };
              mode = mkOption {
                type = types.str;
                default = "symlink";
                description = "Mode, or symlink.";
              };
              user = mkOption {
                type = types.str;
                default = "+0";
                description = "Owner.";
              };
              group = mkOption {
                type = types.str;
                default = "+0";
                description = "Group.";
              };
            };
            config.source = lib.mkIf (config.text != null) (lib.mkDefault (pkgs.writeText "etc-${name}" config.text));
          }
        )
      );
    };
    environment.systemPackages = mkOption {
      type = types.listOf types.package;
      default = [ ];
      description = "Packages in the system profile.";
    };

    networking.hostName = mkOption {
      type = types.strMatching "^$|^[[:alnum:]]([[:alnum:]_-]{0,61}[[:alnum:]])?$";
      default = "nixos";
      description = "Host name.";
    };
    networking.extraHosts = mkOption {
      type = types.lines;
      default = "";
      description = "Lines added to /etc/hosts.";
    };
    networking.useDHCP = mkOption {
      type = types.bool;
      default = true;
      description = "DHCP on every interface.";
    };
    networking.firewall = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = "The firewall.";
      };
      allowedTCPPorts = mkOption {
        type = types.listOf types.port;
        default = [ ];
        description = "TCP ports open on every interface.";
      };
      interfaces = mkOption {
        default = { };
        description = "Ports open on one interface.";
        type = types.attrsOf (
          types.submodule {
            options = {
              allowedTCPPorts = mkOption {
                type = types.listOf types.port;
                default = [ ];
                description = "TCP ports.";
              };
              allowedUDPPorts = mkOption {
                type = types.listOf types.port;
                default = [ ];
                description = "UDP ports.";
              };
            };
          }
        );
      };
    };

    fileSystems = mkOption {
      default = { };
      description = "Mounted file systems.";
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              mountPoint = mkOption {
                type = types.str;
                default = name;
                description = "Mount point.";
              };
              device = mkOption {
                type = types.nullOr types.nonEmptyStr;
                default = null;
                description = "Device.";
              };
              fsType = mkOption {
                type = types.nonEmptyStr;
                default = "auto";
                description = "File system type.";
              };
              options = mkOption {
                type = types.nonEmptyListOf types.nonEmptyStr;
                default = [ "defaults" ];
                description = "Mount options.";
              };
            };
          }
        )
      );
    };

    boot.loader.systemd-boot.enable = mkOption {
      type = types.bool;
      default = false;
      description = "systemd-boot.";
    };
    boot.loader.efi.canTouchEfiVariables = mkOption {
      type = types.bool;
      default = false;
      description = "Whether EFI variables may be changed.";
    };
    boot.kernelPackages = mkOption {
      type = types.raw;
      default.kernel.version = "6.12.30";
      description = "Kernel packages (here: only the kernel's version, which nixos-containers reads).";
    };

    # nixos/modules/misc/nixpkgs.nix
    nixpkgs.hostPlatform = mkOption {
      type = types.either types.str types.attrs;
      description = "Platform the system runs on.";
    };

    time.timeZone = mkOption {
      type = types.nullOr (types.addCheck types.str (zone: !lib.hasInfix " " zone));
      default = null;
      description = "Time zone.";
    };
  };

  # Building the system fails on a failed assertion, like NixOS's
  # top-level.nix; the check evaluates this to find out.
  config.system.build.toplevel =
    if failed == [ ] then
      # Its path depends on every unit and /etc file, as a real system's does.
      pkgs.runCommand "nixos-system-${config.networking.hostName}" {
        passthru.warnings = config.warnings;
        units = lib.mapAttrs (_: unit: unit.text) config.systemd.units;
        etc = lib.mapAttrs (_: file: file.source) (lib.filterAttrs (_: file: file.enable) config.environment.etc);
        packages = config.environment.systemPackages;
      } ""
    else
      throw "\nFailed assertions:\n${lib.concatMapStrings (m: "- ${m}\n") failed}";
}
