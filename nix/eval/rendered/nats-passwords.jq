.accounts[$account].users |= map(
  . as $u
  | ($ARGS.named["pw_" + $u.user] // error("no password file for NATS user " + $u.user))
  | gsub("^\\s+|\\s+$"; "") as $password
  | if $password == "" then error("the password file of NATS user " + $u.user + " is empty") else $u + { password: $password } end
)
