# Secrets are only ever paths of files outside the Nix store, which every
# local user can read. The type refuses Nix path literals (`./secret` would be
# copied into the store); the assertions catch strings that point into it.
{ lib }:

rec {
  # An absolute path, as a string, of a file outside the Nix store.
  type = lib.types.addCheck lib.types.str (lib.hasPrefix "/") // {
    name = "secretPath";
    description = "absolute path (a string, not a Nix path) of a file outside the Nix store";
  };

  inStore = path: lib.hasPrefix "${builtins.storeDir}/" (toString path);

  # An assertion that `path` (or null) is outside the store; `option` names
  # where it was set.
  outsideStore = option: path: {
    assertion = path == null || !(inStore path);
    message = ''
      ${option} = "${toString path}" is in the Nix store, which every user of the
      machine can read. Keep the secret in a root-only file outside the store
      (e.g. under /var/lib/cim/secrets or /run/secrets) and give its path as a string.
    '';
  };
}
