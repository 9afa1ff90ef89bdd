# What every test node and script shares.
{ self, nixosModules }:
let
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

  # The host node of the suites that run the registry and the IUS, each in
  # its container with those tools.
  componentContainers = {
    services.cim.containers = {
      registry = {
        enable = true;
        config = containerTools;
      };
      ius = {
        enable = true;
        config = containerTools;
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


    def probe(*args, user="admin", container=None):
        """A cim-nats-probe command line, as `user` (its generated password),
        on the host or inside `container` (through the container's link)."""
        server = CONTAINER_NATS if container else HOST_NATS
        command = shlex.join(
            ["cim-nats-probe", "--server", server, "--user", user,
             "--password-file", f"{SECRETS}/{user}/nats-password", *args]
        )
        if container:
            return f"nixos-container run {container} -- {command}"
        return command


    def request(machine, subject, body, user="admin"):
        """A service request; the JSON reply (fails the test on an error reply)."""
        return json.loads(machine.succeed(probe("request", subject, json.dumps(body), user=user)))
  '';
}
