# want: 6:22 must be true or false
door "s" {
  spa {}
  client "a" {
    key_file       = "../secrets/alice.spa"
    allow_other_ip = "yes"
  }
  open = ["22"]
}
