# What every test node and script shares.
{
  self,
  nixosModules,
  lib,
}:
let
  components = (builtins.fromTOML (builtins.readFile ../components.toml)).components;
  described = import ../modules/lib/components.nix { inherit lib; };
  # The test hosts keep the default namespace.
  namespace = "cim";

  # Gives a container the tools the scripts run inside it.
  containerTools =
    { pkgs, ... }:
    {
      environment.systemPackages = [
        self.packages.${pkgs.stdenv.hostPlatform.system}.cim-nats-probe
        pkgs.curl
      ];
    };
in
{
  # The NixOS module every node imports: CIM's modules, the host with
  # generated passwords, and the tools the scripts use.
  module =
    { pkgs, ... }:
    {
      imports = [ nixosModules.default ];
      services.cim.host = {
        enable = true;
        secrets.generate = true;
      };
      environment.systemPackages = [
        self.packages.${pkgs.stdenv.hostPlatform.system}.cim-nats-probe
        pkgs.curl
        pkgs.jq
      ];
      virtualisation.memorySize = 2048;
      virtualisation.cores = 2;
    };

  inherit containerTools;

  # components.toml's components (name -> description).
  inherit components;

  # tests/permission-matrix.json expanded for every component user (user ->
  # checks); the store's streams (store -> stream) and those of the
  # components' buckets.
  permissionMatrix = import ./permission-matrix.nix { inherit lib; } namespace;
  streams = described.streams namespace;
  bucketStreams = map (b: "KV_${namespace}-${b}") (lib.attrNames described.buckets);

  # The host node of the suites that run every component, each in its
  # container with those tools.
  componentContainers = {
    services.cim.containers = builtins.mapAttrs (_: _: {
      enable = true;
      config = containerTools;
    }) components // {
      storage = {
        enable = true;
        config = {
          imports = [ containerTools ];
          # No S3 in the VM: the Storage Manager's two tiers are directory
          # tiers in its state directory (systemd creates the bucket
          # directories, owned by its dynamic user; the manager creates none).
          systemd.services.cim-storage.serviceConfig.StateDirectory = [
            "cim-storage"
            "cim-storage/tiers"
            "cim-storage/tiers/warm"
            "cim-storage/tiers/cold"
          ];
          services.cim.storage.settings.storage = {
            warm = {
              endpoint = "file:///var/lib/cim-storage/tiers";
              bucket = "warm";
            };
            cold = {
              endpoint = "file:///var/lib/cim-storage/tiers";
              bucket = "cold";
            };
          };
        };
      };
    };
  };

  # Python helpers prepended to every test script.
  helpers = ''
    import json
    import shlex

    SECRETS = "/var/lib/cim/secrets"
    HOST_NATS = "nats://127.0.0.1:4222"
    CONTAINER_NATS = "nats://10.233.0.1:4222"
    # components.toml: name -> {package, user, http_port, ...}
    COMPONENTS = json.loads(${builtins.toJSON (builtins.toJSON components)})


    # Inside a container, its password is the credential systemd-nspawn
    # passed in (containers/lib.nix), not a file of the host.
    CONTAINER_PASSWORD = "/run/credentials/@system/cim-nats-password"


    def probe(*args, user="admin", container=None, password_file=None):
        """A cim-nats-probe command line, as `user` with its password (the
        generated file on the host, the container's credential inside
        `container`, or `password_file`), on the host or inside `container`
        (through the container's link). Replies come on `_INBOX_<user>`."""
        server = CONTAINER_NATS if container else HOST_NATS
        if password_file is None:
            password_file = CONTAINER_PASSWORD if container else f"{SECRETS}/{user}/nats-password"
        command = shlex.join(
            ["cim-nats-probe", "--server", server, "--user", user, "--password-file", password_file, *args]
        )
        if container:
            return f"nixos-container run {container} -- {command}"
        return command


    def exit_code(machine, command):
        """The exit code of `command` (which may fail) on `machine`."""
        status, _ = machine.execute(command)
        return status


    def request(machine, subject, body, user="admin"):
        """A service request; the JSON reply (fails the test on an error reply)."""
        return json.loads(machine.succeed(probe("request", subject, json.dumps(body), user=user)))
  '';
}
