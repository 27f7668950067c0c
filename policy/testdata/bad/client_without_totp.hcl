# want: 4:3 has a client block but no totp block
door "v" {
  sequence = ["7000", "8000", "9000"]
  client "a" { secret_file = "../secrets/alice.key" }
  open = ["22"]
}
