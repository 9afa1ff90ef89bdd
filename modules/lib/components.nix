# components.toml (the repository root), read and checked: the one
# description of every CIM component, and the NATS permission rules that
# apply to each. crates/cim-deploy reads the same file with the same rules
# (its tests compare its NATS users with nix/eval/rendered/nats-base.json).
#
#   components          name -> { name, title, package, api, user, http_port,
#                       address, service, aggregates, buckets, reads,
#                       writes_objects, purges_events, calls, durable_consumers }
#   users NAMESPACE     NATS user -> { publish, publishDeny, subscribe, allowResponses }:
#                       the admin and every component, for that namespace
#   streams NAMESPACE   store -> stream name ([stores])
#   buckets             bucket -> { name, owner, description, history,
#                       ttl_secs, per_key_ttl_markers_secs } ([buckets]:
#                       what provisioning creates; checked here as by
#                       crates/cim-deploy)
{ lib }:
let
  file = ../../components.toml;
  toml = builtins.fromTOML (builtins.readFile file);

  fail = message: throw "components.toml: ${message}";

  # Key -> the predicate its value must satisfy, and what that is.
  isStrList = v: builtins.isList v && lib.all builtins.isString v;
  componentKeys = {
    title = [ builtins.isString "a string" ];
    package = [ builtins.isString "a string" ];
    api = [ builtins.isString "a string" ];
    user = [ builtins.isString "a string" ];
    http_port = [ (v: builtins.isInt v && v > 0 && v < 65536) "a port number" ];
    address = [ (v: builtins.isString v && builtins.match "[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+" v != null) "an IPv4 address" ];
    service = [ builtins.isString "a string" ];
    aggregates = [ isStrList "a list of strings" ];
    buckets = [ isStrList "a list of strings" ];
    reads = [ (v: isStrList v && lib.all (s: stores ? ${s}) v) "a list of stores of [stores]" ];
    writes_objects = [ builtins.isBool "a boolean" ];
    purges_events = [ builtins.isBool "a boolean" ];
    calls = [ isStrList "a list of strings" ];
  };
  # Keys a component may leave out, with their defaults.
  optionalKeys = {
    durable_consumers = [
      builtins.isBool
      "a boolean"
      false
    ];
  };
  allKeys = componentKeys // optionalKeys;

  checkComponent =
    name: c:
    let
      missing = lib.filter (k: !(c ? ${k})) (lib.attrNames componentKeys);
      unknown = lib.attrNames (removeAttrs c (lib.attrNames allKeys));
      withDefaults = lib.mapAttrs (_: spec: lib.elemAt spec 2) optionalKeys // c;
      wrong = lib.filter (k: !((lib.head allKeys.${k}) withDefaults.${k})) (lib.attrNames allKeys);
    in
    if builtins.match "[a-z][a-z0-9]*" name == null then
      fail "component `${name}`: a name is [a-z0-9], starting with a letter"
    else if missing != [ ] then
      fail "component `${name}` lacks ${lib.concatStringsSep ", " missing}"
    else if unknown != [ ] then
      fail "component `${name}` has unknown keys: ${lib.concatStringsSep ", " unknown}"
    else if wrong != [ ] then
      let
        k = lib.head wrong;
      in
      fail "component `${name}`: `${k}` must be ${lib.elemAt allKeys.${k} 1}"
    else
      withDefaults // { inherit name; };

  stores = toml.stores or (fail "no [stores]");

  # [buckets.<name>]: every bucket a component lists has its table, every
  # table belongs to exactly one component, every key is there and known.
  bucketKeys = {
    description = [ builtins.isString "a string" ];
    history = [ (v: builtins.isInt v && v >= 1 && v <= 64) "an integer 1-64" ];
    ttl_secs = [ (v: builtins.isInt v && v >= 0) "a number of seconds" ];
    per_key_ttl_markers_secs = [ (v: builtins.isInt v && v >= 0) "a number of seconds" ];
  };
  bucketTables = toml.buckets or { };
  listedBuckets = lib.concatMap (c: map (bucket: { inherit bucket; owner = c.name; }) c.buckets) (lib.attrValues checked);
  checkBucket =
    { bucket, owner }:
    let
      b = bucketTables.${bucket} or (fail "component `${owner}` lists bucket `${bucket}`, which has no [buckets.${bucket}] table");
      missing = lib.filter (k: !(b ? ${k})) (lib.attrNames bucketKeys);
      unknown = lib.attrNames (removeAttrs b (lib.attrNames bucketKeys));
      wrong = lib.filter (k: !((lib.head bucketKeys.${k}) b.${k})) (lib.attrNames bucketKeys);
    in
    if builtins.match "[a-z][a-z0-9_-]*" bucket == null then
      fail "component `${owner}`: bucket `${bucket}` is not [a-z0-9_-] starting with a letter"
    else if lib.elem bucket [ "objects" "names" ] then
      fail "component `${owner}`: bucket `${bucket}` is the store's own (`<namespace>-${bucket}`)"
    else if lib.count (l: l.bucket == bucket) listedBuckets > 1 then
      fail "bucket `${bucket}` is listed by two components"
    else if missing != [ ] then
      fail "[buckets.${bucket}] lacks ${lib.concatStringsSep ", " missing}"
    else if unknown != [ ] then
      fail "[buckets.${bucket}] has unknown keys: ${lib.concatStringsSep ", " unknown}"
    else if wrong != [ ] then
      let
        k = lib.head wrong;
      in
      fail "[buckets.${bucket}]: `${k}` must be ${lib.elemAt bucketKeys.${k} 1}"
    else
      {
        name = bucket;
        value = b // {
          name = bucket;
          inherit owner;
        };
      };
  buckets =
    let
      owned = lib.listToAttrs (map checkBucket listedBuckets);
      orphans = lib.attrNames (removeAttrs bucketTables (lib.attrNames owned));
    in
    if orphans != [ ] then
      fail "[buckets.${lib.head orphans}] belongs to no component (none lists it in `buckets`)"
    else
      owned;

  unique =
    key:
    let
      values = lib.mapAttrsToList (_: c: c.${key}) checked;
      dup = lib.filter (v: lib.count (x: x == v) values > 1) values;
    in
    if dup == [ ] then true else fail "two components have the same ${key}: ${toString (lib.head dup)}";

  checked = lib.mapAttrs checkComponent (toml.components or (fail "no [components.<name>]"));
  components =
    assert lib.all unique [
      "package"
      "user"
      "http_port"
      "address"
      "service"
    ];
    builtins.seq buckets (
      if lib.any (c: c.user == admin.user) (lib.attrValues checked) then
        fail "a component's user is the admin's, `${admin.user}`"
      else
        checked
    );

  # Replaces each `{key}` of `vars` in `template`; any placeholder left over
  # is unknown.
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

  namespaceVars = namespace: {
    inherit namespace;
    NAMESPACE = lib.toUpper (lib.replaceStrings [ "-" ] [ "_" ] namespace);
  };

  streams = namespace: lib.mapAttrs (store: template: render "[stores] ${store}" (namespaceVars namespace) template) stores;

  # One rule of [permissions.<who>.<direction>], expanded. `component` is
  # null for the admin, whose rules take neither `each` nor `when`.
  expand =
    where: namespace: vars: component: rule:
    let
      unknown = lib.attrNames (
        removeAttrs rule [
          "subjects"
          "each"
          "when"
        ]
      );
      items =
        if !(rule ? each) then
          [ { } ]
        else if component == null then
          fail "${where}: `each` needs a component"
        else if rule.each == "aggregates" then
          map (aggregate: { inherit aggregate; }) component.aggregates
        else if rule.each == "buckets" then
          map (bucket: { inherit bucket; }) component.buckets
        else if rule.each == "calls" then
          map (call: { inherit call; }) component.calls
        else if rule.each == "reads" then
          map (store: {
            inherit store;
            stream = (streams namespace).${store};
          }) component.reads
        else if rule.each == "other_aggregates" then
          # The types the other components own: wildcards are nobody's own.
          map (aggregate: { inherit aggregate; }) (
            lib.filter (a: !(lib.hasInfix "*" a || lib.hasInfix ">" a)) (
              lib.concatMap (o: o.aggregates) (lib.filter (o: o.name != component.name) (lib.attrValues components))
            )
          )
        else
          fail "${where}: each = \"${toString rule.each}\" is none of aggregates, buckets, calls, reads, other_aggregates";
      enabled =
        if !(rule ? when) then
          true
        else if component == null then
          fail "${where}: `when` needs a component"
        else if builtins.isBool (component.${rule.when} or null) then
          component.${rule.when}
        else
          fail "${where}: when = \"${toString rule.when}\" is not a boolean of the component";
    in
    if unknown != [ ] then
      fail "${where}: unknown keys ${lib.concatStringsSep ", " unknown}"
    else if !(isStrList (rule.subjects or null)) then
      fail "${where}: `subjects` must be a list of strings"
    else
      lib.optionals enabled (lib.concatMap (item: map (render where (vars // item)) rule.subjects) items);

  rules =
    who: direction: namespace: vars: component:
    let
      where = "[[permissions.${who}.${direction}]]";
      list = toml.permissions.${who}.${direction} or [ ];
    in
    if !(builtins.isList list && lib.all builtins.isAttrs list) then
      fail "${where} must be an array of tables"
    else
      lib.concatMap (expand where namespace vars component) list;

  permissions = toml.permissions or (fail "no [permissions]");
  admin = permissions.admin or (fail "no [permissions.admin]");

  users =
    namespace:
    let
      base = namespaceVars namespace;
      componentUser = c: {
        name = c.user;
        value =
          let
            vars = base // {
              inherit (c)
                name
                user
                package
                service
                ;
            };
          in
          {
            publish = rules "component" "publish" namespace vars c;
            publishDeny = rules "component" "publish_deny" namespace vars c;
            subscribe = rules "component" "subscribe" namespace vars c;
            allowResponses = permissions.component.allow_responses or true;
          };
      };
    in
    {
      ${admin.user or (fail "[permissions.admin] has no `user`")} = {
        publish = rules "admin" "publish" namespace base null;
        publishDeny = [ ];
        subscribe = rules "admin" "subscribe" namespace base null;
        allowResponses = admin.allow_responses or true;
      };
    }
    // lib.listToAttrs (map componentUser (lib.attrValues components));
in
{
  inherit
    components
    users
    streams
    buckets
    ;
  names = lib.attrNames components;
  adminUser = admin.user;
}
