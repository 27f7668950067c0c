# want: 4:3 already has an spa block
door "s" {
  spa {}
  spa {}
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22"]
}
