# want: 6:5 key_file does not belong in a TOTP door
door "t" {
  totp {}
  client "a" {
    secret_file = "../secrets/alice.key"
    key_file = "x"
  }
  open = ["2222"]
}
