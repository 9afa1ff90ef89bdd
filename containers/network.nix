# What the CIM containers share: the host side of their private links.
{ lib, ... }:
{
  options.services.cim.containers.hostAddress = lib.mkOption {
    type = lib.types.str;
    default = "10.233.0.1";
    description = ''
      The host's address on each container's private link (the host side of
      every `ve-cim-*` veth pair; one address for all of them, each link
      routes one container address). The containers reach NATS here.
    '';
  };
}
