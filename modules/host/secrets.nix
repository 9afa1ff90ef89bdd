# cim-secrets.service: with services.cim.host.secrets.generate, creates the
# missing password files under secrets.dir (random, root-only) before NATS
# starts. Files elsewhere (a secret manager's) are never touched.
{
  config,
  lib,
  pkgs,
  ...
}:
let
  cfg = config.services.cim.host;
  generated = lib.filter (file: lib.hasPrefix "${cfg.secrets.dir}/" file) (
    lib.mapAttrsToList (_: user: user.passwordFile) cfg.users
  );
in
{
  config = lib.mkIf (cfg.enable && cfg.secrets.generate) {
    systemd.services.cim-secrets = {
      description = "CIM: create missing NATS passwords";
      wantedBy = [ "multi-user.target" ];
      before = [ "nats.service" ];
      path = [ pkgs.coreutils ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        UMask = "0077";
      };
      script = ''
        for file in ${lib.escapeShellArgs generated}; do
          if [ ! -s "$file" ]; then
            mkdir -p "$(dirname "$file")"
            # 48 hex digits: 192 random bits, and nothing to escape anywhere.
            od -An -tx1 -N24 /dev/urandom | tr -d ' \n' > "$file.tmp"
            mv "$file.tmp" "$file"
            echo "created $file"
          fi
        done
      '';
    };
  };
}
