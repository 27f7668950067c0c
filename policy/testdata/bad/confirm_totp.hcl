# want: 6:3 confirm on a door without a fixed sequence
door "v" {
  totp {}
  client "a" { secret_file = "../secrets/alice.key" }
  open    = ["2222"]
  confirm = true
}
