# want: 3:16 SPA port is in a TOTP range
door "s" {
  spa { port = 20001 }
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22"]
}
door "t" {
  totp { protocol = "udp" }
  client "a" { secret_file = "../secrets/alice.key" }
  open = ["2222"]
}
