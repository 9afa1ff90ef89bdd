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
  });
}
