# want: 6:3 confirm_within on a door without a fixed sequence
door "s" {
  spa {}
  client "a" { key_file = "../secrets/alice.spa" }
  open           = ["22"]
  confirm_within = "5s"
}
