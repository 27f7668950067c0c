# want: 4:18 per-knock entropy is 26.5 bits
door "v" {
  totp {
    port_range = "20000-20099"
  }
  client "a" { secret_file = "../secrets/alice.key" }
  open = ["22"]
}
