# The systemd sandbox of every CIM service: no privileges, no capabilities, a
# read-only view of the system, network access over IP only. A component
# keeps no state on disk (its state is in JetStream), so it needs no
# writable path at all. Checked against `systemd-analyze security`'s list.
{
  CapabilityBoundingSet = [ "" ];
  AmbientCapabilities = [ "" ];
  DevicePolicy = "closed";
  LockPersonality = true;
  MemoryDenyWriteExecute = true;
  NoNewPrivileges = true;
  PrivateDevices = true;
  PrivateTmp = true;
  PrivateUsers = true;
  ProcSubset = "pid";
  ProtectClock = true;
  ProtectControlGroups = true;
  ProtectHome = true;
  ProtectHostname = true;
  ProtectKernelLogs = true;
  ProtectKernelModules = true;
  ProtectKernelTunables = true;
  ProtectProc = "invisible";
  ProtectSystem = "strict";
  RemoveIPC = true;
  # AF_UNIX: name resolution through nscd/resolved.
  RestrictAddressFamilies = [
    "AF_INET"
    "AF_INET6"
    "AF_UNIX"
  ];
  RestrictNamespaces = true;
  RestrictRealtime = true;
  RestrictSUIDSGID = true;
  SystemCallArchitectures = "native";
  SystemCallFilter = [
    "@system-service"
    "~@privileged"
    "~@resources"
  ];
  UMask = "0077";
}
