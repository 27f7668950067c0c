# want: 4:3 has no key_file
door "s" {
  spa {}
  client "a" {}
  open = ["22"]
}
