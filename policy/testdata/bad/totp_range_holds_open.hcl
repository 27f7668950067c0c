# want: 3:3 contains 22222/tcp
door "v" {
  totp {}
  client "a" { secret_file = "../secrets/alice.key" }
  open = ["22222"]
}
