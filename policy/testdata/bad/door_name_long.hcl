# want: 2:6 is not a door name
door "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
