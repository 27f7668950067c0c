# want: 4:18 is above
door "v" {
  totp {
    port_range = "30000-20000"
  }
  client "a" { secret_file = "../secrets/alice.key" }
  open = ["22"]
}
