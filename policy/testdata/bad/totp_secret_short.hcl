# want: 4:30 at least 128 are needed
door "v" {
  totp {}
  client "a" { secret_file = "../secrets/short.key" }
  open = ["22"]
}
