# Least-privilege NATS permissions of each CIM user, derived from the
# subjects the code uses (docs/spec/subjects.md, docs/spec/jetstream.md).
#
# Every component may:
# - serve its own micro service: subscribe to its request subjects
#   (`cim.service.<component>.>`) and to the `$SRV` discovery subjects for
#   its service name; replies go out through `allow_responses`;
# - register and heartbeat with the Component Registry;
# - receive replies on its own inbox prefix, `_INBOX_<user>.>` (the component
#   module sets `[nats] inbox_prefix` to match), never on another user's;
# - use the JetStream API only for the streams it opens, and write only the
#   subjects it owns: its aggregate types in the event stream, its KV bucket.
# Reading the event stream is open to every component by design: the
# MerkleDAG is shared, and each one rebuilds what it needs from it.
#
# `nix/eval` and the xtask live check run the real binaries against a real
# nats-server with exactly these permissions; a missing one shows up there
# as a "Permissions Violation" in the server log.
{ lib }:

namespace:
let
  names = import ./names.nix { inherit lib; } namespace;

  # The JetStream API subjects for one stream. `manage`: create it if missing
  # and update its configuration (the store adapts an existing stream, see
  # crates/cim-store/src/provision.rs); `read`: consumers (the ordered
  # consumers that read and watch) and direct/message gets; `purge`: the
  # object store purges the chunks of a failed or duplicate put.
  streamApi =
    {
      stream,
      manage ? true,
      read ? true,
      purge ? false,
    }:
    [ "$JS.API.STREAM.INFO.${stream}" ]
    ++ lib.optionals manage [
      "$JS.API.STREAM.CREATE.${stream}"
      "$JS.API.STREAM.UPDATE.${stream}"
    ]
    ++ lib.optionals read [
      "$JS.API.CONSUMER.CREATE.${stream}"
      "$JS.API.CONSUMER.CREATE.${stream}.>"
      "$JS.API.CONSUMER.INFO.${stream}.>"
      "$JS.API.CONSUMER.DELETE.${stream}.>"
      "$JS.API.CONSUMER.MSG.NEXT.${stream}.>"
      "$JS.API.DIRECT.GET.${stream}"
      "$JS.API.DIRECT.GET.${stream}.>"
      "$JS.API.STREAM.MSG.GET.${stream}"
    ]
    ++ lib.optional purge "$JS.API.STREAM.PURGE.${stream}";

  # A micro service named `service` with request subjects under `prefix`.
  microService = service: prefix: [
    "${prefix}.>"
    "$SRV.PING"
    "$SRV.INFO"
    "$SRV.STATS"
    "$SRV.*.${service}"
    "$SRV.*.${service}.*"
  ];

  # cim-runtime's registration protocol (docs/services.md).
  registration = [
    "cim.service.registry.components.register"
    "cim.service.registry.components.deregister"
  ];

  component =
    {
      user,
      service,
      prefix,
      publish,
      streams,
    }:
    {
      # `$JS.API.INFO` (account limits and usage, read-only): async-nats asks
      # for it before creating a KV bucket.
      publish = registration ++ [ "$JS.API.INFO" ] ++ publish ++ lib.concatMap streamApi streams;
      subscribe = microService service prefix ++ [ "_INBOX_${user}.>" ];
      allowResponses = true;
    };
in
{
  # The operator's `cim` CLI and the provisioning service: the whole CIM
  # account (export/import, verify, object puts, provisioning every bucket).
  admin = {
    publish = [ ">" ];
    subscribe = [ ">" ];
    allowResponses = true;
  };

  # Component Registry: schema aggregates `schema/<type>` in the event store,
  # live components in the `<namespace>-components` KV bucket.
  registry = component {
    user = "registry";
    service = "cim-registry";
    prefix = "cim.service.registry";
    publish = [
      (names.eventsOfType "schema")
      "$KV.${names.kvBucket "components"}.>"
    ];
    streams = [
      { stream = names.eventsStream; }
      { stream = names.kvStream "components"; }
    ];
  };

  # Information Unit System: unit aggregates `unit/<id>`; asks the registry
  # for schemas; reads (never writes) attached objects.
  ius = component {
    user = "ius";
    service = "cim-ius";
    prefix = "cim.service.ius";
    publish = [
      (names.eventsOfType "unit")
      "cim.service.registry.schemas.>"
    ];
    streams = [
      { stream = names.eventsStream; }
      { stream = names.objectsStream; }
    ];
  };
}
