# want: 2:15 it is empty
interfaces = [""]
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
