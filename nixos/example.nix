# An example CIM host: NATS with JetStream on the host, and every CIM
# component in its own nixos-container, talking to NATS over the container's
# private link with its own NATS user. Built by the flake as
# `nixosConfigurations.example`; docs/deploy.md starts from it.
{ lib, ... }:
let
  # Every component of components.toml.
  components = lib.attrNames (lib.importTOML ../components.toml).components;
in
{
  networking.hostName = "cim-example";
  system.stateVersion = "26.05";

  # The machine itself: replace with your hardware configuration
  # (`nixos-generate-config`).
  boot.loader.systemd-boot.enable = true;
  boot.loader.efi.canTouchEfiVariables = true;
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  time.timeZone = "UTC";

  services.cim.host = {
    enable = true;
    # Random NATS passwords under /var/lib/cim/secrets, created at first
    # boot. With a secret manager instead, set
    # services.cim.host.users.<user>.passwordFile for admin and each component.
    secrets.generate = true;
  };

  # Every component in its container: the same as
  #   services.cim.containers.registry.enable = true;
  #   services.cim.containers.ius.enable = true;
  # and so on for each.
  services.cim.containers = lib.genAttrs components (_: {
    enable = true;
  }) // {
    # The Storage Manager needs its two S3 tiers (docs/services.md): here a
    # NAS (warm) and a cloud bucket (cold); replace endpoints and buckets.
    # Their keys are files on the host, handed to the container as
    # credentials; the manager reads them from its credentials directory.
    storage = {
      enable = true;
      credentials = lib.genAttrs [
        "warm-access-key"
        "warm-secret-key"
        "cold-access-key"
        "cold-secret-key"
      ] (credential: "/var/lib/cim/secrets/storage/${credential}");
      config.services.cim.storage.settings.storage =
        let
          keys = tier: {
            access_key_file = "/run/credentials/cim-storage.service/${tier}-access-key";
            secret_key_file = "/run/credentials/cim-storage.service/${tier}-secret-key";
          };
        in
        {
          warm = {
            endpoint = "http://nas.example:9000";
            bucket = "cim-warm";
            allow_http = true;
          }
          // keys "warm";
          cold = {
            endpoint = "https://s3.eu-central-1.wasabisys.com";
            bucket = "cim-cold";
            region = "eu-central-1";
          }
          // keys "cold";
        };
    };
  };
}
