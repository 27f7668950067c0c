# want: 7:3 contains 22222/tcp, which door "web" opens
door "web" {
  sequence = ["7000", "8000", "9000"]
  open     = ["22222"]
}
door "v" {
  totp {}
  client "a" { secret_file = "../secrets/alice.key" }
  open = ["22"]
}
