# tests/permission-matrix.json expanded for a store namespace: for every
# component user of components.toml, its `every_component` rows (repeated
# per stream, per other component, ... as `each` says) and its own `rows`,
# as one list of checks { check, subject, body, why } per user.
#
# Used by tests/permissions.nix (in VMs) and rendered to
# nix/eval/rendered/permission-matrix.json for `cargo xtask nix`'s live
# check, so both run the same checks, and a new component of
# components.toml gets its rows without an edit here.
{ lib }:
namespace:
let
  described = import ../modules/lib/components.nix { inherit lib; };
  matrix = builtins.fromJSON (builtins.readFile ./permission-matrix.json);
  fail = message: throw "tests/permission-matrix.json: ${message}";

  components = lib.attrValues described.components;
  streams = described.streams namespace;
  bucketStream = bucket: "KV_${namespace}-${bucket}";
  allBuckets = lib.concatMap (c: c.buckets) components;
  wildcard = aggregate: lib.hasInfix "*" aggregate || lib.hasInfix ">" aggregate;

  # A stream's subjects, as cim-store configures it (docs/spec/jetstream.md):
  # what a forged update keeps, so that only its limits would change.
  subjectsOf =
    stream:
    if stream == streams.events then
      [ "${namespace}.events.>" ]
    else if lib.hasPrefix "OBJ_" stream then
      let
        bucket = lib.removePrefix "OBJ_" stream;
      in
      [
        "$O.${bucket}.C.>"
        "$O.${bucket}.M.>"
      ]
    else if lib.hasPrefix "KV_" stream then
      [ "$KV.${lib.removePrefix "KV_" stream}.>" ]
    else
      fail "no subjects known for the stream ${stream}";

  # The streams of the store kinds named (events, objects, names, buckets).
  streamsOf =
    kinds:
    lib.concatMap (
      kind:
      if kind == "buckets" then
        map bucketStream allBuckets
      else if streams ? ${kind} then
        [ streams.${kind} ]
      else
        fail "`streams` names `${kind}`, none of events, objects, names, buckets"
    ) kinds;

  render =
    where: vars: template:
    let
      keys = lib.attrNames vars;
      out = lib.replaceStrings (map (k: "{${k}}") keys) (map (k: toString vars.${k}) keys) template;
    in
    if builtins.match ".*\\{[A-Za-z_]+}.*" out != null then
      fail "${where}: unknown placeholder in `${template}` (known here: ${lib.concatMapStringsSep " " (k: "{${k}}") keys})"
    else
      out;

  known = [
    "check"
    "each"
    "streams"
    "unless"
    "subject"
    "body"
    "why"
  ];

  # One `every_component` row, for component `c`.
  expand =
    c: row:
    let
      where = "every_component row `${row.subject or "?"}`";
      others = lib.filter (o: o.name != c.name) components;
      items =
        if !(row ? each) then
          [ { } ]
        else if row.each == "stream" then
          map (stream: {
            inherit stream;
            stream_subjects = builtins.toJSON (subjectsOf stream);
          }) (
            streamsOf (
              row.streams or [
                "events"
                "objects"
                "names"
                "buckets"
              ]
            )
          )
        else if row.each == "read_stream" then
          map (store: { stream = streams.${store}; }) c.reads
        else if row.each == "unread_stream" then
          map (stream: { inherit stream; }) (
            map (store: streams.${store}) (lib.subtractLists c.reads (lib.attrNames streams))
            ++ map bucketStream (lib.concatMap (o: o.buckets) others)
          )
        else if row.each == "other" then
          map (o: {
            other_name = o.name;
            other_user = o.user;
            other_package = o.package;
            other_service = o.service;
          }) others
        else if row.each == "other_aggregate" then
          # Their own types; a wildcard (the hub's `*`) is nobody's own.
          lib.concatMap (o: map (aggregate: { inherit aggregate; }) (lib.filter (a: !(wildcard a)) o.aggregates)) others
        else if row.each == "other_bucket" then
          lib.concatMap (o: map (bucket: { inherit bucket; }) o.buckets) others
        else
          fail "${where}: each = \"${toString row.each}\" is unknown";
      # components.toml's booleans, and `any_aggregate`: its aggregate
      # types include a wildcard (the hub's `*`).
      flags = c // {
        any_aggregate = lib.any wildcard c.aggregates;
      };
      enabled =
        if !(row ? unless) then
          true
        else if builtins.isBool (flags.${row.unless} or null) then
          !flags.${row.unless}
        else
          fail "${where}: unless = \"${toString row.unless}\" is not a boolean of a component";
      vars = {
        inherit namespace;
        NAMESPACE = lib.toUpper (lib.replaceStrings [ "-" ] [ "_" ] namespace);
        inherit (c)
          name
          user
          package
          service
          ;
      };
    in
    lib.optionals enabled (map (item: check where (vars // item) row) items);

  check =
    where: vars: row:
    let
      unknown = lib.attrNames (removeAttrs row known);
    in
    if unknown != [ ] then
      fail "${where}: unknown keys ${lib.concatStringsSep ", " unknown}"
    else if
      !(lib.elem row.check [
        "denied-publish"
        "allowed-publish"
        "denied-subscribe"
        "request"
      ])
    then
      fail "${where}: check = \"${row.check}\" is unknown"
    else
      {
        inherit (row) check why;
        subject = render where vars row.subject;
        body = render where vars (row.body or "");
      };

  users = map (c: c.user) components;
  rows = matrix.rows or [ ];
  strangers = lib.filter (row: !(lib.elem row.user users)) rows;
  own =
    c:
    map (
      row:
      check "row of ${c.user}: `${row.subject}`" {
        inherit namespace;
        NAMESPACE = lib.toUpper (lib.replaceStrings [ "-" ] [ "_" ] namespace);
      } (removeAttrs row [ "user" ])
    ) (
      lib.filter (row: row.user == c.user) rows
    );
in
if strangers != [ ] then
  fail "rows for users that are no component's: ${lib.concatMapStringsSep ", " (r: r.user) strangers}"
else
  lib.listToAttrs (
    map (c: {
      name = c.user;
      value = lib.concatMap (expand c) matrix.every_component ++ own c;
    }) components
  )
