# The JetStream names derived from a store namespace, exactly as cim-store
# derives them (crates/cim-store/src/config.rs `StoreConfig::names`, specified
# in docs/spec/jetstream.md). The host module uses them for NATS permissions
# and the tests for their assertions; keep them in step with that code.
{ lib }:

namespace:
let
  upper = lib.toUpper (lib.replaceStrings [ "-" ] [ "_" ] namespace);
in
rec {
  inherit namespace;
  # docs/spec/jetstream.md §1: the event stream and its subjects.
  eventsStream = "${upper}_EVENTS";
  eventSubjects = "${namespace}.events.>";
  # Subjects of one aggregate type: `<namespace>.events.<type>.<id>`.
  eventsOfType = type: "${namespace}.events.${type}.>";
  # §2: the object store bucket (a standard JetStream object store).
  objectsBucket = "${namespace}-objects";
  objectsStream = "OBJ_${objectsBucket}";
  # §3: named objects (KV).
  namesBucket = "${namespace}-names";
  namesStream = "KV_${namesBucket}";
  # §4: component KV buckets, `<namespace>-<name>`.
  kvBucket = name: "${namespace}-${name}";
  kvStream = name: "KV_${namespace}-${name}";
}
