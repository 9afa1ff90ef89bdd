# `users.users` / `users.groups` with the types and the two assertions of
# nixos/modules/config/users-groups.nix that a service user can trip: a user
# must be exactly one of system/normal user, and must have a group.
{ config, lib, ... }:
let
  inherit (lib) mkOption types;
in
{
  options.users = {
    users = mkOption {
      default = { };
      description = "User accounts.";
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              name = mkOption {
                type = types.str;
                default = name;
                description = "User name.";
              };
              description = mkOption {
                type = types.str;
                default = "";
                description = "GECOS field.";
              };
              uid = mkOption {
                type = types.nullOr types.int;
                default = null;
                description = "User id.";
              };
              isSystemUser = mkOption {
                type = types.bool;
                default = false;
                description = "A system user.";
              };
              isNormalUser = mkOption {
                type = types.bool;
                default = false;
                description = "A normal user.";
              };
              group = mkOption {
                type = types.str;
                default = "";
                description = "Primary group.";
              };
              extraGroups = mkOption {
                type = types.listOf types.str;
                default = [ ];
                description = "Supplementary groups.";
              };
              home = mkOption {
                type = types.path;
                default = "/var/empty";
                description = "Home directory.";
              };
              openssh.authorizedKeys.keys = mkOption {
                type = types.listOf types.singleLineStr;
                default = [ ];
                description = "SSH public keys.";
              };
            };
          }
        )
      );
    };
    groups = mkOption {
      default = { };
      description = "Groups.";
      type = types.attrsOf (
        types.submodule (
          { name, ... }:
          {
            options = {
              name = mkOption {
                type = types.str;
                default = name;
                description = "Group name.";
              };
              gid = mkOption {
                type = types.nullOr types.int;
                default = null;
                description = "Group id.";
              };
              members = mkOption {
                type = types.listOf types.str;
                default = [ ];
                description = "Members.";
              };
            };
          }
        )
      );
    };
  };

  config.assertions = lib.flatten (
    lib.mapAttrsToList (name: user: [
      {
        assertion = user.isSystemUser != user.isNormalUser;
        message = "Exactly one of users.users.${name}.isSystemUser and users.users.${name}.isNormalUser must be set.";
      }
      {
        assertion = user.group != "";
        message = "users.users.${name}.group is unset.";
      }
    ]) config.users.users
  );
}
