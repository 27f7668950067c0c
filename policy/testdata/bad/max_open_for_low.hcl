# want: 7:18 max_open_for below open_for
door "s" {
  spa {}
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22"]
  open_for = "10m"
  max_open_for = "1m"
}
