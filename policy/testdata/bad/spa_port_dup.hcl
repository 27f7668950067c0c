# want: 9:12 Duplicate SPA port
door "s" {
  spa {}
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22"]
}
door "s2" {
  spa {
    port = 62201
  }
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["23"]
}
