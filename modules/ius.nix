# services.cim.ius: the Information Unit System (crates/cim-ius).
import ./lib/component.nix {
  name = "ius";
  binary = "cim-ius";
  title = "Information Unit System";
  httpPort = 9102;
}
