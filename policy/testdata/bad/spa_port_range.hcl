# want: 3:16 from 1 to 65535
door "s" {
  spa { port = 70000 }
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22"]
}
