# want: 3:3 has a totp block but no client
door "v" {
  totp {}
  open = ["22"]
}
