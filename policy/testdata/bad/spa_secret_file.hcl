# want: 6:5 secret_file does not belong in a SPA door
door "s" {
  spa {}
  client "a" {
    key_file = "../secrets/alice.spa"
    secret_file = "../secrets/alice.key"
  }
  open = ["22"]
}
