# Least-privilege NATS permissions of each CIM user for a store namespace:
# the rules of components.toml's [permissions] applied to every component
# (modules/lib/components.nix). What each rule grants and why is written
# there; crates/cim-deploy applies the same rules for `cim up`.
#
# `nix/eval` and the xtask live check run the real binaries against a real
# nats-server with exactly these permissions; a missing one shows up there
# as a "Permissions Violation" in the server log.
{ lib }:

namespace:
let
  components = import ./components.nix { inherit lib; };
  names = import ./names.nix { inherit lib; } namespace;
  streams = components.streams namespace;
  # components.toml's [stores] and names.nix both follow cim-store: they
  # must agree.
  agree =
    lib.all
      (
        { store, stream }:
        streams.${store} == stream
        || throw "components.toml: [stores] ${store} is `${streams.${store}}`, but cim-store (modules/lib/names.nix) names it `${stream}`"
      )
      [
        {
          store = "events";
          stream = names.eventsStream;
        }
        {
          store = "objects";
          stream = names.objectsStream;
        }
        {
          store = "names";
          stream = names.namesStream;
        }
      ];
in
assert agree;
components.users namespace
