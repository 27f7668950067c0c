# want: 3:19 max_age out of range
door "s" {
  spa { max_age = "1s" }
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22"]
}
