# want: 3:16 SPA port is a guarded port
door "s" {
  spa { port = 51820 }
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22", "51820/udp"]
}
