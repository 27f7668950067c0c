# want: 3:3 has both an spa block and sequence
door "s" {
  sequence = ["7000", "8000", "9000"]
  spa {}
  client "a" { key_file = "../secrets/alice.spa" }
  open = ["22"]
}
