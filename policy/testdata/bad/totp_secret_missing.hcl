# want: 4:30 does not exist
door "v" {
  totp {}
  client "a" { secret_file = "../secrets/nope.key" }
  open = ["22"]
}
