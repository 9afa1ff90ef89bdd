# services.cim.registry: the Component Registry (crates/cim-registry).
import ./lib/component.nix {
  name = "registry";
  binary = "cim-registry";
  title = "Component Registry";
  httpPort = 9101;
}
