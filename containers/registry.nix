# The Component Registry's container.
{ module }:
import ./lib.nix {
  name = "registry";
  inherit module;
  localAddress = "10.233.0.2";
}
