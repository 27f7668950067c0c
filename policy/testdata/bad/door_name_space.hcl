# want: 2:6 "my door" is not a door name
door "my door" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
