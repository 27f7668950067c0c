# want: 4:30 group or others may read
door "v" {
  totp {}
  client "a" { secret_file = "../secrets/groupread.key" }
  open = ["22"]
}
