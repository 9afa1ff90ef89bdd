# `systemd.services` as nixpkgs declares it (nixos/lib/systemd-unit-options.nix,
# nixos/lib/systemd-lib.nix, nixos/modules/system/boot/systemd.nix), with the
# options our modules use, the same types, and the same checks:
# - unit dependencies must be unit names (`unitNameType`);
# - `serviceConfig` is `attrsOf unitOption` checked by `checkService`: Type and
#   Restart must be values systemd knows; a unit option's definitions are all
#   lists (repeatable, concatenated) or all single values (which must agree);
# - `script`/`preStart` become ExecStart/ExecStartPre.
# Each service is also rendered to unit text (`systemd.units.<n>.text`) the
# way systemd-lib's attrsToSection does, which fails for values systemd
# cannot take (attribute sets, functions).
{
  config,
  lib,
  pkgs,
  ...
}:
let
  inherit (lib) mkOption types;

  unitNameType = types.strMatching "[a-zA-Z0-9@%:_.\\-]+[.](service|socket|device|mount|automount|swap|target|path|timer|scope|slice)";

  unitOption = lib.mkOptionType {
    name = "systemd option";
    merge =
      loc: defs:
      let
        defs' = lib.filterOverrides defs;
      in
      if lib.isList (lib.head defs').value then
        lib.concatMap (
          def:
          if lib.isList def.value then
            def.value
          else
            throw "The definitions for systemd unit options should be either all lists, representing repeatable options, or all non-lists, but for the option ${lib.showOption loc}, the definitions are a mix of list and non-list ${lib.options.showDefs defs'}"
        ) defs'
      else
        lib.mergeEqualOption loc defs';
  };

  assertValueOneOf =
    name: values: attrs:
    lib.optional (
      attrs ? ${name} && !lib.elem attrs.${name} values
    ) "Systemd Service field `${name}' cannot have value `${toString attrs.${name}}'.";

  checkService =
    attrs:
    let
      # Unwrap mkOverride/mkIf, as checkUnitConfig does.
      defs = lib.mapAttrs (
        _: v:
        if v._type or "" == "override" then
          v.content
        else if v._type or "" == "if" then
          v.content
        else
          v
      ) attrs;
      errors =
        assertValueOneOf "Type" [ "exec" "simple" "forking" "oneshot" "dbus" "notify" "notify-reload" "idle" ] defs
        ++ assertValueOneOf "Restart" [ "no" "on-success" "on-failure" "on-abnormal" "on-abort" "on-watchdog" "always" ] defs;
    in
    if errors == [ ] then true else builtins.trace (lib.concatStringsSep "\n" errors) false;

  units = mkOption {
    default = [ ];
    type = types.listOf unitNameType;
    description = "Units.";
  };

  serviceOptions =
    {
      name,
      config,
      options,
      ...
    }:
    {
      options = {
        enable = mkOption {
          type = types.bool;
          default = true;
          description = "Whether the unit exists.";
        };
        description = mkOption {
          type = types.singleLineStr;
          default = "";
          description = "Description.";
        };
        documentation = mkOption {
          type = types.listOf types.str;
          default = [ ];
          description = "Documentation URIs.";
        };
        wantedBy = units;
        requiredBy = units;
        requires = units;
        wants = units;
        after = units;
        before = units;
        bindsTo = units;
        partOf = units;
        conflicts = units;
        onFailure = units;
        unitConfig = mkOption {
          type = types.attrsOf unitOption;
          default = { };
          description = "[Unit] section.";
        };
        startLimitBurst = mkOption {
          type = types.int;
          description = "Start rate limit: starts.";
        };
        startLimitIntervalSec = mkOption {
          type = types.int;
          description = "Start rate limit: interval.";
        };
        restartTriggers = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
          description = "Restart when these change.";
        };
        restartIfChanged = mkOption {
          type = types.bool;
          default = true;
          description = "Restart on a configuration switch when changed.";
        };
        environment = mkOption {
          type = with types; attrsOf (nullOr (oneOf [ str path package ]));
          default = { };
          description = "Environment variables.";
        };
        path = mkOption {
          type = with types; listOf (oneOf [ package str ]);
          default = [ ];
          description = "Packages on PATH.";
        };
        serviceConfig = mkOption {
          type = types.addCheck (types.attrsOf unitOption) checkService;
          default = { };
          description = "[Service] section.";
        };
        script = mkOption {
          type = types.lines;
          default = "";
          description = "Main process, as shell commands.";
        };
        preStart = mkOption {
          type = types.lines;
          default = "";
          description = "Shell commands before the main process.";
        };
      };
      config.unitConfig = lib.mkMerge [
        (lib.mkIf options.startLimitBurst.isDefined { StartLimitBurst = toString config.startLimitBurst; })
        (lib.mkIf options.startLimitIntervalSec.isDefined { StartLimitIntervalSec = toString config.startLimitIntervalSec; })
      ];
      config.serviceConfig = lib.mkMerge [
        (lib.mkIf (config.script != "") {
          ExecStart = "${pkgs.writeShellScriptBin "${name}-start" config.script}/bin/${name}-start";
        })
        (lib.mkIf (config.preStart != "") {
          ExecStartPre = [ "${pkgs.writeShellScriptBin "${name}-pre-start" config.preStart}/bin/${name}-pre-start" ];
        })
      ];
    };

  # systemd-lib's toOption/attrsToSection.
  toOption =
    x:
    if x == true then
      "true"
    else if x == false then
      "false"
    else
      toString x;
  section = attrs: lib.concatStrings (lib.mapAttrsToList (n: v: lib.concatMapStrings (x: "${n}=${toOption x}\n") (lib.toList v)) attrs);
  unitText =
    def:
    let
      deps = lib.filterAttrs (_: v: v != "") {
        Description = def.description;
        Documentation = toString def.documentation;
        Requires = toString def.requires;
        Wants = toString def.wants;
        After = toString def.after;
        Before = toString def.before;
        BindsTo = toString def.bindsTo;
        PartOf = toString def.partOf;
      };
      env = lib.concatStrings (
        lib.mapAttrsToList (n: v: lib.optionalString (v != null) "Environment=${builtins.toJSON "${n}=${v}"}\n") def.environment
      );
    in
    "[Unit]\n${section (deps // def.unitConfig)}\n[Service]\n${env}${section def.serviceConfig}";
in
{
  options.systemd = {
    services = mkOption {
      default = { };
      type = types.attrsOf (types.submodule serviceOptions);
      description = "System services.";
    };
    units = mkOption {
      readOnly = true;
      type = types.attrsOf types.unspecified;
      description = "The rendered units (here: only services).";
    };
    tmpfiles.rules = mkOption {
      type = types.listOf types.str;
      default = [ ];
      description = "systemd-tmpfiles rules.";
    };
  };

  config.systemd.units = lib.mapAttrs' (
    name: def: lib.nameValuePair "${name}.service" { text = unitText def; }
  ) (lib.filterAttrs (_: def: def.enable) config.systemd.services);
}
