# want: 4:27 secrets/nope.spa does not exist
door "s" {
  spa {}
  client "a" { key_file = "../secrets/nope.spa" }
  open = ["22"]
}
