# want: 3:3 has both an spa block and a totp block
door "s" {
  totp {}
  spa {}
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["2222"]
}
