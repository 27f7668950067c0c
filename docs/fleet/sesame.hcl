# /etc/sesame/sesame.hcl of bastion-1, a member of fleet "prod" (see
# sesame.hcl(5), FLEET). A knock on ssh here opens ssh on every host of
# group "web" (each with its own door "ssh"); admin, an SPA door, too.
# Make the key with:
#   sesame keygen --fleet -o /etc/sesame/fleet/bastion-1.key
# and paste the stanza it prints into members.hcl on every host.

fleet {
  name    = "prod"
  member  = "bastion-1"
  key     = "/etc/sesame/fleet/bastion-1.key"
  members = "/etc/sesame/fleet/members.hcl"
  groups  = ["web"]
  nats {
    servers = ["tls://192.0.2.10:4222", "tls://192.0.2.11:4222", "tls://192.0.2.12:4222"]
    creds   = "/etc/sesame/fleet/bastion-1.creds"
    ca      = "/etc/sesame/fleet/ca.pem"
  }
  max_skew = "2s"
}

door "ssh" {
  totp {}
  client "alice" { secret_file = "/etc/sesame/alice.totp" } # the same secret on every host
  open         = ["22/tcp"]
  open_for     = "30s"
  fleet_groups = ["web"]
}

door "admin" {
  spa {}
  client "alice" { key_file = "/etc/sesame/alice.spa" }
  open         = ["443/tcp"]
  fleet_groups = ["web"]
}
