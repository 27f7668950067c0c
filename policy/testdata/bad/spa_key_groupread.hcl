# want: 4:27 has mode 0640
door "s" {
  spa {}
  client "a" { key_file = "../secrets/groupread.spa" }
  open = ["22"]
}
