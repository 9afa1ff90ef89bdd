# The Information Unit System's container.
{ module }:
import ./lib.nix {
  name = "ius";
  inherit module;
  localAddress = "10.233.0.3";
}
