# want: 3:16 SPA port is a knock port
door "s" {
  spa { port = 8000 }
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22"]
}
door "k" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["23"]
}
