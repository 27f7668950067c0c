# want: 4:3 has no secret_file
door "t" {
  totp {}
  client "a" {}
  open = ["2222"]
}
