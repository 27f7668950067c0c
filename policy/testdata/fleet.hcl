# A fleet member (fleet mode): one door of each kind publishes its opens to
# fleet groups. The key and members files are read by package fleet
# (fleet.LoadConfig), not by policy.Parse.
fleet {
  name    = "prod"
  member  = "bastion-1"
  key     = "fleet/bastion-1.key"
  members = "/etc/sesame/fleet/members.hcl"
  groups  = ["web", "db"]
  nats {
    servers = ["nats://192.0.2.10:4222", "tls://[2001:db8::11]:4222"]
    creds   = "/etc/sesame/fleet/bastion-1.creds"
    ca      = "/etc/sesame/fleet/ca.pem"
  }
  max_skew = "3s"
}

door "ssh" {
  sequence     = ["7000/tcp", "8000/udp", "9000/tcp"]
  open         = ["22/tcp"]
  fleet_groups = ["web", "db"]
  confirm      = false
}

door "vault" {
  totp {}
  client "alice" { secret_file = "secrets/alice.key" }
  open         = ["2222/tcp"]
  fleet_groups = ["db"]
}

door "once" {
  one_time_sequences = "reference.seqs"
  open               = ["2223/tcp"]
  fleet_groups       = ["web"]
}

door "spa" {
  spa {}
  client "alice" { key_file = "secrets/alice.spa" }
  open         = ["22/tcp", "443/tcp"]
  fleet_groups = ["web"]
}

door "local" {
  sequence = ["7100/tcp", "8100/udp", "9100/tcp"]
  open     = ["2224/tcp"]
}

state_dir = "/var/lib/sesame"
